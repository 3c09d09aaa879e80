"""Which incidents `/incident list` shows: open (the default), resolved or all; of some
severities; the asker's own; opened within a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.incidents import Incident, IncidentStatus, Severity


class Listed(StrEnum):
    """Which states a list shows."""

    OPEN = "open"
    RESOLVED = "resolved"
    ALL = "all"


@dataclass(frozen=True)
class IncidentQuery:
    """A list's filters; the default is every open incident."""

    states: Listed = Listed.OPEN
    severities: frozenset[Severity] = frozenset()
    mine: str | None = None  # a person: incidents they declared, lead, acknowledged or resolved
    since: timedelta | None = None

    def matches(self, incident: Incident, now: datetime) -> bool:
        """True when `incident` belongs in the list."""
        resolved = incident.status is IncidentStatus.RESOLVED
        if (self.states is Listed.OPEN and resolved) or (
            self.states is Listed.RESOLVED and not resolved
        ):
            return False
        if self.severities and incident.severity not in self.severities:
            return False
        if self.since is not None and incident.opened_at < now - self.since:
            return False
        return self.mine is None or self.mine in (
            incident.declared_by,
            incident.lead,
            incident.acknowledged_by,
            incident.resolved_by,
        )

    def describe(self) -> tuple[str, str]:
        """What the list holds, as the words before and after "incidents": ("resolved sev1",
        " of yours in the last 7 days")."""
        before = [] if self.states is Listed.ALL else [self.states.value]
        before += sorted(s.value for s in self.severities)
        after = " of yours" if self.mine else ""
        if self.since is not None:
            after += f" in the last {_span(self.since)}"
        return " ".join(before), after


def _span(span: timedelta) -> str:
    """7 days, 12 hours, 30 minutes."""
    seconds = span.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds / size
            return f"{count:g} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"
