from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.oncall import (
    SEARCH_HORIZON,
    Layer,
    Override,
    Rotation,
    Shift,
    current_and_next,
    on_call_at,
)

ALICE, BOB, CAROL, DAVE, ZOE, YURI = "U_ALICE", "U_BOB", "U_CAROL", "U_DAVE", "U_ZOE", "U_YURI"
MONDAY = 0
BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def weekly(members: tuple[str, ...], start: date, **kwargs: object) -> Layer:
    return Layer(members, MONDAY, time(9, 0), start, **kwargs)  # type: ignore[arg-type]


def rotation(*layers: Layer, tz: str = "Europe/Berlin", name: str = "primary") -> Rotation:
    return Rotation(name, tz, layers)


# First handoff: Monday 2026-01-05 09:00 CET = 08:00 UTC (start is a Thursday).
TEAM = rotation(weekly((ALICE, BOB, CAROL), date(2026, 1, 1)))


# --- weekly and daily rotations ---------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 1, 1, 12), None),
        (utc(2026, 1, 5, 7, 59, 59), None),
        (utc(2026, 1, 5, 8), ALICE),
        (utc(2026, 1, 12, 7, 59, 59), ALICE),
        (utc(2026, 1, 12, 8), BOB),
        (utc(2026, 1, 19, 7, 59, 59), BOB),
        (utc(2026, 1, 19, 8), CAROL),
        (utc(2026, 1, 26, 7, 59, 59), CAROL),
        (utc(2026, 1, 26, 8), ALICE),
        (utc(2026, 1, 26, 8, 0, 1), ALICE),
    ],
)
def test_weekly_rotation_hands_off_exactly_at_the_local_handoff_time(
    now: datetime, expected: str | None
) -> None:
    assert on_call_at(TEAM, now) == expected


def test_start_on_the_handoff_weekday_makes_that_day_the_first_handoff() -> None:
    team = rotation(weekly((ALICE, BOB), date(2026, 1, 5)))
    assert on_call_at(team, utc(2026, 1, 5, 7, 59, 59)) is None
    assert on_call_at(team, utc(2026, 1, 5, 8)) == ALICE


def test_now_in_another_time_zone_is_the_same_instant() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    assert on_call_at(TEAM, datetime(2026, 1, 12, 16, 59, 59, tzinfo=tokyo)) == ALICE
    assert on_call_at(TEAM, datetime(2026, 1, 12, 17, 0, 0, tzinfo=tokyo)) == BOB


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 1, 1, 17, 59, 59), None),
        (utc(2026, 1, 1, 18), ALICE),
        (utc(2026, 1, 2, 17, 59, 59), ALICE),
        (utc(2026, 1, 2, 18), BOB),
        (utc(2026, 1, 3, 17, 59, 59), BOB),
        (utc(2026, 1, 3, 18), ALICE),
    ],
)
def test_daily_rotation_ignores_the_weekday(now: datetime, expected: str | None) -> None:
    daily = Layer((ALICE, BOB), 3, time(18, 0), date(2026, 1, 1), period_days=1)
    assert on_call_at(rotation(daily, tz="UTC"), now) == expected


def test_fortnightly_rotation_counts_from_the_start_date() -> None:
    layer = Layer((ALICE, BOB), MONDAY, time(0, 0), date(2026, 1, 1), period_days=14)
    team = rotation(layer, tz="UTC")
    assert on_call_at(team, utc(2026, 1, 14, 23, 59, 59)) == ALICE
    assert on_call_at(team, utc(2026, 1, 15)) == BOB
    assert on_call_at(team, utc(2026, 1, 29)) == ALICE


def test_empty_members_and_empty_rotations_have_nobody() -> None:
    assert on_call_at(rotation(weekly((), date(2026, 1, 1))), utc(2026, 6, 1)) is None
    assert on_call_at(rotation(), utc(2026, 6, 1)) is None
    assert current_and_next(rotation(), utc(2026, 6, 1)) == (None, None)


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        on_call_at(TEAM, datetime(2026, 1, 12, 8))
    with pytest.raises(ValueError, match="timezone-aware"):
        current_and_next(TEAM, datetime(2026, 1, 12, 8))


# --- daylight saving time ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "start", "last_before", "handoff"),
    [
        # Berlin spring forward on Sun 2026-03-29: 09:00 CET = 08:00 UTC, then CEST = 07:00.
        ("Europe/Berlin", date(2026, 3, 16), utc(2026, 3, 23, 8), utc(2026, 3, 30, 7)),
        # Berlin fall back on Sun 2026-10-25: 09:00 CEST = 07:00 UTC, then CET = 08:00.
        ("Europe/Berlin", date(2026, 10, 12), utc(2026, 10, 19, 7), utc(2026, 10, 26, 8)),
        # New York spring forward on Sun 2026-03-08: 09:00 EST = 14:00 UTC, then EDT = 13:00.
        ("America/New_York", date(2026, 2, 23), utc(2026, 3, 2, 14), utc(2026, 3, 9, 13)),
        # New York fall back on Sun 2026-11-01: 09:00 EDT = 13:00 UTC, then EST = 14:00.
        ("America/New_York", date(2026, 10, 19), utc(2026, 10, 26, 13), utc(2026, 11, 2, 14)),
    ],
)
def test_weekly_handoff_stays_at_local_nine_across_dst(
    tz: str, start: date, last_before: datetime, handoff: datetime
) -> None:
    team = rotation(weekly((ALICE, BOB, CAROL), start), tz=tz)
    second = timedelta(seconds=1)
    assert on_call_at(team, last_before - second) == ALICE
    assert on_call_at(team, last_before) == BOB
    assert on_call_at(team, handoff - second) == BOB
    assert on_call_at(team, handoff) == CAROL
    assert handoff.astimezone(ZoneInfo(tz)).time() == time(9, 0)
    assert handoff - last_before != timedelta(days=7)
    current, following = current_and_next(team, handoff - second)
    assert current == Shift(BOB, last_before, handoff)
    assert following == Shift(CAROL, handoff, handoff + timedelta(days=7))


def test_handoff_in_the_spring_forward_gap_happens_when_the_gap_ends() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29; the handoff is at 03:00 CEST = 01:00 UTC.
    daily = Layer((ALICE, BOB), MONDAY, time(2, 30), date(2026, 3, 28), period_days=1)
    team = rotation(daily)
    assert on_call_at(team, utc(2026, 3, 28, 1, 29, 59)) is None
    assert on_call_at(team, utc(2026, 3, 28, 1, 30)) == ALICE
    assert on_call_at(team, utc(2026, 3, 29, 0, 59, 59)) == ALICE
    assert on_call_at(team, utc(2026, 3, 29, 1)) == BOB
    assert on_call_at(team, utc(2026, 3, 30, 0, 29, 59)) == BOB
    assert on_call_at(team, utc(2026, 3, 30, 0, 30)) == ALICE
    current, _ = current_and_next(team, utc(2026, 3, 29, 12))
    assert current == Shift(BOB, utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30))


def test_handoff_in_the_new_york_gap_happens_when_the_gap_ends() -> None:
    # 02:30 does not exist in New York on 2026-03-08; the handoff is at 03:00 EDT = 07:00 UTC.
    daily = Layer((ALICE, BOB), MONDAY, time(2, 30), date(2026, 3, 7), period_days=1)
    team = rotation(daily, tz="America/New_York")
    assert on_call_at(team, utc(2026, 3, 7, 7, 30)) == ALICE
    assert on_call_at(team, utc(2026, 3, 8, 6, 59, 59)) == ALICE
    assert on_call_at(team, utc(2026, 3, 8, 7)) == BOB


def test_ambiguous_handoff_time_uses_the_first_occurrence() -> None:
    # 02:30 happens twice in Berlin on 2026-10-25; the first one is CEST = 00:30 UTC.
    daily = Layer((ALICE, BOB), MONDAY, time(2, 30), date(2026, 10, 24), period_days=1)
    team = rotation(daily)
    assert on_call_at(team, utc(2026, 10, 24, 0, 30)) == ALICE
    assert on_call_at(team, utc(2026, 10, 25, 0, 29, 59)) == ALICE
    assert on_call_at(team, utc(2026, 10, 25, 0, 30)) == BOB
    assert on_call_at(team, utc(2026, 10, 25, 1, 30)) == BOB  # the second 02:30
    assert on_call_at(team, utc(2026, 10, 26, 1, 29, 59)) == BOB
    assert on_call_at(team, utc(2026, 10, 26, 1, 30)) == ALICE


# --- restricted layers -------------------------------------------------------------------

WEEKDAYS = (0, 1, 2, 3, 4)
OFFICE = rotation(
    weekly((ALICE, BOB), date(2026, 1, 5)),
    weekly(
        (DAVE,), date(2026, 1, 5), restrict_hours=(time(9), time(17)), restrict_weekdays=WEEKDAYS
    ),
)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 1, 7, 7, 59, 59), ALICE),  # Wed 08:59:59 CET
        (utc(2026, 1, 7, 8), DAVE),  # Wed 09:00 CET
        (utc(2026, 1, 7, 15, 59, 59), DAVE),
        (utc(2026, 1, 7, 16), ALICE),  # Wed 17:00 CET
        (utc(2026, 1, 10, 11), ALICE),  # Saturday noon
        (utc(2026, 1, 12, 7, 59, 59), ALICE),
        (utc(2026, 1, 12, 8), DAVE),  # the 24/7 layer hands off to Bob underneath
        (utc(2026, 1, 12, 16), BOB),
    ],
)
def test_business_hours_layer_wins_over_the_24_7_layer(now: datetime, expected: str | None) -> None:
    assert on_call_at(OFFICE, now) == expected


def test_business_hours_follow_local_time_across_dst() -> None:
    # Mon 2026-03-30 is CEST: 09:00-17:00 local = 07:00-15:00 UTC.
    assert on_call_at(OFFICE, utc(2026, 3, 30, 6, 59, 59)) != DAVE
    assert on_call_at(OFFICE, utc(2026, 3, 30, 7)) == DAVE
    assert on_call_at(OFFICE, utc(2026, 3, 30, 15)) != DAVE


def test_current_and_next_between_business_hours_and_the_base_layer() -> None:
    assert current_and_next(OFFICE, utc(2026, 1, 7, 11)) == (
        Shift(DAVE, utc(2026, 1, 7, 8), utc(2026, 1, 7, 16)),
        Shift(ALICE, utc(2026, 1, 7, 16), utc(2026, 1, 8, 8)),
    )
    # Friday evening: Alice covers the weekend, then Dave on Monday morning.
    assert current_and_next(OFFICE, utc(2026, 1, 9, 17)) == (
        Shift(ALICE, utc(2026, 1, 9, 16), utc(2026, 1, 12, 8)),
        Shift(DAVE, utc(2026, 1, 12, 8), utc(2026, 1, 12, 16)),
    )


def test_overnight_window_belongs_to_the_day_it_starts() -> None:
    night = Layer((CAROL,), MONDAY, time(0), date(2026, 1, 1), restrict_hours=(time(22), time(6)))
    night_monday = Layer(
        (DAVE,),
        MONDAY,
        time(0),
        date(2026, 1, 1),
        restrict_hours=(time(22), time(6)),
        restrict_weekdays=(MONDAY,),
    )
    team = rotation(night, night_monday, tz="UTC")
    assert on_call_at(team, utc(2026, 1, 12, 21, 59, 59)) is None  # Monday
    assert on_call_at(team, utc(2026, 1, 12, 22)) == DAVE
    assert on_call_at(team, utc(2026, 1, 13, 5, 59, 59)) == DAVE  # Tuesday, Monday's night
    assert on_call_at(team, utc(2026, 1, 13, 6)) is None
    assert on_call_at(team, utc(2026, 1, 13, 22)) == CAROL  # Tuesday's night


def test_weekday_restriction_without_hours_covers_whole_local_days() -> None:
    weekend = weekly((CAROL,), date(2026, 1, 5), restrict_weekdays=(5, 6))
    team = rotation(weekly((ALICE,), date(2026, 1, 5)), weekend)
    assert on_call_at(team, utc(2026, 1, 9, 22, 59, 59)) == ALICE  # Fri 23:59:59 CET
    assert on_call_at(team, utc(2026, 1, 9, 23)) == CAROL  # Sat 00:00 CET
    assert on_call_at(team, utc(2026, 1, 11, 22, 59, 59)) == CAROL
    assert on_call_at(team, utc(2026, 1, 11, 23)) == ALICE


# --- overrides ---------------------------------------------------------------------------

DUO = rotation(weekly((ALICE, BOB), date(2026, 1, 5)))  # Alice from Mon 2026-01-05 08:00 UTC
ZOE_COVERS = Override("primary", ZOE, utc(2026, 1, 7, 10), utc(2026, 1, 7, 14))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 1, 7, 9, 59, 59), ALICE),
        (utc(2026, 1, 7, 10), ZOE),
        (utc(2026, 1, 7, 12), ZOE),
        (utc(2026, 1, 7, 13, 59, 59), ZOE),
        (utc(2026, 1, 7, 14), ALICE),
    ],
)
def test_override_wins_inside_its_half_open_interval(now: datetime, expected: str) -> None:
    assert on_call_at(DUO, now, [ZOE_COVERS]) == expected


def test_override_of_another_rotation_is_ignored() -> None:
    other = Override("secondary", ZOE, utc(2026, 1, 7, 10), utc(2026, 1, 7, 14))
    assert on_call_at(DUO, utc(2026, 1, 7, 12), [other]) == ALICE


def test_override_covers_a_time_when_the_layers_have_nobody() -> None:
    early = Override("primary", ZOE, utc(2026, 1, 1), utc(2026, 1, 2))
    assert on_call_at(DUO, utc(2026, 1, 1, 12), [early]) == ZOE


def test_overlapping_overrides_the_last_one_wins() -> None:
    yuri = Override("primary", YURI, utc(2026, 1, 7, 12), utc(2026, 1, 7, 13))
    assert on_call_at(DUO, utc(2026, 1, 7, 11), [ZOE_COVERS, yuri]) == ZOE
    assert on_call_at(DUO, utc(2026, 1, 7, 12), [ZOE_COVERS, yuri]) == YURI
    assert on_call_at(DUO, utc(2026, 1, 7, 13), [ZOE_COVERS, yuri]) == ZOE
    assert on_call_at(DUO, utc(2026, 1, 7, 12), [yuri, ZOE_COVERS]) == ZOE
    assert current_and_next(DUO, utc(2026, 1, 7, 11), [ZOE_COVERS, yuri]) == (
        Shift(ZOE, utc(2026, 1, 7, 10), utc(2026, 1, 7, 12)),
        Shift(YURI, utc(2026, 1, 7, 12), utc(2026, 1, 7, 13)),
    )
    assert current_and_next(DUO, utc(2026, 1, 7, 12, 30), [ZOE_COVERS, yuri]) == (
        Shift(YURI, utc(2026, 1, 7, 12), utc(2026, 1, 7, 13)),
        Shift(ZOE, utc(2026, 1, 7, 13), utc(2026, 1, 7, 14)),
    )


def test_override_with_a_local_time_zone() -> None:
    local = Override(
        "primary",
        ZOE,
        datetime(2026, 1, 7, 11, tzinfo=BERLIN),
        datetime(2026, 1, 7, 15, tzinfo=BERLIN),
    )
    current, following = current_and_next(DUO, utc(2026, 1, 7, 12), [local])
    assert current == Shift(ZOE, utc(2026, 1, 7, 10), utc(2026, 1, 7, 14))
    assert current.starts_at.utcoffset() == timedelta(0)
    assert following == Shift(ALICE, utc(2026, 1, 7, 14), utc(2026, 1, 12, 8))


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "message"),
    [
        (datetime(2026, 1, 7, 10), utc(2026, 1, 7, 14), "starts_at must be a timezone-aware"),
        (utc(2026, 1, 7, 10), datetime(2026, 1, 7, 14), "ends_at must be a timezone-aware"),
        (utc(2026, 1, 7, 14), utc(2026, 1, 7, 14), "must end after it starts"),
    ],
)
def test_invalid_overrides_are_rejected(
    starts_at: datetime, ends_at: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Override("primary", ZOE, starts_at, ends_at)


# --- current_and_next --------------------------------------------------------------------


def test_current_and_next_across_a_handoff() -> None:
    assert current_and_next(TEAM, utc(2026, 1, 12, 7, 59, 59)) == (
        Shift(ALICE, utc(2026, 1, 5, 8), utc(2026, 1, 12, 8)),
        Shift(BOB, utc(2026, 1, 12, 8), utc(2026, 1, 19, 8)),
    )
    assert current_and_next(TEAM, utc(2026, 1, 12, 8)) == (
        Shift(BOB, utc(2026, 1, 12, 8), utc(2026, 1, 19, 8)),
        Shift(CAROL, utc(2026, 1, 19, 8), utc(2026, 1, 26, 8)),
    )


def test_current_and_next_across_an_override() -> None:
    assert current_and_next(DUO, utc(2026, 1, 7, 9), [ZOE_COVERS]) == (
        Shift(ALICE, utc(2026, 1, 5, 8), utc(2026, 1, 7, 10)),
        Shift(ZOE, utc(2026, 1, 7, 10), utc(2026, 1, 7, 14)),
    )
    assert current_and_next(DUO, utc(2026, 1, 7, 10), [ZOE_COVERS]) == (
        Shift(ZOE, utc(2026, 1, 7, 10), utc(2026, 1, 7, 14)),
        Shift(ALICE, utc(2026, 1, 7, 14), utc(2026, 1, 12, 8)),
    )


def test_override_for_the_same_user_bounds_the_shift_and_next_skips_that_user() -> None:
    alice = Override("primary", ALICE, utc(2026, 1, 7, 10), utc(2026, 1, 7, 14))
    assert current_and_next(DUO, utc(2026, 1, 7, 12), [alice]) == (
        Shift(ALICE, utc(2026, 1, 7, 10), utc(2026, 1, 7, 14)),
        Shift(BOB, utc(2026, 1, 12, 8), utc(2026, 1, 19, 8)),
    )


def test_current_and_next_before_the_first_handoff() -> None:
    assert current_and_next(TEAM, utc(2026, 1, 3)) == (
        None,
        Shift(ALICE, utc(2026, 1, 5, 8), utc(2026, 1, 12, 8)),
    )


def test_a_lone_member_shift_is_cut_at_the_search_horizon() -> None:
    now = utc(2026, 6, 3, 12)
    solo = rotation(weekly((ALICE,), date(2026, 1, 5)))
    assert current_and_next(solo, now) == (
        Shift(ALICE, now - SEARCH_HORIZON, now + SEARCH_HORIZON),
        None,
    )


def test_same_user_in_consecutive_periods_is_one_shift() -> None:
    team = rotation(weekly((ALICE, ALICE, BOB), date(2026, 1, 5)))
    assert current_and_next(team, utc(2026, 1, 6)) == (
        Shift(ALICE, utc(2026, 1, 5, 8), utc(2026, 1, 19, 8)),
        Shift(BOB, utc(2026, 1, 19, 8), utc(2026, 1, 26, 8)),
    )


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"handoff_weekday": 7}, "handoff_weekday"),
        ({"period_days": 0}, "period_days"),
        ({"handoff_time": time(9, tzinfo=UTC)}, "naive"),
        ({"restrict_hours": (time(9), time(17, tzinfo=UTC))}, "naive"),
        ({"restrict_weekdays": ()}, "must not be empty"),
        ({"restrict_weekdays": (1, 7)}, "restrict_weekdays"),
    ],
)
def test_invalid_layers_are_rejected(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "members": (ALICE,),
        "handoff_weekday": MONDAY,
        "handoff_time": time(9),
        "start": date(2026, 1, 1),
    }
    with pytest.raises(ValueError, match=message):
        Layer(**(base | kwargs))  # type: ignore[arg-type]


def test_unknown_time_zone_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Rotation("primary", "Mars/Olympus_Mons", ())
