"""Units of work run in one transaction on the store's own thread, on pysqlite.

A unit of work only reads and writes through its session (SyncSession: coroutines that never
suspend), so the thread runs it to the end without an event loop, and the event loop waits
only for the thread's answer: one hand-over per transaction however many statements it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from bot.store.sessions import StoreSession
from bot.store.sqlite.engines import batch_engine, no_autocheckpoint
from bot.store.sqlite.sessions import SyncSession

T = TypeVar("T")
Work = Callable[[StoreSession], Coroutine[Any, Any, T]]


class Suspended(RuntimeError):
    """A unit of work run on the store's thread waited on something other than the store."""


def run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits on a future (a bare `yield`, as sleep(0), is fine)."""
    try:
        while True:
            if coroutine.send(None) is not None:
                raise Suspended("a unit of work on the store's thread awaited a future")
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        coroutine.close()


class BatchThread:
    """One thread, one pysqlite connection: transactions run there, one at a time.

    The thread keeps its connection between transactions (the pool's checkout, reset and
    checkin cost as much as a small transaction); each unit's session joins the transaction
    begun on it, which commits when the unit returns and rolls back when it raises."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = batch_engine(url)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocsin-store")
        self._connection: Connection | None = None  # used on the thread only

    async def run(self, work: Work[T]) -> T:
        """`work` in one transaction on the thread; committed when it returns."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, work)

    def _run(self, work: Work[T]) -> T:
        if self._connection is None:
            self._connection = self.engine.connect()
        # BEGIN IMMEDIATE: a held lock fails here, before any work.
        with self._connection.begin():
            session = Session(bind=self._connection, expire_on_commit=False)
            try:
                result = run_to_end(work(SyncSession(session)))
                session.flush()  # what the unit added, before the transaction commits
                return result
            finally:
                session.close()

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def checkpoint_elsewhere(self) -> None:
        """Leave WAL checkpoints to the checkpoint thread (connections made from now on)."""
        event.listen(self.engine, "connect", no_autocheckpoint)
        self._thread.submit(self._disconnect).result()
        self.engine.dispose()

    def close(self) -> None:
        """Finish what runs, then close the connection."""
        self._thread.submit(self._disconnect).result()
        self._thread.shutdown(wait=True)
        self.engine.dispose()
