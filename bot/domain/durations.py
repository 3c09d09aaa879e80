"""Durations as people write them in tocsin.yml and in commands: `30s`, `5m`, `4h`, `1h30m`,
`2d`, `500ms`, `1.5h`; in config a bare number is seconds."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ORDER = list(UNITS)


def parse_duration(text: str, *, bare_seconds: bool = False) -> timedelta:
    """A duration from `text` (units largest first, each at most once); ValueError says why."""
    compact = "".join(text.split()).lower()
    if bare_seconds and _NUMBER.fullmatch(compact):
        return _seconds(float(compact), text)
    parts = list(_PART.finditer(compact))
    units = [p.group(2) for p in parts]
    whole = "".join(p.group(0) for p in parts) == compact
    ordered = units == sorted(units, key=_ORDER.index) and len(set(units)) == len(units)
    if not compact or not parts or not whole or not ordered:
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 5m, 4h, 1h30m or 2d")
    return _seconds(sum(float(p.group(1)) * UNITS[p.group(2)] for p in parts), text)


def positive_duration(text: str) -> timedelta:
    """A duration longer than zero (a shift, a range)."""
    duration = parse_duration(text)
    if duration <= timedelta(0):
        raise ValueError(f"duration {text!r} must be longer than zero")
    return duration


def _seconds(seconds: float, text: str) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"duration {text!r} is too long") from None


def config_duration(value: object) -> object:
    """For config validators: a string parsed here (a bare number is seconds); anything else
    (a number, a timedelta) left to the model's own type."""
    return parse_duration(value, bare_seconds=True) if isinstance(value, str) else value


def lasted(start: datetime, end: datetime) -> str:
    """How long from `start` to `end`, as people say it: 45s, 12m, 3h 05m, 2d 4h."""
    seconds = max(0, int((end - start).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"
