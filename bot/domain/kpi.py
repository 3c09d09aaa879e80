"""KPI maths: values, day-over-day and week-over-week changes, thresholds, incident statistics."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from bot.domain.incidents import Severity


class Unit(StrEnum):
    COUNT = "count"
    PERCENT = "percent"  # values are ratios: 0.25 is 25 %
    DURATION = "duration"  # seconds
    BYTES = "bytes"


class Good(StrEnum):
    """Which way a KPI should move."""

    UP = "up"
    DOWN = "down"


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class Trend(StrEnum):
    """How a change reads: better, worse or about the same."""

    BETTER = "better"
    WORSE = "worse"
    FLAT = "flat"


@dataclass(frozen=True)
class KpiDef:
    """A KPI as the operator defined it. `source` is prometheus, supabase or incidents."""

    name: str
    source: str
    query: str
    unit: Unit = Unit.COUNT
    good: Good = Good.UP
    warn: float | None = None
    fail: float | None = None
    chart: bool = False


@dataclass(frozen=True)
class Change:
    """A value against an earlier one: relative for most units, points for percentages."""

    delta: float
    relative: float | None
    trend: Trend


@dataclass(frozen=True)
class KpiValue:
    """One KPI for one day: today, yesterday, a week before, the 8-day series, or why not."""

    kpi: KpiDef
    series: tuple[float | None, ...] = ()  # oldest first; the last is the reported day
    error: str | None = None
    demo: bool = False  # from a built-in demo source, not a real system

    @property
    def value(self) -> float | None:
        return self.series[-1] if self.series else None

    @property
    def day_before(self) -> float | None:
        return self.series[-2] if len(self.series) >= 2 else None

    @property
    def week_before(self) -> float | None:
        return self.series[-8] if len(self.series) >= 8 else None

    @property
    def level(self) -> Level:
        return level_of(self.kpi, self.value)

    @property
    def day_change(self) -> Change | None:
        return change(self.kpi, self.value, self.day_before)

    @property
    def week_change(self) -> Change | None:
        return change(self.kpi, self.value, self.week_before)


FLAT_RELATIVE = 0.005  # under half a percent either way reads as "about the same"
FLAT_POINTS = 0.0005  # for percentages: under 0.05 percentage points


def change(kpi: KpiDef, current: float | None, earlier: float | None) -> Change | None:
    """How `current` compares with `earlier`, and whether that is good for this KPI."""
    if current is None or earlier is None:
        return None
    delta = current - earlier
    relative = delta / abs(earlier) if earlier else None
    if kpi.unit is Unit.PERCENT:
        flat = abs(delta) < FLAT_POINTS
    elif relative is None:
        flat = delta == 0
    else:
        flat = abs(relative) < FLAT_RELATIVE
    if flat:
        return Change(delta, relative, Trend.FLAT)
    better = (delta > 0) == (kpi.good is Good.UP)
    return Change(delta, relative, Trend.BETTER if better else Trend.WORSE)


def level_of(kpi: KpiDef, value: float | None) -> Level:
    """Thresholds are limits on the bad side: below them when up is good, above when down is."""
    if value is None:
        return Level.OK

    def breached(limit: float | None) -> bool:
        if limit is None:
            return False
        return value < limit if kpi.good is Good.UP else value > limit

    if breached(kpi.fail):
        return Level.FAIL
    if breached(kpi.warn):
        return Level.WARN
    return Level.OK


def needs_attention_first(values: Sequence[KpiValue]) -> list[KpiValue]:
    """Failing KPIs, then warnings, then the rest; the configured order within each."""
    rank = {Level.FAIL: 0, Level.WARN: 1, Level.OK: 2}
    return sorted(values, key=lambda v: rank[v.level])


# --- parsing and formatting ------------------------------------------------------------------

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BYTE_UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}
_AMOUNT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-z%]*)\s*$", re.IGNORECASE)


def parse_amount(raw: float | int | str, unit: Unit) -> float:
    """A threshold as written in config: 0.02 or "2%", 0.5 or "500ms", "2GB"; ValueError if not."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    match = _AMOUNT.match(str(raw))
    if not match:
        raise ValueError(f"{raw!r} is not a number")
    number, suffix = float(match.group(1)), match.group(2).lower()
    if not suffix:
        return number
    if unit is Unit.PERCENT and suffix == "%":
        return number / 100
    if unit is Unit.DURATION and suffix in _DURATION_UNITS:
        return number * _DURATION_UNITS[suffix]
    if unit is Unit.BYTES and suffix in _BYTE_UNITS:
        return number * _BYTE_UNITS[suffix]
    raise ValueError(f"{raw!r}: the suffix {suffix!r} does not fit the unit {unit.value}")


def format_value(value: float | None, unit: Unit) -> str:
    """A value as people read it: 1,234 · 99.95 % · 1.2 s · 3 h 5 m · 1.5 GB."""
    if value is None or math.isnan(value):
        return "n/a"
    if unit is Unit.PERCENT:
        percent = value * 100
        digits = 2 if abs(percent) >= 99 or abs(percent) < 1 else 1
        return f"{percent:.{digits}f} %"
    if unit is Unit.DURATION:
        return format_duration(value)
    if unit is Unit.BYTES:
        return format_bytes(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def format_duration(seconds: float) -> str:
    """0.25 s -> "250 ms", 95 s -> "1 m 35 s", 3 h 5 m, 2 d 4 h."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs} s" if secs else f"{minutes} m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} m" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def format_bytes(value: float) -> str:
    """Decimal units, as disks are sold and dashboards show them."""
    for suffix, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f} {suffix}"
    return f"{value:.0f} B"


def format_change(kpi: KpiDef, moved: Change | None) -> str:
    """ "+12.5 %" or "-0.3 pp" (percentage points for percentages), "±0" when flat."""
    if moved is None:
        return "n/a"
    if kpi.unit is Unit.PERCENT:
        return f"{moved.delta * 100:+.1f} pp" if moved.trend is not Trend.FLAT else "±0 pp"
    if moved.relative is None:
        return f"{moved.delta:+,.0f}" if moved.delta else "±0"
    if moved.trend is Trend.FLAT:
        return "±0 %"
    return f"{moved.relative * 100:+.1f} %"


# --- incident statistics ---------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentTimes:
    """What the statistics need of one incident."""

    id: int
    title: str
    severity: Severity
    opened_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    channel_id: str | None = None
    channel_name: str | None = None


@dataclass(frozen=True)
class IncidentStats:
    """One window's incidents. MTTA counts incidents acknowledged in the window, MTTR those
    resolved in it, each from its opening; `still_open` is what was open at the window's end."""

    opened: int = 0
    resolved: int = 0
    still_open: int = 0
    mtta: float | None = None  # seconds
    mttr: float | None = None
    by_severity: dict[Severity, int] = field(default_factory=dict)


def incident_stats(
    incidents: Iterable[IncidentTimes], start: datetime, end: datetime
) -> IncidentStats:
    """Statistics of the window [start, end)."""
    opened = resolved = still_open = 0
    acks: list[float] = []
    fixes: list[float] = []
    by_severity: dict[Severity, int] = {}
    for inc in incidents:
        if start <= inc.opened_at < end:
            opened += 1
            by_severity[inc.severity] = by_severity.get(inc.severity, 0) + 1
        if inc.acknowledged_at is not None and start <= inc.acknowledged_at < end:
            acks.append((inc.acknowledged_at - inc.opened_at).total_seconds())
        if inc.resolved_at is not None and start <= inc.resolved_at < end:
            resolved += 1
            fixes.append((inc.resolved_at - inc.opened_at).total_seconds())
        if inc.opened_at < end and (inc.resolved_at is None or inc.resolved_at >= end):
            still_open += 1
    return IncidentStats(
        opened=opened,
        resolved=resolved,
        still_open=still_open,
        mtta=sum(acks) / len(acks) if acks else None,
        mttr=sum(fixes) / len(fixes) if fixes else None,
        by_severity=dict(sorted(by_severity.items())),
    )


INCIDENT_STATS = (
    "opened",
    "resolved",
    "still_open",
    "mtta",
    "mttr",
    "sev1",
    "sev2",
    "sev3",
    "sev4",
)


def stat_value(stats: IncidentStats, name: str) -> float | None:
    """One named statistic: opened, resolved, still_open, mtta, mttr or sev1..sev4 (opened)."""
    if name in ("mtta", "mttr"):
        value: float | None = getattr(stats, name)
        return value
    if name in ("opened", "resolved", "still_open"):
        return float(getattr(stats, name))
    if name in {s.value for s in Severity}:
        return float(stats.by_severity.get(Severity(name), 0))
    raise ValueError(f"unknown incident statistic {name!r}; one of {', '.join(INCIDENT_STATS)}")


def local_day(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """A local calendar day as a UTC window: 23 or 25 hours long across daylight-saving changes."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def day_windows(last: date, zone: tzinfo, days: int) -> list[tuple[datetime, datetime]]:
    """`days` local days ending with `last`, oldest first."""
    return [local_day(last - timedelta(days=days - 1 - i), zone) for i in range(days)]
