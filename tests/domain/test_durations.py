"""One way to write durations, in tocsin.yml and in commands."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.durations import config_duration, parse_duration, positive_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4h", timedelta(hours=4)),
        ("30m", timedelta(minutes=30)),
        ("2d", timedelta(days=2)),
        ("90s", timedelta(seconds=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("1h30m", timedelta(minutes=90)),
        ("90m", timedelta(minutes=90)),
        ("1d2h3m", timedelta(days=1, hours=2, minutes=3)),
        ("1m30s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        (" 1H 30M ", timedelta(minutes=90)),
        ("0s", timedelta(0)),
    ],
)
def test_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid duration"),
        ("   ", "invalid duration"),
        ("4", "invalid duration"),
        ("h", "invalid duration"),
        ("4x", "invalid duration"),
        ("-4h", "invalid duration"),
        ("30m1h", "invalid duration"),
        ("1h1h", "invalid duration"),
        ("4 hours", "invalid duration"),
        ("99999999999d", "too long"),
    ],
)
def test_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_a_shift_or_a_range_must_be_longer_than_zero() -> None:
    assert positive_duration("4h") == timedelta(hours=4)
    for zero in ("0m", "0h0m"):
        with pytest.raises(ValueError, match="longer than zero"):
            positive_duration(zero)


def test_config_takes_bare_seconds_and_leaves_other_types_to_the_model() -> None:
    assert config_duration("90") == timedelta(seconds=90)
    assert config_duration("5m") == timedelta(minutes=5)
    assert config_duration(90) == 90
    with pytest.raises(ValueError, match="invalid duration 'soon'"):
        config_duration("soon")
