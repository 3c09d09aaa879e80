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

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

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
    """One thread, one pysqlite connection: transactions run there, one at a time."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = batch_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocsin-store")

    async def run(self, work: Work[T]) -> T:
        """`work` in one transaction on the thread; committed when it returns."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, work)

    def _run(self, work: Work[T]) -> T:
        session: Session = self._sessions()
        try:
            with session.begin():
                session.connection()  # BEGIN IMMEDIATE: a held lock fails here, before any work
                return run_to_end(work(SyncSession(session)))
        finally:
            session.close()

    def checkpoint_elsewhere(self) -> None:
        """Leave WAL checkpoints to the checkpoint thread (connections made from now on)."""
        event.listen(self.engine, "connect", no_autocheckpoint)
        self.engine.dispose()

    def close(self) -> None:
        """Finish what runs, then close the connection."""
        self._thread.shutdown(wait=True)
        self.engine.dispose()
