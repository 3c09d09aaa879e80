"""Acknowledge racing auto-resolve ends resolved, with the acknowledgement kept."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from bot.clock import FakeClock
from bot.domain.incidents import Action, IncidentStatus
from bot.domain.intake import IntakeRules
from bot.errors import InvalidTransition
from bot.services.alerts import AlertIntake
from bot.services.escalation import EscalationService
from bot.services.incidents import IncidentService
from bot.store.repository import Database
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


async def send(intake: AlertIntake, payload: dict, now: datetime) -> int | None:  # type: ignore[type-arg]
    body = json.dumps(payload)
    return (await intake.ingest(parse_webhook(body.encode()), body=body, now=now)).incident_id


async def test_ack_and_auto_resolve_race_ends_resolved_with_the_ack_recorded(db: Database) -> None:
    clock = FakeClock(NOW)
    escalation = EscalationService(
        store=db, policies=[], default_policy=None, rotations={}, now=clock.now
    )
    intake = AlertIntake(
        store=db,
        rules=IntakeRules(timedelta(minutes=30), auto_resolve=True),
        escalation=escalation,
    )
    incidents = IncidentService(store=db, now=clock.now, escalation=escalation)
    for round_ in range(6):
        group = f"Race{round_}"
        firing = make_alert(group, service="api")
        incident_id = await send(intake, make_payload([firing], group=group), NOW)
        assert incident_id is not None
        resolved = make_alert(
            group, service="api", status="resolved", ends_at="2026-11-26T03:01:00Z"
        )

        async def ack(incident_id: int = incident_id) -> str:
            try:
                await incidents.act(incident_id, Action.ACKNOWLEDGE, actor="U0ALICE01")
                return "acked"
            except InvalidTransition:
                return "late"

        outcome, _ = await asyncio.gather(
            ack(), send(intake, make_payload([resolved], group=group), NOW + timedelta(minutes=1))
        )
        final = await incidents.get(incident_id)
        assert final.status is IncidentStatus.RESOLVED
        kinds = [e.kind for e in await incidents.timeline(incident_id)]
        if outcome == "acked":
            assert kinds.index("acknowledge") < kinds.index("resolve")
            assert final.acknowledged_by == "U0ALICE01"
        else:
            assert "ack_after_resolve" in kinds
