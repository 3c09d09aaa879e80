"""A notification that says nothing newer than the incident knows changes nothing.

A resolved incident reopens (or, after the reopen window, a new one opens) only for an alert it
did not hold, or one it held as resolved that fires again since a later `startsAt`. The late
firing notification of a second Alertmanager peer, or a retry, repeats a `startsAt` the incident
already resolved: it is stale, and leaves the incident and its timeline as they were.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.domain.incidents import Action, GroupDecision, IncidentStatus
from bot.domain.intake import IntakeRules
from bot.services.alerts import AlertIntake, IngestResult
from bot.services.escalation import EscalationService
from bot.services.incidents import IncidentService
from bot.store.repository import Database
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload

NOW = datetime(2026, 11, 26, 10, 5, tzinfo=UTC)
STARTED = "2026-11-26T10:00:00Z"
LATER = "2026-11-26T10:20:00Z"
ENDED = "2026-11-26T10:06:00Z"


class Scene:
    """An intake and an incident service over one store, on one clock."""

    def __init__(self, db: Database, *, auto_resolve: bool) -> None:
        self.clock = FakeClock(NOW)
        escalation = EscalationService(
            store=db, policies=[], default_policy=None, rotations={}, now=self.clock.now
        )
        self.intake = AlertIntake(
            store=db,
            rules=IntakeRules(timedelta(minutes=30), auto_resolve=auto_resolve),
            escalation=escalation,
        )
        self.incidents = IncidentService(store=db, now=self.clock.now, escalation=escalation)

    async def send(
        self, alerts: list[dict[str, Any]], *, after: timedelta, peer: int = 1
    ) -> IngestResult:
        """Deliver one notification `after` NOW, from Alertmanager `peer` (its externalURL: two
        peers' bodies differ, so neither is a byte-for-byte replay of the other)."""
        self.clock.current = NOW + after
        body = json.dumps(make_payload(alerts, externalURL=f"http://alertmanager-{peer}:9093"))
        return await self.intake.ingest(parse_webhook(body.encode()), body=body, now=NOW + after)

    async def kinds(self, incident_id: int) -> list[str]:
        return [e.kind for e in await self.incidents.timeline(incident_id)]


def firing(instance: str = "a", starts_at: str = STARTED) -> dict[str, Any]:
    return make_alert(service="api", instance=instance, starts_at=starts_at)


def resolved(instance: str = "a", starts_at: str = STARTED) -> dict[str, Any]:
    return make_alert(
        service="api", instance=instance, status="resolved", starts_at=starts_at, ends_at=ENDED
    )


async def auto_resolved(db: Database) -> tuple[Scene, int]:
    """An incident opened by alert `a` and resolved automatically when it resolved."""
    scene = Scene(db, auto_resolve=True)
    opened = await scene.send([firing()], after=timedelta(0))
    assert opened.incident_id is not None
    await scene.send([resolved()], after=timedelta(minutes=1))
    incident = await scene.incidents.get(opened.incident_id)
    assert incident.status is IncidentStatus.RESOLVED
    return scene, opened.incident_id


@pytest.mark.parametrize("after", [timedelta(minutes=2), timedelta(hours=3)], ids=["in", "past"])
async def test_a_late_firing_notification_of_a_resolved_alert_changes_nothing(
    db: Database, after: timedelta
) -> None:
    scene, incident_id = await auto_resolved(db)
    timeline = await scene.kinds(incident_id)
    late = await scene.send(
        [firing()], after=after, peer=2
    )  # the same startsAt, in the window or past
    assert late.decision is GroupDecision.STALE
    assert (late.incident_id, late.changed, late.new_work) == (incident_id, 0, False)
    assert (await scene.incidents.get(incident_id)).status is IncidentStatus.RESOLVED
    assert await scene.kinds(incident_id) == timeline
    # Its resolution told again (the other peer) is stale too.
    again = await scene.send([resolved()], after=after + timedelta(seconds=1), peer=2)
    assert again.decision is GroupDecision.STALE
    assert await scene.kinds(incident_id) == timeline


async def test_a_later_start_of_a_resolved_alert_reopens_within_the_window(db: Database) -> None:
    scene, incident_id = await auto_resolved(db)
    again = await scene.send([firing(starts_at=LATER)], after=timedelta(minutes=20))
    assert again.decision is GroupDecision.REOPEN and again.incident_id == incident_id
    assert (await scene.incidents.get(incident_id)).status is IncidentStatus.TRIGGERED
    assert (await scene.kinds(incident_id))[-2:] == ["reopen", "alerts_refired"]


async def test_a_new_alert_of_the_group_reopens_within_the_window(db: Database) -> None:
    scene, incident_id = await auto_resolved(db)
    # Alertmanager sends the group's alerts: the resolved one again, and one it did not hold.
    again = await scene.send([firing(), firing("b")], after=timedelta(minutes=5))
    assert again.decision is GroupDecision.REOPEN and again.incident_id == incident_id
    assert (await scene.kinds(incident_id))[-2:] == ["reopen", "alerts_new"]


async def test_after_a_manual_resolve_a_repeat_of_the_firing_alert_does_not_reopen(
    db: Database,
) -> None:
    scene = Scene(db, auto_resolve=False)
    opened = await scene.send([firing()], after=timedelta(0))
    assert opened.incident_id is not None
    incident_id = opened.incident_id
    scene.clock.current = NOW + timedelta(minutes=1)
    await scene.incidents.act(incident_id, Action.RESOLVE, actor="U0ALICE01")
    timeline = await scene.kinds(incident_id)

    repeat = await scene.send([firing()], after=timedelta(minutes=2), peer=2)
    assert repeat.decision is GroupDecision.STALE
    assert await scene.kinds(incident_id) == timeline

    # The alert then resolves (news: the record held it firing), and later fires anew.
    ended = await scene.send([resolved()], after=timedelta(minutes=3))
    assert ended.decision is GroupDecision.UPDATE
    assert (await scene.incidents.get(incident_id)).status is IncidentStatus.RESOLVED
    assert (await scene.kinds(incident_id))[-1] == "alerts_resolved"
    refired = await scene.send([firing(starts_at=LATER)], after=timedelta(minutes=20))
    assert refired.decision is GroupDecision.REOPEN and refired.incident_id == incident_id
