"""The writers of a SQLite store in one process: one at a time, never on the event loop.

Transactions opened with `session()` run on aiosqlite (its thread does the I/O); units of work
given to `run()` run whole on the batch thread. Both take the in-process write lock first, then
SQLite's (BEGIN IMMEDIATE), waiting for another process's lock without blocking the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar, cast

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.store.sessions import StoreSession
from bot.store.sqlite.batches import BatchThread, Work
from bot.store.sqlite.checkpoint import INTERVAL, WalCheckpointer
from bot.store.sqlite.engines import no_autocheckpoint, writer_engine
from bot.store.sqlite.locks import LOCK_WAIT, wait_for_lock

T = TypeVar("T")


class SqliteWriters:
    """Every write of one process to one SQLite file."""

    def __init__(self, url: str, *, lock_wait: float = LOCK_WAIT) -> None:
        self.lock_wait = lock_wait
        self.engine: AsyncEngine = writer_engine(url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.batches = BatchThread(url)
        self._lock = asyncio.Lock()
        self._checkpointer: WalCheckpointer | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[StoreSession]:
        """A write transaction on aiosqlite, committed when the block exits without error."""
        async with self._lock:
            session = await wait_for_lock(self._begin, budget=self.lock_wait)
            try:
                yield cast(StoreSession, session)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            finally:
                await session.close()

    async def _begin(self) -> AsyncSession:
        session = self._sessions()
        try:
            await session.connection()  # BEGIN IMMEDIATE: a held lock fails here
        except BaseException:
            await session.close()
            raise
        return session

    async def run(self, work: Work[T]) -> T:
        """`work` in one transaction on the batch thread."""
        async with self._lock:
            return await wait_for_lock(lambda: self.batches.run(work), budget=self.lock_wait)

    async def checkpoint_in_background(
        self, reader: AsyncEngine, interval: float = INTERVAL
    ) -> None:
        """Checkpoint the WAL from a thread instead of inside commits (a serving process)."""
        database = self.engine.url.database
        if self._checkpointer is not None or not database or database == ":memory:":
            return
        for engine in (self.engine, reader):
            event.listen(engine.sync_engine, "connect", no_autocheckpoint)
            await engine.dispose()  # connections opened before would still checkpoint
        await asyncio.to_thread(self.batches.checkpoint_elsewhere)
        self._checkpointer = WalCheckpointer(Path(database), interval=interval)
        self._checkpointer.start()

    async def dispose(self) -> None:
        """Close the connections (after a last checkpoint, when checkpointing)."""
        await asyncio.to_thread(self.batches.close)
        await self.engine.dispose()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
