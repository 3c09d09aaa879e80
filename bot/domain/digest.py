"""A built digest: what one day looked like, ready for the Slack edge to render."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from bot.domain.diagnostics import DiagnosticResult
from bot.domain.kpi import IncidentStats, IncidentTimes, KpiValue, needs_attention_first


@dataclass(frozen=True)
class RunClaim:
    """A process holds the digest run of one digest, channel and local day."""

    digest: str
    channel: str
    day: date
    late: bool


@dataclass(frozen=True)
class Digest:
    """One digest for one local day. `values` keep the configured order."""

    name: str
    day: date
    timezone: str
    values: list[KpiValue]
    stats: IncidentStats
    incidents: list[IncidentTimes] = field(default_factory=list)  # opened that day
    sentry: DiagnosticResult | None = None  # the top new issues
    late: bool = False

    @property
    def ordered(self) -> list[KpiValue]:
        """Threshold breaches first."""
        return needs_attention_first(self.values)

    @property
    def demo(self) -> bool:
        """Some of its numbers come from demo data."""
        return any(v.demo for v in self.values) or bool(self.sentry and self.sentry.demo)

    @property
    def charted(self) -> list[KpiValue]:
        """The key KPIs whose 7-day trend is drawn."""
        return [v for v in self.values if v.kpi.chart and v.error is None]
