"""Read models: what the Slack edge needs to render an incident."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.alerts import AlertStatus
from bot.domain.incidents import Incident


@dataclass(frozen=True)
class AlertLine:
    """One alert as shown on the card."""

    name: str
    status: AlertStatus
    summary: str
    labels: Mapping[str, str]
    starts_at: datetime
    generator_url: str


@dataclass(frozen=True)
class IncidentView:
    """An incident with its alerts, ready to render."""

    incident: Incident
    slug_source: str
    labels: Mapping[str, str]
    external_url: str
    alerts: Sequence[AlertLine]
    alerts_resolved_at: datetime | None

    @property
    def firing(self) -> int:
        """How many alerts still fire."""
        return sum(1 for a in self.alerts if a.status is AlertStatus.FIRING)

    @property
    def resolved(self) -> int:
        """How many alerts have resolved."""
        return len(self.alerts) - self.firing
