"""The `Retry-After` header of a 429 or 503 (RFC 9110): seconds, or an HTTP date."""

from __future__ import annotations

import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime


def retry_after_seconds(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait that the headers ask for (never negative), or None when they say none.

    Header names are matched whatever their case; `now` is the epoch time, for a date.
    """
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), "")
    value = (value[0] if isinstance(value, list) and value else str(value or "")).strip()
    if not value:
        return None
    seconds = number(value)
    if seconds is None:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds)


def number(text: str) -> float | None:
    """A finite number, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
