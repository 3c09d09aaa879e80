"""The ports the services depend on, as typing.Protocols; adapters live at the edges."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from bot.domain.alerts import Alert, AlertGroup, AlertsOnRecord
from bot.domain.contacts import Contact, Delivery, ServiceNotice
from bot.domain.diagnostics import DiagnosticResult
from bot.domain.digest import RunClaim
from bot.domain.incidents import Incident, Severity, TimelineEvent
from bot.domain.intake import AlertWrite as AlertWrite
from bot.domain.kpi import IncidentTimes
from bot.domain.oncall import Override
from bot.domain.outbox import OutboxJob
from bot.domain.storms import StormMember, StormWeather
from bot.domain.timers import Timer

T = TypeVar("T")


class Clock(Protocol):
    """Tells the time; tests pass a fake one."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True)
class IntakeReads:
    """What one notification's intake will read: a transaction shared by several notifications
    reads it for all of them at once (`IncidentTransaction.read_ahead`)."""

    source: str
    body_sha256: str
    key: str  # the incident key of its alert group
    fingerprints: tuple[str, ...]


class IncidentTransaction(Protocol):
    """One unit of work over the incident store; committed once when the block exits."""

    async def read_ahead(self, reads: Sequence[IntakeReads]) -> None:
        """Read at once what these notifications' intakes will ask for (receipts, the newest
        incident of each key, its alerts of these fingerprints); changes nothing, and every
        answer stays what it would have been without it."""
        ...

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
        self,
        group: AlertGroup,
        *,
        at: datetime,
        auto_resolve: bool,
        severity: Severity | None = None,
        playbook: str | None = None,
        runbook: str | None = None,
        drill: bool = False,
        storm_id: int | None = None,
        replacing: int | None,
    ) -> Incident:
        """Create a triggered incident for a group; it becomes the newest of its key, in place
        of `replacing` (the newest this transaction read, or None when it read none). Another
        writer that opened or replaced it meanwhile wins: this raises StoreConflict.
        `storm_id`: the storm incident it is folded into (bot.domain.storms)."""
        ...

    async def count_events(self, incident_id: int, kind: str, since: datetime) -> int:
        """How many timeline events of `kind` the incident had after `since`."""
        ...

    async def storm_weather(self, since: datetime) -> tuple[StormWeather, int]:
        """How many alert groups were new since `since`, the storm still open and when a group
        last joined it; and how many storms there have been."""
        ...

    async def storm_groups(self, storm_id: int) -> list[Incident]:
        """The incidents of the alert groups a storm holds."""
        ...

    async def storm_members(self, storm_id: int) -> list[StormMember]:
        """The alert groups a storm holds, with their alerts counted, in the order they joined."""
        ...

    async def save_incident(self, incident: Incident, *, at: datetime) -> Incident:
        """Persist state fields if nobody saved since it was read (else StoreConflict)."""
        ...

    async def alerts_on_record(
        self, incident_id: int, fingerprints: Sequence[str]
    ) -> AlertsOnRecord:
        """The incident's alerts of these fingerprints, and whether any other one fires
        (a cost that does not grow with the incident's alerts)."""
        ...

    async def write_alerts(self, incident_id: int, writes: Sequence[AlertWrite]) -> None:
        """Insert new alerts and update changed ones."""
        ...

    async def firing_alerts(self, incident_id: int) -> list[Alert]:
        """The incident's alerts that are firing, as they were last notified."""
        ...

    async def set_alerts_resolved_at(self, incident_id: int, at: datetime | None) -> None:
        """Remember when the last alert resolved (None when one fires again)."""
        ...

    async def add_events(self, incident_id: int, events: Sequence[TimelineEvent]) -> None:
        """Append timeline events."""
        ...

    async def enqueue(self, jobs: Sequence[OutboxJob], *, at: datetime) -> int:
        """Add Slack work to the outbox, coalescing where a job says so; how many jobs are new
        (a job absorbed by a pending one, or already queued, is not)."""
        ...

    async def declare_incident(
        self, *, title: str, severity: Severity, actor: str, at: datetime
    ) -> Incident:
        """Open an incident a person declared."""
        ...

    async def get_incident(self, incident_id: int) -> Incident | None:
        """One incident by id, fresh from the store."""
        ...

    async def incident_in_channel(self, channel_id: str) -> Incident | None:
        """The incident whose channel this is."""
        ...

    async def recent_incidents(
        self, *, resolved: bool | None, since: datetime | None, limit: int = 200
    ) -> list[Incident]:
        """Incidents newest first: resolved or not (None: both), opened since `since`."""
        ...

    async def open_incidents(self, limit: int = 50) -> list[Incident]:
        """Unresolved incidents, newest first."""
        ...

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        """An incident's timeline, oldest first."""
        ...

    async def incident_labels(self, incident_id: int) -> tuple[dict[str, str], dict[str, str]]:
        """The incident's (group labels, common labels)."""
        ...

    async def alerts_started_at(self, incident_id: int) -> datetime | None:
        """When the incident's first alert began firing (the earliest `startsAt`), if any."""
        ...

    async def mark_timer_fired(self, timer_id: int, *, at: datetime) -> None:
        """A timer's work is done: it never fires again (in the transaction of that work)."""
        ...

    async def take_timer(self, timer_id: int, *, now: datetime) -> bool:
        """Take a due timer for the work of this transaction: False when another process has
        it (or fired it already)."""
        ...

    async def schedule(self, timer: Timer, *, at: datetime) -> None:
        """Add a durable timer unless its idem key exists."""
        ...

    async def cancel_timers(self, incident_id: int, kind: str) -> int:
        """Cancel an incident's pending timers of a kind."""
        ...

    async def overrides(self, rotation: str, now: datetime) -> list[Override]:
        """A rotation's overrides that have not ended."""
        ...

    async def add_override(self, override: Override, *, by: str, at: datetime) -> None:
        """Record an on-call override."""
        ...


class IncidentStore(Protocol):
    """Opens units of work."""

    def transaction(self) -> AbstractAsyncContextManager[IncidentTransaction]:
        """A unit of work, committed when the block exits without error."""
        ...

    async def run(self, work: Callable[[IncidentTransaction], Coroutine[Any, Any, T]]) -> T:
        """`work` as one unit of work, committed when it returns. It reads and writes only
        through its transaction (it awaits nothing else), so the store may run it wherever its
        I/O costs least: on SQLite, whole on the store's thread."""
        ...


class ContactSender(Protocol):
    """Sends a page through a contact method beyond Slack (email, push, SMS, a webhook)."""

    async def send(self, contact: Contact, *, title: str, body: str) -> Delivery:
        """Send once; never raises for the destination's failure (the Delivery says it)."""
        ...


class ServiceSender(Protocol):
    """Tells a paging service (PagerDuty, Opsgenie, a webhook) of an incident."""

    async def send_event(self, kind: str, name: str, notice: ServiceNotice) -> Delivery:
        """Send once; never raises for the service's failure (the Delivery says it)."""
        ...


class Silencer(Protocol):
    """Creates and expires alert silences (Alertmanager)."""

    async def create(
        self,
        matchers: Mapping[str, str],
        *,
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """Create a silence; returns its id."""
        ...

    async def expire(self, silence_id: str) -> None:
        """Expire a silence."""
        ...


class AlertSource(Protocol):
    """Which alerts Alertmanager holds now (silenced ones too)."""

    async def alerts(self, matchers: Mapping[str, str]) -> list[Alert]:
        """Its alerts whose labels equal these; raises IntegrationError with a one-line
        reason."""
        ...


class MetricsSource(Protocol):
    """Prometheus, as diagnostics see it."""

    async def instant(
        self,
        query: str,
        *,
        title: str,
        top: int = 10,
        warn_above: float | None = None,
        fail_above: float | None = None,
        unit: str = "",
    ) -> DiagnosticResult:
        """An instant query as a table."""
        ...

    async def graph(
        self,
        query: str,
        *,
        title: str,
        start: datetime,
        end: datetime,
        marker: datetime | None = None,
        step: float | None = None,
        warn_above: float | None = None,
        fail_above: float | None = None,
        unit: str = "",
    ) -> DiagnosticResult:
        """A range query as a graph."""
        ...

    async def health(self, *, title: str = "Prometheus") -> DiagnosticResult:
        """Is it ready."""
        ...


class ErrorTracker(Protocol):
    """Sentry, as diagnostics see it."""

    async def top_issues(
        self, project: str, *, hours: int = 24, limit: int = 5
    ) -> DiagnosticResult:
        """The top unresolved issues of a project."""
        ...

    async def latest_event(self, issue_id: str) -> DiagnosticResult:
        """One issue's latest event."""
        ...

    async def new_issues(
        self, project: str, *, hours: int = 24, limit: int = 5
    ) -> DiagnosticResult:
        """Unresolved issues first seen in the last `hours`."""
        ...

    async def health(self) -> DiagnosticResult:
        """Can we reach it with our token."""
        ...


class DatabaseHealth(Protocol):
    """Supabase, as diagnostics see it."""

    async def run(self, check: str) -> DiagnosticResult:
        """One named check."""
        ...

    async def run_all(self) -> list[DiagnosticResult]:
        """Every configured check."""
        ...


class KpiMetrics(Protocol):
    """Prometheus, as KPIs see it: a query's one number at given moments."""

    async def values_at(self, query: str, moments: Sequence[datetime]) -> list[float | None]:
        """Raises IntegrationError with a one-line reason."""
        ...


class KpiDatabase(Protocol):
    """Supabase Postgres, as KPIs see it: the operator's SELECT over day windows."""

    async def values_for(
        self, sql: str, windows: Sequence[tuple[datetime, datetime]]
    ) -> list[float | None]:
        """Raises IntegrationError with a one-line reason."""
        ...


class DigestRuns(Protocol):
    """Exactly-once digest runs, and the incidents their statistics read."""

    async def claim(
        self, digest: str, channel: str, day: date, *, due_at: datetime, now: datetime, late: bool
    ) -> RunClaim | None:
        """Take the run, or None when another process (or an earlier run) has it."""
        ...

    async def queue(self, claim: RunClaim, jobs: Sequence[OutboxJob], *, now: datetime) -> None:
        """Enqueue the run's message and mark the run done, in one transaction."""
        ...

    async def release(self, claim: RunClaim) -> None:
        """Give a claim back so the next pass tries again."""
        ...

    async def seen(self, digest: str, channel: str) -> bool:
        """True when this digest has a run for this channel, of any day."""
        ...

    async def skip(
        self, digest: str, channel: str, day: date, *, due_at: datetime, now: datetime
    ) -> None:
        """Record a run as not posted."""
        ...

    async def enqueue(self, jobs: Sequence[OutboxJob], *, now: datetime) -> None:
        """Enqueue jobs outside any run (`tocsin digest --now`)."""
        ...

    async def incidents_during(self, start: datetime, end: datetime) -> list[IncidentTimes]:
        """Incidents open at some moment of [start, end), drills left out."""
        ...
