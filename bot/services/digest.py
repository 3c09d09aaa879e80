"""The daily KPI digest: built from its sources, queued exactly once per digest, channel and day."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.domain.diagnostics import DiagnosticResult, one_line
from bot.domain.digest import Digest
from bot.domain.digest_schedule import ScheduledDigest, latest_due, next_due
from bot.domain.kpi import IncidentStats, KpiDef, KpiValue, day_windows, incident_stats, stat_value
from bot.domain.outbox import OutboxJob
from bot.errors import IntegrationError
from bot.loops.wakeup import Wakeup, poll_until_stopped
from bot.ports import DigestRuns, ErrorTracker, KpiDatabase, KpiMetrics

log = logging.getLogger(__name__)
DAYS = 8  # the reported day and the seven before it: day-over-day, week-over-week, trend
NOT_CONFIGURED = {
    "prometheus": "not configured: set PROMETHEUS_URL",
    "supabase": "not configured: set SUPABASE_DB_URL",
}
# (digest, channel, idempotency key) -> the outbox jobs that post it
Render = Callable[[Digest, str, str], Awaitable[list[OutboxJob]]]


@dataclass
class KpiSources:
    """Where KPI values come from; None means not configured."""

    metrics: KpiMetrics | None = None
    database: KpiDatabase | None = None
    errors: ErrorTracker | None = None
    sentry_project: str | None = None
    demo: frozenset[str] = frozenset()  # the sources answering with demo data, by name


class DigestBuilder:
    """Builds one digest for one local day; a failing source marks only its KPIs unavailable."""

    def __init__(
        self,
        *,
        runs: DigestRuns,
        sources: KpiSources,
        kpis: Sequence[KpiDef],
        timeout: float = 20.0,
    ) -> None:
        self.runs = runs
        self.sources = sources
        self.kpis = list(kpis)
        self.timeout = timeout

    def kpi(self, name: str) -> KpiDef | None:
        """A KPI by name, case-insensitively."""
        return next((k for k in self.kpis if k.name.lower() == name.strip().lower()), None)

    async def build(
        self,
        digest: ScheduledDigest,
        day: date,
        *,
        late: bool = False,
        only: Sequence[KpiDef] | None = None,
    ) -> Digest:
        """The digest of `day` (a local date in the digest's time zone)."""
        windows = day_windows(day, digest.zone, DAYS)
        incidents = await self.runs.incidents_during(windows[0][0], windows[-1][1])
        stats = [incident_stats(incidents, start, end) for start, end in windows]
        chosen = list(only) if only is not None else self._chosen(digest)
        values, sentry = await asyncio.gather(
            asyncio.gather(*(self._value(k, windows, stats) for k in chosen)),
            self._new_issues(digest),
        )
        start, end = windows[-1]
        opened = sorted(
            (i for i in incidents if start <= i.opened_at < end), key=lambda i: i.opened_at
        )
        return Digest(
            name=digest.name,
            day=day,
            timezone=digest.timezone,
            values=list(values),
            stats=stats[-1],
            incidents=opened,
            sentry=sentry,
            late=late,
        )

    def _chosen(self, digest: ScheduledDigest) -> list[KpiDef]:
        if not digest.kpis:
            return self.kpis
        wanted = {n.lower() for n in digest.kpis}
        return [k for k in self.kpis if k.name.lower() in wanted]

    async def _value(
        self,
        kpi: KpiDef,
        windows: Sequence[tuple[datetime, datetime]],
        stats: Sequence[IncidentStats],
    ) -> KpiValue:
        try:
            async with asyncio.timeout(self.timeout):
                series = await self._series(kpi, windows, stats)
            return KpiValue(kpi, tuple(series), demo=kpi.source in self.sources.demo)
        except TimeoutError:
            return KpiValue(kpi, error=f"no answer within {self.timeout:g}s")
        except (IntegrationError, ValueError) as exc:
            return KpiValue(kpi, error=one_line(str(exc), 200))
        except Exception as exc:  # a bug in one KPI must not stop the digest; the log has it
            log.exception("KPI %r failed", kpi.name)
            return KpiValue(kpi, error=f"internal error: {type(exc).__name__}")

    async def _series(
        self,
        kpi: KpiDef,
        windows: Sequence[tuple[datetime, datetime]],
        stats: Sequence[IncidentStats],
    ) -> list[float | None]:
        if kpi.source == "incidents":
            return [stat_value(s, kpi.query) for s in stats]
        if kpi.source == "prometheus":
            if self.sources.metrics is None:
                raise IntegrationError(NOT_CONFIGURED["prometheus"])
            return await self.sources.metrics.values_at(kpi.query, [end for _, end in windows])
        if self.sources.database is None:
            raise IntegrationError(NOT_CONFIGURED["supabase"])
        return await self.sources.database.values_for(kpi.query, windows)

    async def _new_issues(self, digest: ScheduledDigest) -> DiagnosticResult | None:
        project = digest.sentry_project or self.sources.sentry_project
        if self.sources.errors is None or not project:
            return None
        return await self.sources.errors.new_issues(project, hours=24, limit=5)


class DigestScheduler:
    """Posts each digest once a day per channel; any number of processes may run one."""

    def __init__(
        self,
        *,
        builder: DigestBuilder,
        runs: DigestRuns,
        digests: Sequence[ScheduledDigest],
        default_channel: str | None,
        render: Render,
        now: Callable[[], datetime],
        on_queued: Callable[[], None] = lambda: None,
        poll_interval: float = 60.0,
    ) -> None:
        self.builder = builder
        self.runs = runs
        self.digests = [d for d in digests if d.enabled]
        self.default_channel = default_channel
        self.render = render
        self.now = now
        self.on_queued = on_queued
        self.poll_interval = poll_interval
        self._wakeup = Wakeup()
        self._stopping = False

    def channels(self, digest: ScheduledDigest) -> list[str]:
        """Where a digest goes: its channels, else the alerts channel."""
        if digest.channels:
            return list(digest.channels)
        return [self.default_channel] if self.default_channel else []

    def digest(self, name: str | None) -> ScheduledDigest:
        """A configured digest by name (the first when no name); KeyError when unknown."""
        for digest in self.digests:
            if name is None or digest.name == name:
                return digest
        if name is None:
            return ScheduledDigest()
        raise KeyError(name)

    async def run_due(self) -> int:
        """Queue every digest whose time has come and that nobody posted yet; how many."""
        queued = 0
        for digest in self.digests:
            queued += await self._run_digest(digest)
        if queued:
            self.on_queued()
        return queued

    async def _run_digest(self, digest: ScheduledDigest) -> int:
        now = self.now()
        due = latest_due(now, digest.at, digest.zone)
        built: Digest | None = None
        queued = 0
        for channel in self.channels(digest):
            if due.is_late(now) and not await self.runs.seen(digest.name, channel):
                # A run is missed only if the digest was running before it: a first start
                # after today's time waits for tomorrow instead of posting late at once.
                await self.runs.skip(digest.name, channel, due.run_day, due_at=due.due_at, now=now)
                continue
            claim = await self.runs.claim(
                digest.name,
                channel,
                due.run_day,
                due_at=due.due_at,
                now=now,
                late=due.is_late(now),
            )
            if claim is None:
                continue
            try:
                if built is None or built.late != claim.late:
                    built = await self.builder.build(digest, due.report_day, late=claim.late)
                idem = f"digest:{digest.name}:{channel}:{due.run_day.isoformat()}"
                jobs = await self.render(built, channel, idem)
                await self.runs.queue(claim, jobs, now=self.now())
                queued += 1
            except Exception:
                log.exception(
                    "digest %s for %s failed; the next pass tries again", digest.name, channel
                )
                await self.runs.release(claim)
        return queued

    async def post_now(
        self, name: str | None = None, *, day: date | None = None
    ) -> list[tuple[str, str]]:
        """`tocsin digest --now`: queue the digest of `day` (default yesterday) at once, to every
        channel; returns (channel, job key) pairs. Not the day's run: the schedule still posts."""
        digest = self.digest(name)
        today = self.now().astimezone(digest.zone).date()
        built = await self.builder.build(digest, day or today - timedelta(days=1))
        queued = []
        for channel in self.channels(digest):
            idem = f"digest-now:{digest.name}:{channel}:{uuid.uuid4().hex}"
            await self.runs.enqueue(await self.render(built, channel, idem), now=self.now())
            queued.append((channel, idem))
        self.on_queued()
        return queued

    def wake(self) -> None:
        self._wakeup.set(now=True)

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set(now=True)

    async def run(self) -> None:
        """Check for due digests until stopped; sleep until the next one is due (it may run
        again after a stop)."""
        self._stopping = False
        await poll_until_stopped(
            self.run_due,
            self._wakeup,
            pause=self._pause,
            stopped=lambda: self._stopping,
            what="digest",
        )

    def _pause(self) -> float:
        now = self.now()
        upcoming = [next_due(now, d.at, d.zone).due_at for d in self.digests]
        if not upcoming:
            return self.poll_interval
        until = (min(upcoming) - now).total_seconds()
        return max(0.05, min(self.poll_interval, until + 0.05))
