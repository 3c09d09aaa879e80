"""Durable timers: fires escalation deadlines at their time, once, across restarts and replicas."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.domain.timers import DueTimer
from bot.errors import StoreConflict, StoreUnreachable
from bot.loops.backoff import Backoff
from bot.loops.wakeup import Wakeup, poll_until_stopped
from bot.ports import IncidentStore, IncidentTransaction
from bot.store.timers import TimerStore

log = logging.getLogger(__name__)
# Every webhook commit wakes the scheduler; it looks for due timers at most this often for them.
WAKE_GAP = 0.02
# Due timers fired in one transaction: a storm's timers come due together, and a commit each
# would keep the last of them waiting seconds. Small, so the store's writer is not held long.
BATCH = 16
DUE_LIMIT = 64  # looked at per pass; when a pass finds this many, the next starts at once
Fire = Callable[[IncidentTransaction, DueTimer], Awaitable[None]]
Task = Callable[[DueTimer], Awaitable[None]]


class TimerScheduler:
    """Polls the timers table; each due timer's work and its `fired` mark commit together."""

    def __init__(
        self,
        *,
        db: IncidentStore,
        store: TimerStore,
        handlers: dict[str, Fire],
        now: Callable[[], datetime],
        tasks: dict[str, Task] | None = None,
        poll_interval: float = 1.0,
        after_fire: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.store = store
        self.handlers = handlers
        # Slow work (diagnostics) runs outside any transaction, alongside other timers;
        # its timer is marked fired when the work ends, so a crash makes it run again.
        self.tasks: dict[str, Task] = tasks or {}
        self._running: set[asyncio.Task[None]] = set()
        self.now = now
        self.poll_interval = poll_interval
        self.after_fire = after_fire
        self._wakeup = Wakeup(min_gap=WAKE_GAP)
        self._stopping = False
        self._pause = poll_interval  # until the next pass: less when a timer comes due sooner

    def wake(self) -> None:
        """A timer was scheduled or the clock moved; look soon."""
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop after the current pass; running tasks get a few seconds to finish."""
        self._stopping = True
        self._wakeup.set(now=True)
        if self._running:
            await asyncio.wait(list(self._running), timeout=5)

    async def run(self) -> None:
        """Fire due timers until stopped (it may run again after a stop)."""
        self._stopping = False
        await poll_until_stopped(
            self.run_due,
            self._wakeup,
            pause=lambda: self._pause,
            stopped=lambda: self._stopping,
            what="timer",
        )

    async def run_due(self) -> int:
        """Fire every timer due now; returns how many fired. Sets the pause before the next
        pass: until the next timer is due, at most the poll interval."""
        fired = 0
        start = self.now()
        due = await self.store.due(start, limit=DUE_LIMIT)
        inline: list[DueTimer] = []
        for timer in due:
            task = self.tasks.get(timer.kind)
            if task is None:
                inline.append(timer)
            elif await self.store.claim(timer, self.now(), long=True):
                self._spawn(task, timer)
                fired += 1
        for first in range(0, len(inline), BATCH):
            fired += await self._fire_batch(inline[first : first + BATCH])
            self.after_fire()  # their jobs go now, not after the rest of the pass
        self._pause = await self._until_next(start, more=len(due) == DUE_LIMIT)
        return fired

    async def _until_next(self, start: datetime, *, more: bool) -> float:
        """How long to sleep: none when this pass left due timers behind (too many, or some came
        due while it ran), else until the next is due (a failed timer waits a poll interval)."""
        if more:
            return 0.0
        upcoming = await self.store.next_due(after=start)
        if upcoming is None:
            return self.poll_interval
        return min(self.poll_interval, max((upcoming - self.now()).total_seconds(), 0.0))

    def _spawn(self, task: Task, timer: DueTimer) -> None:
        running = asyncio.create_task(self._run_task(task, timer))
        self._running.add(running)
        running.add_done_callback(self._running.discard)

    async def _run_task(self, task: Task, timer: DueTimer) -> None:
        try:
            await task(timer)
        except Exception:
            log.exception("timer task %s (%s) failed", timer.id, timer.kind)
        # Its work is done: keep trying to record that while the store is unreachable, so it
        # does not run again (unless stopping: then its claim lapses and it runs once more).
        backoff = Backoff(f"marking timer {timer.id} fired")
        while True:
            try:
                await self.db.run(lambda tx: tx.mark_timer_fired(timer.id, at=self.now()))
            except StoreUnreachable as error:
                if self._stopping:
                    log.warning("timer %s (%s) not marked fired: %s", timer.id, timer.kind, error)
                    return
                await asyncio.sleep(backoff.failed(error))
            else:
                backoff.succeeded()
                break
        self.after_fire()

    async def drain(self) -> None:
        """Wait for running timer tasks (tests and shutdown)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _fire_batch(self, timers: list[DueTimer]) -> int:
        """Fire `timers` in one transaction; if one of them fails, each alone, so the others
        are not held back by it. Returns how many fired."""
        if len(timers) > 1:
            try:
                return await self.db.run(lambda tx: self._take_and_fire(tx, timers))
            except StoreUnreachable:
                raise
            except Exception as error:
                log.debug("a batch of %d timers failed (%s); firing each alone", len(timers), error)
        return sum([await self._fire(timer) for timer in timers])

    async def _take_and_fire(self, tx: IncidentTransaction, timers: list[DueTimer]) -> int:
        fired = 0
        for timer in timers:
            if not await tx.take_timer(timer.id, now=self.now()):
                continue  # another process has it
            handler = self.handlers.get(timer.kind)
            if handler is not None:
                await handler(tx, timer)
            await tx.mark_timer_fired(timer.id, at=self.now())
            fired += 1
        return fired

    async def _fire(self, timer: DueTimer) -> bool:
        """Take the timer and do its work in one transaction (on SQLite, whole on the store's
        thread): a failure rolls both back, and the timer is due again on the next pass."""
        try:
            return bool(await self.db.run(lambda tx: self._take_and_fire(tx, [timer])))
        except StoreConflict:
            return False
        except StoreUnreachable:
            raise  # the pass fails and waits for the store
        except Exception:
            log.exception("timer %s (%s) failed", timer.id, timer.kind)
            return False
