"""Incidents: their states, the legal transitions between them, and grouping decisions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.alerts import News
from bot.domain.text import Rich, phrase, rich, who
from bot.errors import InvalidTransition


class IncidentStatus(StrEnum):
    """The life cycle of an incident."""

    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """How bad an incident is; sev1 is the worst."""

    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"


_LABEL_SEVERITY = {
    "critical": Severity.SEV1,
    "page": Severity.SEV1,
    "high": Severity.SEV2,
    "error": Severity.SEV2,
    "warning": Severity.SEV3,
    "medium": Severity.SEV3,
    "low": Severity.SEV4,
    "info": Severity.SEV4,
}


def severity_from_label(value: str | None) -> Severity:
    """Map an alert's `severity` label to a severity; unknown values are sev3."""
    if value is None:
        return Severity.SEV3
    value = value.strip().lower()
    if value in Severity.__members__.values():
        return Severity(value)
    return _LABEL_SEVERITY.get(value, Severity.SEV3)


SEVERITY_CHANGED = "severity"  # the timeline kind of a severity a person chose


@dataclass(frozen=True)
class TimelineEvent:
    """One entry of an incident's timeline: plain text, with its references (bot.domain.text)."""

    kind: str
    actor: str
    at: datetime
    text: str  # a Rich keeps its references
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def rich(self) -> Rich:
        """The text with its references."""
        return rich(self.text)


@dataclass(frozen=True)
class Incident:
    """An incident as the domain sees it."""

    id: int
    key: str
    title: str
    severity: Severity
    status: IncidentStatus
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    auto_resolve: bool = False
    channel_id: str | None = None
    channel_name: str | None = None
    card_ts: str | None = None
    lead: str | None = None
    declared_by: str | None = None
    silence_id: str | None = None
    silenced_until: datetime | None = None
    silenced_by: str | None = None
    escalation_policy: str | None = None
    escalation_level: int = 0
    escalation_round: int = 0
    version: int = 1
    playbook: str | None = None
    runbook: str | None = None
    # When the last level's time ran out with nobody acknowledging (None: still escalating,
    # or stopped by an acknowledgement).
    escalation_exhausted_at: datetime | None = None
    reopened_at: datetime | None = None  # the last time it was reopened
    drill: bool = False  # opened by a rehearsal (bot.domain.drills); set once, at opening
    # The storm incident this alert group was folded into (bot.domain.storms), while it is
    # a member: its alerts, state and timeline are its own, its channel and card the storm's.
    storm_id: int | None = None
    # Since when its alert group flaps (bot.domain.flapping); None while it does not.
    flapping_since: datetime | None = None

    @property
    def is_open(self) -> bool:
        """True until the incident is resolved."""
        return self.status is not IncidentStatus.RESOLVED


class Action(StrEnum):
    """The state changes a person or the system can ask for."""

    ACKNOWLEDGE = "acknowledge"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"
    REOPEN = "reopen"


_ALLOWED: dict[Action, frozenset[IncidentStatus]] = {
    Action.ACKNOWLEDGE: frozenset({IncidentStatus.TRIGGERED}),
    Action.MITIGATE: frozenset({IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED}),
    Action.RESOLVE: frozenset(
        {IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED}
    ),
    Action.REOPEN: frozenset({IncidentStatus.RESOLVED}),
}


@dataclass(frozen=True)
class Transition:
    """The result of a legal state change: the new incident and what to record."""

    incident: Incident
    events: tuple[TimelineEvent, ...]


def transition(
    incident: Incident, action: Action, *, actor: str, now: datetime, note: str | Rich = ""
) -> Transition:
    """Apply an action to an incident, or raise InvalidTransition with a reason."""
    if incident.status not in _ALLOWED[action]:
        raise InvalidTransition(
            f"Incident is {incident.status.value}; it cannot be {_PAST[action]} now."
        )
    changed = _apply(incident, action, actor=actor, now=now)
    text = phrase(f"{_PAST[action].capitalize()} by ", who(actor), *((": ", note) if note else ()))
    event = TimelineEvent(kind=action.value, actor=actor, at=now, text=text)
    return Transition(incident=changed, events=(event,))


_PAST = {
    Action.ACKNOWLEDGE: "acknowledged",
    Action.MITIGATE: "mitigated",
    Action.RESOLVE: "resolved",
    Action.REOPEN: "reopened",
}


def _apply(incident: Incident, action: Action, *, actor: str, now: datetime) -> Incident:
    if action is Action.ACKNOWLEDGE:
        return replace(
            incident, status=IncidentStatus.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor
        )
    if action is Action.MITIGATE:
        return replace(incident, status=IncidentStatus.MITIGATED)
    if action is Action.RESOLVE:
        return replace(incident, status=IncidentStatus.RESOLVED, resolved_at=now, resolved_by=actor)
    return replace(
        incident,
        status=IncidentStatus.TRIGGERED,
        resolved_at=None,
        resolved_by=None,
        reopened_at=now,
    )


class GroupDecision(StrEnum):
    """What an alert notification does to the incidents of its key."""

    OPEN = "open"
    UPDATE = "update"
    REOPEN = "reopen"
    IGNORE = "ignore"
    STALE = "stale"  # it tells a resolved incident nothing newer than it knows


def decide_for_group(
    latest: Incident | None, *, news: News, now: datetime, reopen_window: timedelta
) -> GroupDecision:
    """Decide whether a notification opens, updates, reopens or is ignored.

    `news`: what the notification tells `latest` (bot.domain.alerts.news_of). A resolved
    incident reopens, or past the window a new one opens, only for an alert firing anew.
    """
    if latest is None:
        return GroupDecision.OPEN if news is News.FIRES else GroupDecision.IGNORE
    if latest.status is not IncidentStatus.RESOLVED:
        return GroupDecision.UPDATE
    if news is News.NONE:
        return GroupDecision.STALE
    if news is not News.FIRES:
        return GroupDecision.UPDATE
    resolved_at = latest.resolved_at or latest.opened_at
    if now - resolved_at < reopen_window:
        return GroupDecision.REOPEN
    return GroupDecision.OPEN
