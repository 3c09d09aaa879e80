"""The real clients, pointed at the demo servers, with every result marked demo data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from bot.domain.diagnostics import DiagnosticResult
from bot.ports import DatabaseHealth, ErrorTracker, KpiDatabase, KpiMetrics, MetricsSource


def marked(result: DiagnosticResult) -> DiagnosticResult:
    """The result, saying it comes from demo data."""
    return replace(result, demo=True)


class DemoMetrics:
    """Prometheus diagnostics and KPIs from the demo Prometheus."""

    def __init__(self, client: MetricsSource, kpis: KpiMetrics) -> None:
        self.client = client
        self.kpis = kpis

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
        return marked(
            await self.client.instant(
                query, title=title, top=top, warn_above=warn_above, fail_above=fail_above, unit=unit
            )
        )

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
        return marked(
            await self.client.graph(
                query,
                title=title,
                start=start,
                end=end,
                marker=marker,
                step=step,
                warn_above=warn_above,
                fail_above=fail_above,
                unit=unit,
            )
        )

    async def health(self, *, title: str = "Prometheus") -> DiagnosticResult:
        """Is it ready."""
        return marked(await self.client.health(title=title))

    async def values_at(self, query: str, moments: Sequence[datetime]) -> list[float | None]:
        """A KPI's numbers."""
        return await self.kpis.values_at(query, moments)


class DemoErrors:
    """Sentry diagnostics from the demo Sentry."""

    def __init__(self, client: ErrorTracker) -> None:
        self.client = client

    async def top_issues(
        self, project: str, *, hours: int = 24, limit: int = 5
    ) -> DiagnosticResult:
        """The top unresolved issues of a project."""
        return marked(await self.client.top_issues(project, hours=hours, limit=limit))

    async def latest_event(self, issue_id: str) -> DiagnosticResult:
        """One issue's latest event."""
        return marked(await self.client.latest_event(issue_id))

    async def new_issues(
        self, project: str, *, hours: int = 24, limit: int = 5
    ) -> DiagnosticResult:
        """Unresolved issues first seen in the last `hours`."""
        return marked(await self.client.new_issues(project, hours=hours, limit=limit))

    async def health(self) -> DiagnosticResult:
        """Can we reach it."""
        return marked(await self.client.health())


class DemoHealth:
    """Database health and KPIs from the demo database."""

    def __init__(self, database: DatabaseHealth, kpis: KpiDatabase) -> None:
        self.database = database
        self.kpis = kpis

    async def run(self, check: str) -> DiagnosticResult:
        """One named check."""
        return marked(await self.database.run(check))

    async def run_all(self) -> list[DiagnosticResult]:
        """Every check."""
        return [marked(r) for r in await self.database.run_all()]

    async def values_for(
        self, sql: str, windows: Sequence[tuple[datetime, datetime]]
    ) -> list[float | None]:
        """A KPI's numbers."""
        return await self.kpis.values_for(sql, windows)
