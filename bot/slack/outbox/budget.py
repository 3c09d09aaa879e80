"""Slack's budget is the app's, however many replicas send in turn: every call is written in
the store before it leaves, and a process that becomes the sender counts the calls of the
current window, whoever made them, before making its own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from bot.slack.outbox import ratelimit
from bot.slack.outbox.ratelimit import RateLimiter

log = logging.getLogger(__name__)
# A call written down as it left reached Slack a moment later, and replicas' clocks differ a
# little: a call restored from the store counts as made this much later than written.
ARRIVAL_MARGIN = 2.0


class CallLog(Protocol):
    """Where calls are written down (the store's `slack_calls`)."""

    async def record(self, method: str, at: datetime) -> None: ...

    async def since(self, at: datetime) -> list[tuple[str, datetime]]: ...


class SharedBudget:
    """The limiter's calls, kept where the next sender finds them."""

    def __init__(self, *, log: CallLog, limiter: RateLimiter, now: Callable[[], datetime]) -> None:
        self.calls = log
        self.limiter = limiter
        self.now = now

    async def spend(self, method: str) -> None:
        """Write a call down; it leaves only once written (else a new sender could not know)."""
        await self.calls.record(method, self.now())

    async def take_over(self) -> int:
        """Count in the limiter every call of the current window (the previous sender's
        included); how many there were."""
        now = self.now()
        window = timedelta(seconds=ratelimit.WINDOW + ARRIVAL_MARGIN)
        try:
            found = await self.calls.since(now - window)
        except Exception:
            # Nothing known of the window: wait it out rather than risk Slack's 429s.
            log.exception("the last minute's Slack calls could not be read; waiting a minute")
            for method in ratelimit.METHOD_TIERS:
                self.limiter.block(method, ratelimit.WINDOW + ARRIVAL_MARGIN)
            return 0
        # This process's own calls are among them (written before they left): count from the
        # store alone.
        self.limiter.forget_calls()
        for method, at in found:
            ago = (now - at).total_seconds() - ARRIVAL_MARGIN
            self.limiter.restore(method, max(ago, 0.0))
        if found:
            log.info(
                "counted %d Slack calls of the last minute made before this sender", len(found)
            )
        return len(found)
