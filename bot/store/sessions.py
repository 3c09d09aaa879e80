"""The session API the repositories see: AsyncSession's, or the SQLite store thread's
SyncSession (bot.store.sqlite.sessions) behind the same protocol."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Result, ScalarResult
from sqlalchemy.sql import Executable

T = TypeVar("T")


class StoreSession(Protocol):
    """The part of AsyncSession the store uses inside a transaction someone else began."""

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
