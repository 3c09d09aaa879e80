"""Group commit: units of work that arrive together share one transaction and one commit.

Under an alert storm many webhooks wait for the store at once. Each used to open a session,
begin, and commit on its own; the commit and the session cost as much as the unit's statements.
Here the first unit to arrive starts a batch runner; the units that arrive while a batch is
being written form the next batch. Every caller still gets its answer only after the commit
that holds its unit, so "answered" keeps meaning "durable".

A batch is all-or-nothing. When a unit fails (or the commit does), the batch is rolled back and
each of its units runs again in a transaction of its own, so one bad unit fails only itself and a
conflict with another process is retried as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from bot.ports import IncidentStore, IncidentTransaction, IntakeReads
from bot.services.incidents import in_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")
Unit = Callable[[IncidentTransaction], Coroutine[Any, Any, T]]

ATTEMPTS = 3  # tries of a unit run alone, when another writer changed its rows first


class _Pending(Generic[T]):
    __slots__ = ("future", "reads", "unit")

    def __init__(self, unit: Unit[T], future: asyncio.Future[T], reads: IntakeReads | None) -> None:
        self.unit = unit
        self.future = future
        self.reads = reads


class GroupCommit:
    """Runs units of work in shared transactions: at most `max_batch` units per commit.

    `writers` batches may be written at once: 1 where the store has one writer (SQLite), more
    where transactions run side by side (Postgres).
    """

    def __init__(self, store: IncidentStore, *, max_batch: int = 16, writers: int = 1) -> None:
        if max_batch < 1 or writers < 1:
            raise ValueError("max_batch and writers must be at least 1")
        self.store = store
        self.max_batch = max_batch
        self.writers = writers
        self._queue: deque[_Pending[Any]] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.units = 0

    async def run(self, unit: Unit[T], *, reads: IntakeReads | None = None) -> T:
        """Run `unit` in a transaction, maybe shared; returns once that transaction committed.

        `reads`: what the unit will read, read for the whole batch at once before its units run.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(unit, future, reads))
        if self._running < self.writers:
            self._running += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                count = min(len(self._queue), self.max_batch)
                batch = [self._queue.popleft() for _ in range(count)]
                await self._write(batch)
                # Let the answers of this batch go out (and new webhooks come in) before the
                # next: on SQLite a batch never suspends, so without this a long queue would
                # hold every answer until the whole queue was written.
                await asyncio.sleep(0)
        finally:
            self._running -= 1

    async def _write(self, batch: list[_Pending[Any]]) -> None:
        live = [p for p in batch if not p.future.done()]
        if len(live) > 1:
            try:
                results = await self._together(live)
            except asyncio.CancelledError:
                for pending in live:
                    pending.future.cancel()
                raise
            except Exception as exc:
                log.info("a batch of %d units failed (%s); writing each alone", len(live), exc)
            else:
                self.batches += 1
                self.units += len(live)
                for pending, result in zip(live, results, strict=True):
                    if not pending.future.done():
                        pending.future.set_result(result)
                return
        for pending in live:
            await self._alone(pending)

    async def _together(self, batch: list[_Pending[Any]]) -> list[Any]:
        reads = [pending.reads for pending in batch if pending.reads is not None]

        async def units(tx: IncidentTransaction) -> list[Any]:
            if reads:
                await tx.read_ahead(reads)
            return [await pending.unit(tx) for pending in batch]

        return await self.store.run(units)

    async def _alone(self, pending: _Pending[Any]) -> None:
        try:
            result = await in_transaction(self.store, pending.unit, attempts=ATTEMPTS)
        except asyncio.CancelledError:
            pending.future.cancel()
            raise
        except BaseException as exc:  # the caller gets its own error
            if not pending.future.done():
                pending.future.set_exception(exc)
            return
        self.batches += 1
        self.units += 1
        if not pending.future.done():
            pending.future.set_result(result)
