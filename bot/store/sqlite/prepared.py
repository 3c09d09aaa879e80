"""Prepared statements: hot Core statements compiled once, run through `exec_driver_sql`.

Executing a Core statement costs 50-100 µs of Python per call on top of what SQLite spends
(cache key, compiled-cache look-up, parameter processing); a webhook runs a dozen. A statement
marked with `prepared()` is compiled once per dialect and set of parameter names; on the SQLite
store thread (SyncSession) it then runs as its SQL text through the connection's public
`exec_driver_sql` (so engine events, echo and tracing see it), with the bind and result
conversions of its columns' types, from their public `bind_processor` / `result_processor`:
the same SQL and the same values as SQLAlchemy's own path, checked by tests/store/test_prepared.py.

Statements whose compilation needs the execution context (a Python-side column default, an
expanding IN, a bind whose value comes from a callable) run the usual way. On Postgres the marks
change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Insert, Select, Update
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

S = TypeVar("S", bound=Executable)
Processor = Callable[[Any], Any] | None

_PREPARED: dict[int, _Statement] = {}


def prepared(statement: S) -> S:
    """Mark a module-level statement to be run prepared on SQLite; returns it unchanged."""
    _PREPARED[id(statement)] = _Statement(statement)
    return statement


def run_prepared(connection: Connection, statement: Executable, params: Any) -> Result[Any] | None:
    """Run a marked statement; None when it must go the usual way."""
    # Keyed by id: the entry holds its statement, so a marked statement's id is never reused.
    entry = _PREPARED.get(id(statement))
    return None if entry is None else entry.run(connection, params)


class _NotPreparable(Exception):
    """The statement needs SQLAlchemy's execution context."""


class _Compiled:
    """One compilation: SQL text, how to build its positional parameters, how to read its rows."""

    __slots__ = ("bind", "convert", "fixed", "names", "returns_rows", "sql")

    def __init__(self, statement: Executable, dialect: Dialect, keys: Sequence[str]):
        if not isinstance(statement, ClauseElement):
            raise _NotPreparable
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if not isinstance(compiled, SQLCompiler) or _per_execution(statement, compiled, keys):
            raise _NotPreparable
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        binds = compiled.binds
        self.bind = _positions(
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.names
        )
        self.fixed: dict[str, Any] = {  # literals written into the statement
            name: binds[name].value for name in self.names if not binds[name].required
        }
        self.returns_rows = isinstance(statement, Select)
        columns: Sequence[Any] = statement.selected_columns if isinstance(statement, Select) else ()
        self.convert = _positions(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )

    def parameters(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        given = {**self.fixed, **params} if self.fixed else params
        values = [given[name] for name in self.names]
        for i, process in self.bind:
            values[i] = process(values[i])
        return tuple(values)

    def rows(self, raw: Sequence[Any]) -> list[tuple[Any, ...]]:
        convert = self.convert
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


def _per_execution(statement: Executable, compiled: SQLCompiler, keys: Sequence[str]) -> bool:
    """True when a parameter is made at each execution: an IN list, a value from a callable, a
    Python-side default of a column the statement does not set."""
    if any(b.expanding or b.callable is not None for b in compiled.binds.values()):
        return True
    if isinstance(statement, Insert | Update):
        given = set(keys)
        for column in statement.table.columns:
            if column.key in given:
                continue
            default = column.default if isinstance(statement, Insert) else column.onupdate
            if default is not None and not getattr(default, "is_sequence", False):
                return True
    return False


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
        if compiled is None or (many and compiled.returns_rows):
            return None
        if many:
            values: Any = [compiled.parameters(p) for p in params]
        else:
            values = compiled.parameters(first)
        result = connection.exec_driver_sql(compiled.sql, values)
        if not compiled.returns_rows or not compiled.convert:
            return result
        frozen = result.freeze()  # the rows, converted, behind the same keys
        rows: Any = compiled.rows(frozen.data)
        return frozen.with_new_rows(rows)()
