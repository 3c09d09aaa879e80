"""Which notifications open drills, and the backstop that resolves a drill nobody ended: one
per opening or reopening, and an older one finds nothing to do once the drill was reopened."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from bot.domain.alerts import AlertGroup
from bot.domain.drills import still_running
from bot.domain.incidents import Incident, IncidentStatus, Severity
from bot.domain.intake import NOBODY_YET, IntakeRules, changes, decide
from bot.domain.playbooks import Playbook
from bot.domain.timers import DRILL_OVER, Timer
from bot.drills.alerts import drill_payload
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload, utc

T0 = utc("2026-11-26T10:00:00Z")
RULES = IntakeRules(
    reopen_window=timedelta(minutes=30),
    auto_resolve=True,
    drill_resolve_after=timedelta(minutes=30),
)
PLAYBOOK = Playbook(name="HighErrorRate", match_labels={"alertname": "HighErrorRate"})


def group(payload: dict[str, object]) -> AlertGroup:
    return parse_webhook(json.dumps(payload).encode())


def drill_group() -> AlertGroup:
    return group(drill_payload(PLAYBOOK, drill_id="drill-abc123", now=T0))


def opened(drill: bool) -> Incident:
    return Incident(
        id=7,
        key="k",
        title="t",
        severity=Severity.SEV2,
        status=IncidentStatus.TRIGGERED,
        opened_at=T0,
        drill=drill,
    )


def backstops(timers: tuple[Timer, ...]) -> list[Timer]:
    return [t for t in timers if t.kind == DRILL_OVER]


def test_only_a_notification_of_drill_alerts_opens_a_drill() -> None:
    assert (new := decide(None, NOBODY_YET, drill_group(), now=T0, rules=RULES).new) and new.drill
    real = group(make_payload([make_alert()]))
    assert (new := decide(None, NOBODY_YET, real, now=T0, rules=RULES).new) and not new.drill


def test_a_drill_s_opening_schedules_its_backstop_and_a_real_incident_s_does_not() -> None:
    decided = decide(None, NOBODY_YET, drill_group(), now=T0, rules=RULES)
    (timer,) = backstops(
        changes(decided, opened(True), NOBODY_YET, drill_group(), now=T0, rules=RULES).timers
    )
    assert timer.due_at == T0 + timedelta(minutes=30) and timer.incident_id == 7
    assert still_running(opened(True), timer.payload)
    planned = changes(decided, opened(False), NOBODY_YET, drill_group(), now=T0, rules=RULES)
    assert backstops(planned.timers) == []
    off = replace(RULES, drill_resolve_after=None)
    assert (
        backstops(
            changes(decided, opened(True), NOBODY_YET, drill_group(), now=T0, rules=off).timers
        )
        == []
    )


def test_a_reopened_drill_gets_a_new_backstop_and_the_old_one_finds_nothing_to_do() -> None:
    first = backstops(
        changes(
            decide(None, NOBODY_YET, drill_group(), now=T0, rules=RULES),
            opened(True),
            NOBODY_YET,
            drill_group(),
            now=T0,
            rules=RULES,
        ).timers
    )[0]
    resolved = replace(
        opened(True), status=IncidentStatus.RESOLVED, resolved_at=T0 + timedelta(minutes=5)
    )
    assert not still_running(resolved, first.payload)
    again = T0 + timedelta(minutes=10)
    decided = decide(resolved, NOBODY_YET, drill_group(), now=again, rules=RULES)
    assert decided.decision.value == "reopen"
    planned = changes(decided, resolved, NOBODY_YET, drill_group(), now=again, rules=RULES)
    (second,) = backstops(planned.timers)
    assert second.due_at == again + timedelta(minutes=30) and second.idem_key != first.idem_key
    assert planned.incident.drill and planned.incident.is_open
    assert not still_running(planned.incident, first.payload)
    assert still_running(planned.incident, second.payload)


def test_a_backstop_with_a_bad_payload_does_nothing() -> None:
    assert not still_running(opened(True), {"since": "yesterday"})
    assert not still_running(opened(False), {"since": T0.isoformat()})
