"""Prepared statements: hot Core statements compiled once and run on SQLite's own connection.

Executing a Core statement through SQLAlchemy costs 50-100 µs of Python per call on top of what
SQLite spends (cache key, execution context, parameter and result objects); a webhook runs a
dozen. A statement marked with `prepared()` is compiled once per set of parameter names, and on
SQLite (`SyncSession`) it runs straight on the pysqlite connection of the session's transaction,
with the bind and result conversions of its columns' types, taken from that compilation: the same
SQL and the same values as SQLAlchemy would send, without its per-call bookkeeping.

Statements whose compilation needs the execution context (a Python-side column default, an
expanding IN, a bind whose value comes from a callable) are run by SQLAlchemy as before. On
Postgres the marks change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.sql import Executable

S = TypeVar("S", bound=Executable)
Processor = Callable[[Any], Any] | None

_PREPARED: dict[int, _Statement] = {}


def prepared(statement: S) -> S:
    """Mark a module-level statement to be run prepared on SQLite; returns it unchanged."""
    _PREPARED[id(statement)] = _Statement(statement)
    return statement


def run_prepared(connection: Connection, statement: Executable, params: Any) -> Result[Any] | None:
    """Run a marked statement on the DBAPI connection; None when it must go the long way."""
    # Keyed by id: the entry holds its statement, so a marked statement's id is never reused.
    entry = _PREPARED.get(id(statement))
    return None if entry is None else entry.run(connection, params)


class PreparedResult(IteratorResult[Any]):
    """A Result over rows already fetched and converted; `rowcount` as the cursor told it."""

    def __init__(
        self, metadata: SimpleResultMetaData, rows: list[tuple[Any, ...]], rowcount: int
    ) -> None:
        super().__init__(metadata, iter(rows))
        self.rowcount = rowcount


class _Compiled:
    """One compilation: SQL text, how to build its positional parameters, how to read its rows."""

    __slots__ = ("bind", "convert", "fixed", "keys", "metadata", "names", "sql")

    def __init__(self, statement: Executable, dialect: Dialect, keys: Sequence[str] | None):
        compiled: Any = cast(Any, statement).compile(dialect=dialect, column_keys=keys)
        if compiled.insert_prefetch or compiled.update_prefetch or _per_execution(compiled):
            raise _NotPreparable
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        bind_processors: Mapping[str, Processor] = compiled._bind_processors
        self.bind = _positions(bind_processors.get(n) for n in self.names)
        self.fixed: dict[str, Any] = {  # literals written into the statement
            name: compiled.binds[name].value
            for name in self.names
            if not compiled.binds[name].required
        }
        columns = compiled._result_columns
        self.keys: tuple[str, ...] = tuple(c[0] for c in columns)
        self.metadata = SimpleResultMetaData(self.keys)
        self.convert = _positions(c[3]._cached_result_processor(dialect, None) for c in columns)

    def parameters(self, params: Mapping[str, Any]) -> list[Any]:
        given = {**self.fixed, **params} if self.fixed else params
        values = [given[name] for name in self.names]
        for i, process in self.bind:
            values[i] = process(values[i])
        return values

    def rows(self, raw: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        convert = self.convert
        if not convert:
            return raw
        rows = []
        for row in raw:
            values = list(row)
            for i, process in convert:
                values[i] = process(values[i])
            rows.append(tuple(values))
        return rows


def _positions(processors: Iterable[Processor]) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """(position, processor) of every value that needs converting."""
    return tuple((i, p) for i, p in enumerate(processors) if p is not None)


class _NotPreparable(Exception):
    """The statement needs SQLAlchemy's execution context."""


class _Statement:
    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled | None] = {}

    def _compile(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled | None:
        key = (dialect.name, frozenset(params))
        if key not in self._compiled:
            try:
                self._compiled[key] = _Compiled(self.statement, dialect, list(params))
            except _NotPreparable:
                self._compiled[key] = None
        return self._compiled[key]

    def run(self, connection: Connection, params: Any) -> Result[Any] | None:
        many = isinstance(params, list)
        first: Mapping[str, Any] = (params[0] if params else {}) if many else (params or {})
        compiled = self._compile(connection.dialect, first)
        if compiled is None or (many and compiled.keys):
            return None
        dbapi: Any = connection.connection.dbapi_connection
        if many:
            cursor = dbapi.executemany(compiled.sql, [compiled.parameters(p) for p in params])
        else:
            cursor = dbapi.execute(compiled.sql, compiled.parameters(first))
        rows = compiled.rows(cursor.fetchall()) if compiled.keys else []
        rowcount = cursor.rowcount
        cursor.close()
        return PreparedResult(compiled.metadata, rows, rowcount)


def _per_execution(compiled: Any) -> bool:
    """True when a parameter is made at each execution: an IN list, a value from a callable."""
    return any(b.expanding or b.callable is not None for b in compiled.binds.values())
