"""How a background loop survives a failing pass: it waits, longer each time, and resumes.

A pass fails when the store is unreachable (Postgres restarting, failing over) or, rarely, on
a bug. Either way the loop must not end: it waits 0.5 s, then 1, 2, 4 ... at most 10 s between
tries, and the first pass that works resets the wait. The log says it once per streak, not once
per try: the first failure (with its traceback unless it is only the store being unreachable),
a short line for each later one, and the recovery.
"""

from __future__ import annotations

import logging

from bot.errors import StoreUnreachable

log = logging.getLogger(__name__)
FIRST = 0.5  # seconds before the first retry
CAP = 10.0  # seconds between retries, at most


class Backoff:
    """The waits of one loop between failed passes, and the log lines that say so."""

    def __init__(self, what: str, *, first: float = FIRST, cap: float = CAP) -> None:
        self.what = what
        self.first = first
        self.cap = cap
        self.failures = 0

    def failed(self, error: Exception) -> float:
        """Note a failed pass; return how many seconds to wait before the next."""
        self.failures += 1
        delay = min(self.cap, self.first * 2.0 ** (self.failures - 1))
        if self.failures == 1:
            log.log(
                logging.WARNING if isinstance(error, StoreUnreachable) else logging.ERROR,
                "%s failed: %s; trying again in %.1f s",
                self.what,
                describe(error),
                delay,
                exc_info=None if isinstance(error, StoreUnreachable) else error,
                extra={"loop": self.what},
            )
        else:
            log.warning(
                "%s still failing (%d tries): %s; trying again in %.1f s",
                self.what,
                self.failures,
                describe(error),
                delay,
                extra={"loop": self.what},
            )
        return delay

    def succeeded(self) -> None:
        """Note a pass that worked: the next failure waits the shortest time again."""
        if self.failures:
            log.info(
                "%s works again after %d failed tries",
                self.what,
                self.failures,
                extra={"loop": self.what},
            )
            self.failures = 0


def describe(error: BaseException) -> str:
    """One short line for an error: its type and the first line of its message."""
    text = str(error).strip().splitlines()
    first = text[0][:200] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
