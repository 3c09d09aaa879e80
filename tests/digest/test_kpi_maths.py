"""KPI maths on fixed data: changes, thresholds, formatting, incident statistics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.incidents import Severity
from bot.domain.kpi import (
    Good,
    IncidentTimes,
    KpiDef,
    KpiValue,
    Level,
    Trend,
    Unit,
    day_windows,
    format_change,
    format_value,
    incident_stats,
    needs_attention_first,
    parse_amount,
)

ERRORS = KpiDef("Error rate", "prometheus", "q", Unit.PERCENT, Good.DOWN, warn=0.01, fail=0.05)
USERS = KpiDef("Daily active users", "supabase", "s", Unit.COUNT, Good.UP, warn=900, fail=500)


def series(*values: float | None) -> tuple[float | None, ...]:
    return tuple(values)


def test_day_over_day_and_week_over_week_changes() -> None:
    # Eight days, oldest first: the week before, six days, then yesterday and the reported day.
    value = KpiValue(USERS, series(800, 900, 950, 1000, 1000, 1000, 1000, 1100))
    assert value.value == 1100 and value.day_before == 1000 and value.week_before == 800
    day = value.day_change
    assert day is not None and day.delta == 100 and day.relative == pytest.approx(0.10)
    assert day.trend is Trend.BETTER  # more users is good
    week = value.week_change
    assert week is not None and week.relative == pytest.approx(0.375)
    assert format_change(USERS, day) == "+10.0 %"


def test_a_rising_error_rate_is_worse_and_reads_in_points() -> None:
    value = KpiValue(ERRORS, series(0.004, None, None, None, None, None, 0.004, 0.006))
    moved = value.day_change
    assert moved is not None and moved.trend is Trend.WORSE
    assert format_change(ERRORS, moved) == "+0.2 pp"
    assert value.week_change is not None and value.week_change.trend is Trend.WORSE


def test_tiny_moves_read_as_flat_and_missing_days_give_no_change() -> None:
    flat = KpiValue(USERS, series(1000, 1000, 1000, 1000, 1000, 1000, 1000, 1002)).day_change
    assert flat is not None and flat.trend is Trend.FLAT
    assert KpiValue(USERS, series(None, 5)).day_change is None
    assert KpiValue(USERS, series(5, None)).day_change is None
    assert KpiValue(USERS, series(5)).week_change is None
    from_zero = KpiValue(USERS, series(0, 3)).day_change
    assert from_zero is not None and from_zero.relative is None and from_zero.trend is Trend.BETTER
    assert format_change(USERS, from_zero) == "+3"


@pytest.mark.parametrize(
    ("kpi", "value", "level"),
    [
        (ERRORS, 0.002, Level.OK),
        (ERRORS, 0.01, Level.OK),  # at the limit is not over it
        (ERRORS, 0.02, Level.WARN),
        (ERRORS, 0.08, Level.FAIL),
        (USERS, 1000, Level.OK),
        (USERS, 899, Level.WARN),  # up is good: the limits are floors
        (USERS, 10, Level.FAIL),
        (USERS, None, Level.OK),
    ],
)
def test_thresholds_sit_on_the_bad_side(kpi: KpiDef, value: float | None, level: Level) -> None:
    assert KpiValue(kpi, series(value)).level is level


def test_breaches_come_first_keeping_the_configured_order() -> None:
    ok = KpiValue(USERS, series(1000))
    warn = KpiValue(ERRORS, series(0.02))
    fail = KpiValue(USERS, series(1))
    ordered = needs_attention_first([ok, warn, fail])
    assert ordered == [fail, warn, ok]


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        ("2%", Unit.PERCENT, 0.02),
        (0.02, Unit.PERCENT, 0.02),
        ("500ms", Unit.DURATION, 0.5),
        ("4h", Unit.DURATION, 14400),
        ("2GB", Unit.BYTES, 2e9),
        (900, Unit.COUNT, 900),
    ],
)
def test_thresholds_parse_in_their_unit(raw: str | float, unit: Unit, expected: float) -> None:
    assert parse_amount(raw, unit) == pytest.approx(expected)


@pytest.mark.parametrize(("raw", "unit"), [("2%", Unit.DURATION), ("fast", Unit.COUNT)])
def test_thresholds_that_do_not_fit_are_refused(raw: str, unit: Unit) -> None:
    with pytest.raises(ValueError, match=repr(raw)):
        parse_amount(raw, unit)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1234, Unit.COUNT, "1,234"),
        (0.9995, Unit.PERCENT, "99.95 %"),
        (0.0042, Unit.PERCENT, "0.42 %"),
        (0.25, Unit.DURATION, "250 ms"),
        (95, Unit.DURATION, "1 m 35 s"),
        (3 * 3600 + 300, Unit.DURATION, "3 h 5 m"),
        (1.5e9, Unit.BYTES, "1.5 GB"),
        (None, Unit.COUNT, "n/a"),
    ],
)
def test_values_read_as_people_write_them(value: float | None, unit: Unit, text: str) -> None:
    assert format_value(value, unit) == text


T0 = datetime(2026, 11, 24, tzinfo=UTC)


def incident(
    n: int, opened_h: float, ack_h: float | None, resolved_h: float | None, sev: str = "sev2"
) -> IncidentTimes:
    def at(hours: float | None) -> datetime | None:
        return None if hours is None else T0 + timedelta(hours=hours)

    opened = at(opened_h)
    assert opened is not None
    return IncidentTimes(n, f"incident {n}", Severity(sev), opened, at(ack_h), at(resolved_h))


def test_mtta_and_mttr_of_a_day() -> None:
    incidents = [
        incident(1, -2, -1.5, 1, "sev1"),  # opened the day before, resolved today after 3 h
        incident(2, 2, 2.25, 4),  # acked after 15 min, resolved after 2 h
        incident(3, 10, 10.75, None, "sev3"),  # acked after 45 min, still open
        incident(4, 20, None, None),  # not acked, still open
        incident(5, 30, 30.1, 31),  # the next day: not counted
    ]
    stats = incident_stats(incidents, T0, T0 + timedelta(days=1))
    assert (stats.opened, stats.resolved, stats.still_open) == (3, 2, 2)
    assert stats.mtta == pytest.approx((15 + 45) * 60 / 2)  # incident 1 was acked the day before
    assert stats.mttr == pytest.approx((3 * 3600 + 2 * 3600) / 2)
    assert stats.by_severity == {Severity.SEV2: 2, Severity.SEV3: 1}


def test_a_quiet_day_has_no_mtta() -> None:
    stats = incident_stats([], T0, T0 + timedelta(days=1))
    assert (stats.opened, stats.mtta, stats.mttr) == (0, None, None)


def test_local_days_are_23_or_25_hours_across_daylight_saving() -> None:
    paris = ZoneInfo("Europe/Paris")
    spring = day_windows(date(2026, 3, 29), paris, 2)
    assert [(end - start).total_seconds() / 3600 for start, end in spring] == [24, 23]
    autumn = day_windows(date(2026, 10, 25), paris, 1)
    assert (autumn[0][1] - autumn[0][0]) == timedelta(hours=25)
    assert autumn[0][0] == datetime(2026, 10, 24, 22, tzinfo=UTC)  # midnight CEST
