"""The ports the services depend on, as typing.Protocols; adapters live at the edges."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.alerts import Alert, AlertGroup, KnownAlert
from bot.domain.incidents import Incident, TimelineEvent
from bot.domain.outbox import OutboxJob


class Clock(Protocol):
    """Tells the time; tests pass a fake one."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True)
class AlertWrite:
    """An alert to insert or update on an incident."""

    alert: Alert
    seen_at: datetime


class IncidentTransaction(Protocol):
    """One unit of work over the incident store; committed once when the block exits."""

    async def receipt_seen(self, source: str, body_sha256: str) -> bool:
        """True when this exact webhook body was stored before."""
        ...

    async def add_receipt(
        self,
        group: AlertGroup,
        *,
        body: str,
        body_sha256: str,
        at: datetime,
        incident_id: int | None,
    ) -> None:
        """Record a webhook receipt."""
        ...

    async def latest_incident(self, key: str) -> Incident | None:
        """The newest incident of a key."""
        ...

    async def open_incident(
        self, group: AlertGroup, *, at: datetime, auto_resolve: bool
    ) -> Incident:
        """Create a triggered incident for a group; it becomes the newest of its key."""
        ...

    async def save_incident(self, incident: Incident, *, at: datetime) -> None:
        """Persist the incident's state fields."""
        ...

    async def known_alerts(self, incident_id: int) -> dict[str, KnownAlert]:
        """The alerts an incident holds, by fingerprint."""
        ...

    async def write_alerts(self, incident_id: int, writes: Sequence[AlertWrite]) -> None:
        """Insert new alerts and update changed ones."""
        ...

    async def firing_count(self, incident_id: int) -> int:
        """How many of the incident's alerts still fire."""
        ...

    async def set_alerts_resolved_at(self, incident_id: int, at: datetime | None) -> None:
        """Remember when the last alert resolved (None when one fires again)."""
        ...

    async def add_events(self, incident_id: int, events: Sequence[TimelineEvent]) -> None:
        """Append timeline events."""
        ...

    async def enqueue(self, jobs: Sequence[OutboxJob], *, at: datetime) -> None:
        """Add Slack work to the outbox, coalescing where a job says so."""
        ...


class IncidentStore(Protocol):
    """Opens units of work."""

    def transaction(self) -> AbstractAsyncContextManager[IncidentTransaction]:
        """A unit of work, committed when the block exits without error."""
        ...
