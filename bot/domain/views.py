"""Read models: what the Slack edge needs to render an incident."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain.alerts import AlertStatus
from bot.domain.flapping import FlapHistory
from bot.domain.incidents import Incident
from bot.domain.storms import StormSummary


@dataclass(frozen=True)
class AlertLine:
    """One alert as shown on the card."""

    name: str
    status: AlertStatus
    summary: str
    labels: Mapping[str, str]
    starts_at: datetime
    generator_url: str
    description: str = ""  # shown under the summary when it says more
    dashboard: str = ""  # the rule's `dashboard` or `dashboard_url` annotation


class CopyKind(StrEnum):
    """Where a copy of the incident's state is shown, besides the card in its channel."""

    DM = "dm"  # the card sent to a person paged
    ANNOUNCEMENT = "announcement"  # the line in the alerts channel


@dataclass(frozen=True)
class CardCopy:
    """A message that shows the incident and follows it: edited whenever the card is."""

    kind: CopyKind
    channel: str
    ts: str
    user: str | None = None
    label: str | None = None  # a DM's page ("level 1")
    at: datetime | None = None  # when it was posted


@dataclass(frozen=True)
class OnCallNow:
    """Who is on call in a rotation the incident's policy pages, and until when."""

    rotation: str
    user: str | None  # nobody, when the rotation has a gap now
    until: datetime | None = None


ALERTS_SHOWN = 10  # alerts listed on a card; the rest are counted


@dataclass(frozen=True)
class IncidentView:
    """An incident with its alerts, ready to render.

    `alerts` lists the alerts shown (firing first, then by name; at most ALERTS_SHOWN when
    read from the store); `alert_count` and `firing_count` count them all, when the store
    counted (a view built with every alert leaves them None).
    """

    incident: Incident
    slug_source: str
    labels: Mapping[str, str]
    external_url: str
    alerts: Sequence[AlertLine]
    alerts_resolved_at: datetime | None
    alert_count: int | None = None
    firing_count: int | None = None
    copies: Sequence[CardCopy] = ()
    # When its alerts began firing (`startsAt`): the first firing alert's, else the first's.
    firing_since: datetime | None = None
    # The alerts' own `severity` label, when the playbook set another severity (and nobody
    # changed it since)
    alert_severity: str | None = None
    # Who is on call now in the rotations the incident's policy pages (an open incident's)
    on_call: Sequence[OnCallNow] = ()
    # A storm incident's alert groups, summarized (bot.domain.storms); None for the others
    storm: StormSummary | None = None
    # A flapping incident's re-fires and recent state changes (bot.domain.flapping)
    flaps: FlapHistory | None = None

    @property
    def total(self) -> int:
        """How many alerts the incident holds."""
        return len(self.alerts) if self.alert_count is None else self.alert_count

    @property
    def firing(self) -> int:
        """How many alerts still fire."""
        if self.firing_count is not None:
            return self.firing_count
        return sum(1 for a in self.alerts if a.status is AlertStatus.FIRING)

    @property
    def resolved(self) -> int:
        """How many alerts have resolved."""
        return self.total - self.firing

    def announcement(self) -> CardCopy | None:
        """The incident's line in the alerts channel, once posted."""
        return next((c for c in self.copies if c.kind is CopyKind.ANNOUNCEMENT), None)

    def shown(self) -> list[AlertLine]:
        """The alerts to list: firing first, then by name; at most ALERTS_SHOWN."""
        ordered = sorted(self.alerts, key=lambda a: (a.status is not AlertStatus.FIRING, a.name))
        return ordered[:ALERTS_SHOWN]
