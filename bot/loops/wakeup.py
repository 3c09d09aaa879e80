"""The wake-up signal of a polling loop (outbox worker, timer scheduler, digest scheduler).

Each loop makes a pass over the store, then sleeps until it is woken or its timeout passes.
Commits wake them; during an alert storm that is hundreds of times a second, and a loop that
made a pass for each wake would spend the CPU the webhooks need on queries that find nothing new.
So a wake that comes less than `min_gap` after the last pass waits out the rest of the gap, and
the wakes of that stretch share one pass. A wake marked `now` (an outbox slot came free, the
loop is stopping) skips the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from bot.loops.backoff import Backoff


class Wakeup:
    """Sleep until woken or timed out; passes at most once per `min_gap` unless woken `now`."""

    def __init__(self, min_gap: float = 0.0) -> None:
        self.min_gap = min_gap
        self._event = asyncio.Event()
        self._now = False
        self._pass_started = -min_gap
        self._loop: asyncio.AbstractEventLoop | None = None

    def set(self, *, now: bool = False) -> None:
        """Wake the loop: after the gap, or at once with `now`. Safe from any thread (a unit of
        work on the store's thread wakes the scheduler this way)."""
        loop = self._loop
        if loop is not None and not _running(loop):
            loop.call_soon_threadsafe(self._set, now)
        else:
            self._set(now)

    def _set(self, now: bool) -> None:
        self._now = self._now or now
        self._event.set()

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109 - a poll interval, not a deadline
        """Return when woken (and the gap has passed) or after `timeout` seconds."""
        self._loop = asyncio.get_running_loop()
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout=timeout)
        self._event.clear()
        if self._now:
            self._now = False
        else:
            gap = self._pass_started + self.min_gap - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)
        self._pass_started = time.monotonic()


def _running(loop: asyncio.AbstractEventLoop) -> bool:
    """True when called on `loop`'s own thread, while it runs."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def poll_until_stopped(
    make_pass: Callable[[], Awaitable[object]],
    wakeup: Wakeup,
    *,
    pause: Callable[[], float],
    stopped: Callable[[], bool],
    what: str,
) -> None:
    """Make a pass, then sleep until woken or `pause()` seconds; until `stopped()`.

    A pass that fails is logged and the loop goes on after a wait that grows while passes keep
    failing (bot.loops.backoff): the next pass may find the store back.
    """
    backoff = Backoff(f"{what} loop")
    while not stopped():
        try:
            await make_pass()
        except Exception as error:
            await wakeup.wait(backoff.failed(error))
            continue
        backoff.succeeded()
        await wakeup.wait(pause())
