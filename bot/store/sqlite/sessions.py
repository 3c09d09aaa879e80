"""AsyncSession's API over a sync Session, for the store thread (bot.store.sqlite.batches).

Its coroutines never suspend: the thread runs a unit of work over it to the end. Statements
marked `prepared()` run compiled once (bot.store.sqlite.prepared); the rest go through the
Session as usual.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import Connection, Result, ScalarResult
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from bot.store.sqlite.prepared import run_prepared

T = TypeVar("T")


class SyncSession:
    """AsyncSession's API over a sync Session in a transaction the store's thread began; its
    coroutines never suspend."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._connection: Connection | None = None  # the current transaction's, once asked for

    def _core_connection(self) -> Connection:
        """The connection of the session's transaction: Core statements run on it directly."""
        if self._connection is None:
            self._connection = self._session.connection()
        return self._connection

    async def execute(self, statement: Executable, params: Any = None, **kw: Any) -> Result[Any]:
        """Execute a statement."""
        ran = None if kw else run_prepared(self._core_connection(), statement, params)
        return ran if ran is not None else self._session.execute(statement, params, **kw)

    async def scalar(self, statement: Executable, params: Any = None, **kw: Any) -> Any:
        """The first column of the first row."""
        ran = None if kw else run_prepared(self._core_connection(), statement, params)
        return ran.scalar() if ran is not None else self._session.scalar(statement, params, **kw)

    async def scalars(
        self, statement: Executable, params: Any = None, **kw: Any
    ) -> ScalarResult[Any]:
        """The first column of every row."""
        return self._session.scalars(statement, params, **kw)

    async def get(self, entity: type[T], ident: Any, **kw: Any) -> T | None:
        """An object by primary key."""
        return self._session.get(entity, ident, **kw)

    async def flush(self) -> None:
        """Send pending changes."""
        self._session.flush()

    def add(self, instance: object) -> None:
        """Add an object to the unit of work."""
        self._session.add(instance)

    def add_all(self, instances: Iterable[object]) -> None:
        """Add objects to the unit of work."""
        self._session.add_all(instances)
