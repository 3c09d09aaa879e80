"""Diagnostics: a playbook's checks run in parallel, each within its own timeout, results posted."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.domain.diagnostics import DiagnosticResult, Status, Table
from bot.domain.incidents import Incident, TimelineEvent
from bot.domain.outbox import JobKind, OutboxJob
from bot.domain.playbooks import (
    Check,
    Playbook,
    PrometheusCheck,
    SentryCheck,
    Step,
    SupabaseCheck,
    choose_playbook,
    fill_labels,
    fill_title,
    graph_start,
    judge_no_data,
)
from bot.domain.timers import DueTimer, diagnostics_timer
from bot.ports import (
    DatabaseHealth,
    ErrorTracker,
    IncidentStore,
    IncidentTransaction,
    MetricsSource,
)
from bot.services.incidents import NotFound, in_transaction

log = logging.getLogger(__name__)
ACTOR = "tocsin"
# Results that finish within this long of the first ready one are posted together, as one
# message: a result posted alone holds the channel's next post back by a second (Slack's pace).
GATHER = 0.5


@dataclass
class DiagnosticSources:
    """The configured sources; None means not configured."""

    metrics: MetricsSource | None = None
    errors: ErrorTracker | None = None
    database: DatabaseHealth | None = None
    sentry_project: str | None = None


_MISSING = {
    "prometheus": "not configured: set PROMETHEUS_URL",
    "sentry": "not configured: set SENTRY_TOKEN and SENTRY_ORG",
    "supabase": "not configured: set SUPABASE_DB_URL",
}


def incident_source(incident: Incident) -> str:
    """Where an incident came from: alertmanager, sentry or slack."""
    return incident.key.split(":", 1)[0]


class DiagnosticsService:
    """Runs checks on demand and for incidents; never lets one slow source hold up the rest."""

    def __init__(
        self,
        *,
        store: IncidentStore,
        sources: DiagnosticSources,
        playbooks: Sequence[Playbook],
        now: Callable[[], datetime],
        on_posted: Callable[[], None] = lambda: None,
        on_scheduled: Callable[[], None] = lambda: None,
        gather: float = GATHER,
    ) -> None:
        self.store = store
        self.sources = sources
        self.playbooks = list(playbooks)
        self.now = now
        self.on_posted = on_posted
        self.on_scheduled = on_scheduled
        self.gather = gather

    async def request(self, incident_id: int, *, actor: str) -> None:
        """Run the incident's playbook now, durably (a timer), and note who asked."""
        now = self.now()
        timer = diagnostics_timer(incident_id, due=now, reason=uuid.uuid4().hex)

        async def work(tx: IncidentTransaction) -> None:
            if await tx.get_incident(incident_id) is None:
                raise NotFound(f"Incident #{incident_id} does not exist.")
            await tx.schedule(timer, at=now)
            await tx.add_events(
                incident_id,
                [TimelineEvent("diagnostics_requested", actor, now, "Diagnostics requested")],
            )

        await in_transaction(self.store, work)
        self.on_scheduled()

    def playbook_for(self, labels: Mapping[str, str], source: str) -> Playbook | None:
        """The playbook that applies to these labels."""
        return choose_playbook(self.playbooks, labels, source)

    async def run_check(
        self, step: Step, *, labels: Mapping[str, str], marker: datetime | None = None
    ) -> DiagnosticResult:
        """One check within its timeout, titled by its step; any failure becomes an error result.

        `marker`: when the incident's alerts began; a graph starts before it and marks it."""
        check = step.check
        title = fill_title(check.title, labels)
        seconds = step.timeout.total_seconds()
        try:
            result = await asyncio.wait_for(self._dispatch(check, labels, marker), seconds)
        except TimeoutError:
            return DiagnosticResult.error(title, f"no answer within {seconds:.0f}s")
        except Exception as exc:
            log.exception("diagnostic %r failed", title)
            return DiagnosticResult.error(title, f"internal error: {type(exc).__name__}")
        return replace(result, title=title)

    async def _dispatch(
        self, check: Check, labels: Mapping[str, str], marker: datetime | None
    ) -> DiagnosticResult:
        if isinstance(check, PrometheusCheck):
            return await self._prometheus(check, labels, marker)
        if isinstance(check, SentryCheck):
            return await self._sentry(check, labels)
        return await self._supabase(check)

    async def _prometheus(
        self, check: PrometheusCheck, labels: Mapping[str, str], marker: datetime | None
    ) -> DiagnosticResult:
        if self.sources.metrics is None:
            return DiagnosticResult.error(check.title, _MISSING["prometheus"], source="prometheus")
        query = fill_labels(check.query, labels)
        title = fill_title(check.title, labels)
        return judge_no_data(await self._ask_prometheus(check, query, title, marker), check.no_data)

    async def _ask_prometheus(
        self, check: PrometheusCheck, query: str, title: str, marker: datetime | None
    ) -> DiagnosticResult:
        assert self.sources.metrics is not None
        if check.graph is None:
            return await self.sources.metrics.instant(
                query,
                title=title,
                top=check.top,
                warn_above=check.warn_above,
                fail_above=check.fail_above,
                unit=check.unit,
            )
        end = self.now()
        start = graph_start(end, check.graph, marker)
        return await self.sources.metrics.graph(
            query,
            title=title,
            start=start,
            end=end,
            marker=marker,
            warn_above=check.warn_above,
            fail_above=check.fail_above,
            unit=check.unit,
        )

    async def _sentry(self, check: SentryCheck, labels: Mapping[str, str]) -> DiagnosticResult:
        if self.sources.errors is None:
            return DiagnosticResult.error(check.title, _MISSING["sentry"], source="sentry")
        project = check.project or labels.get("project") or self.sources.sentry_project
        if not project:
            return DiagnosticResult.error(
                check.title,
                "no Sentry project: name one in the playbook or set SENTRY_PROJECT",
                source="sentry",
            )
        return await self.sources.errors.top_issues(project, hours=check.hours, limit=check.limit)

    async def _supabase(self, check: SupabaseCheck) -> DiagnosticResult:
        if self.sources.database is None:
            return DiagnosticResult.error(check.title, _MISSING["supabase"], source="supabase")
        return await self.sources.database.run(check.check)

    async def run_for_incident(self, incident_id: int) -> int:
        """Run the incident's playbook; post results as they arrive, those arriving within
        `gather` seconds of each other together. Returns how many ran."""
        context = await in_transaction(self.store, lambda tx: _context(tx, incident_id))
        if context is None:
            return 0
        incident, labels, started = context
        playbook = self.playbook_for(labels, incident_source(incident))
        if playbook is None or not playbook.steps:
            await self.publish(
                incident_id,
                DiagnosticResult(
                    "Diagnostics", Status.OK, "No playbook with diagnostics matches this incident."
                ),
            )
            return 0
        run = uuid.uuid4().hex[:8]
        steps = {
            asyncio.create_task(self.run_check(step, labels=labels, marker=started)): i
            for i, step in enumerate(playbook.steps)
        }
        running = set(steps)
        try:
            while running:
                ready, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                if running and self.gather > 0:
                    more, running = await asyncio.wait(running, timeout=self.gather)
                    ready |= more
                ordered = sorted(ready, key=steps.__getitem__)  # the playbook's order
                await self.publish_all(
                    incident_id,
                    [task.result() for task in ordered],
                    keys=[f"{run}:{steps[task]}" for task in ordered],
                )
        finally:
            for task in running:
                task.cancel()
        return len(steps)

    async def publish(self, incident_id: int, result: DiagnosticResult, *, key: str = "") -> None:
        """Put a result on the timeline and in the incident channel."""
        await self.publish_all(incident_id, [result], keys=[key] if key else None)

    async def publish_all(
        self,
        incident_id: int,
        results: Sequence[DiagnosticResult],
        *,
        keys: Sequence[str] | None = None,
    ) -> None:
        """Put results on the timeline and in the incident channel, at once: results queued
        together are posted together."""
        now = self.now()
        keys = list(keys) if keys is not None else [uuid.uuid4().hex for _ in results]
        jobs = [
            OutboxJob(
                kind=JobKind.POST_DIAGNOSTIC,
                idem_key=f"diag:{incident_id}:{key}",
                incident_id=incident_id,
                payload=result_to_payload(result),
            )
            for result, key in zip(results, keys, strict=True)
        ]
        events = [
            TimelineEvent(
                "diagnostic",
                ACTOR,
                now,
                f"{result.title}: {result.status.value} — {result.text}"[:1000],
                {"status": result.status.value},
            )
            for result in results
        ]

        async def work(tx: IncidentTransaction) -> None:
            await tx.add_events(incident_id, events)
            await tx.enqueue(jobs, at=now)

        await in_transaction(self.store, work)
        self.on_posted()

    async def send_graphs(
        self, results: Sequence[DiagnosticResult], *, user: str, key: str, share_in: str = ""
    ) -> int:
        """Queue the results' graphs for the person who asked: into their DM with the bot, or
        into `share_in` (the channel they asked in). `key` names the request: queueing it again
        sends nothing twice. Returns how many graphs are on their way."""
        jobs = [
            OutboxJob(
                kind=JobKind.SEND_GRAPH,
                idem_key=f"graph:{key}:{index}",
                payload={
                    "user": user,
                    "channel": share_in,
                    "png": base64.b64encode(result.image_png).decode(),
                    "title": result.title,
                    "comment": f"{result.title}: {result.text}"[:1000],
                },
            )
            for index, result in enumerate(results)
            if result.image_png
        ]
        if jobs:
            now = self.now()
            await in_transaction(self.store, lambda tx: tx.enqueue(jobs, at=now))
            self.on_posted()
        return len(jobs)

    async def fire(self, timer: DueTimer) -> None:
        """The scheduler's entry point for a diagnostics timer."""
        if timer.incident_id is not None:
            await self.run_for_incident(timer.incident_id)


async def _context(
    tx: IncidentTransaction, incident_id: int
) -> tuple[Incident, dict[str, str], datetime] | None:
    """The incident, its labels, and when its alerts began (when it opened, without alerts)."""
    incident = await tx.get_incident(incident_id)
    if incident is None:
        return None
    group, common = await tx.incident_labels(incident_id)
    started = await tx.alerts_started_at(incident_id) or incident.opened_at
    return incident, {**common, **group}, started


def result_to_payload(result: DiagnosticResult) -> dict[str, Any]:
    """A result as JSON for the outbox (the PNG base64-encoded)."""
    return {
        "title": result.title,
        "status": result.status.value,
        "text": result.text,
        "source": result.source,
        "columns": list(result.table.columns) if result.table else None,
        "rows": [list(r) for r in result.table.rows] if result.table else None,
        "png": base64.b64encode(result.image_png).decode() if result.image_png else None,
        "demo": result.demo,
    }


def result_from_payload(payload: Mapping[str, Any]) -> DiagnosticResult:
    """The result back from its outbox JSON."""
    columns, rows, png = payload.get("columns"), payload.get("rows"), payload.get("png")
    return DiagnosticResult(
        title=str(payload.get("title", "")),
        status=Status(payload.get("status", "error")),
        text=str(payload.get("text", "")),
        source=str(payload.get("source", "")),
        table=Table(tuple(columns), tuple(tuple(r) for r in rows))
        if columns and rows is not None
        else None,
        image_png=base64.b64decode(png) if png else None,
        demo=bool(payload.get("demo", False)),
    )
