"""Store sessions: AsyncSession on Postgres, a sync Session behind the same API on SQLite.

On SQLite a statement takes microseconds, while aiosqlite's hop to its thread and back costs
hundreds: running SQLite directly on the event loop is several times faster. The repositories
see one small async API either way (`StoreSession`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Result, ScalarResult
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

from bot.store.prepared import run_prepared

T = TypeVar("T")


class Transaction(Protocol):
    """`async with session.begin():` commits on success, rolls back on error."""

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any: ...


class StoreSession(Protocol):
    """The part of AsyncSession the store uses."""

    def begin(self) -> Transaction: ...

    async def execute(
        self, statement: Executable, params: Any = None, **kw: Any
    ) -> Result[Any]: ...

    async def scalar(self, statement: Executable, params: Any = None, **kw: Any) -> Any: ...

    async def scalars(
        self, statement: Executable, params: Any = None, **kw: Any
    ) -> ScalarResult[Any]: ...

    async def get(self, entity: type[T], ident: Any, **kw: Any) -> T | None: ...

    async def flush(self) -> None: ...

    def add(self, instance: object) -> None: ...

    def add_all(self, instances: Iterable[object]) -> None: ...


class _SyncTransaction:
    def __init__(self, owner: SyncSession) -> None:
        self._owner = owner

    async def __aenter__(self) -> None:
        self._owner._session.begin()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._owner._connection = None
        if exc_type is None:
            self._owner._session.commit()
        else:
            self._owner._session.rollback()


class SyncSession:
    """AsyncSession's API over a sync Session; its coroutines never suspend."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._connection: Connection | None = None  # the current transaction's, once asked for

    async def __aenter__(self) -> SyncSession:
        # The session's work will not suspend: let what is ready (webhooks waiting to be read,
        # answers waiting to be sent) run first, so background store work is taken in small
        # pieces between requests rather than in one long stretch.
        await asyncio.sleep(0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._connection = None
        self._session.close()

    def begin(self) -> Transaction:
        """A transaction committed when the block exits without error."""
        return _SyncTransaction(self)

    def _core_connection(self) -> Connection:
        """The connection of the session's transaction: Core statements run on it directly."""
        if self._connection is None:
            self._connection = self._session.connection()
        return self._connection

    async def execute(self, statement: Executable, params: Any = None, **kw: Any) -> Result[Any]:
        """Execute a statement."""
        if not kw and _is_core(statement):
            connection = self._core_connection()
            ran = run_prepared(connection, statement, params)
            return ran if ran is not None else connection.execute(statement, params)
        return self._session.execute(statement, params, **kw)

    async def scalar(self, statement: Executable, params: Any = None, **kw: Any) -> Any:
        """The first column of the first row."""
        if not kw and _is_core(statement):
            connection = self._core_connection()
            ran = run_prepared(connection, statement, params)
            return ran.scalar() if ran is not None else connection.scalar(statement, params)
        return self._session.scalar(statement, params, **kw)

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


def _is_core(statement: Executable) -> bool:
    """True for a statement over tables only (no ORM entities).

    The Session would hand such a statement to its connection anyway (no autoflush, no ORM
    loading); calling the connection directly skips the Session's per-call bookkeeping, a fifth
    of the cost of a webhook's statements. SQLAlchemy marks ORM statements with this plugin.
    """
    return statement._propagate_attrs.get("compile_state_plugin") != "orm"


def sync_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sync sessions that keep loaded values after commit."""
    return sessionmaker(engine, expire_on_commit=False)
