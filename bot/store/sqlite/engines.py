"""SQLite engines: the same pragmas on every connection; writers begin with the write lock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# How long a writer's BEGIN waits for another connection's lock before it fails. Short: the
# writer gives the event loop back and tries again (bot.store.sqlite.locks).
BUSY_TIMEOUT_MS = 50
# Readers (and migrations, and the CLI) wait on aiosqlite's thread, never on the loop; in WAL a
# reader waits only for a moment's lock (recovery, a checkpoint's end), a migration for writers.
READER_BUSY_TIMEOUT_MS = 30_000


def sqlite_pragmas(dbapi_connection: Any, _record: Any, busy_ms: int = BUSY_TIMEOUT_MS) -> None:
    """WAL, synchronous=NORMAL, a busy timeout, foreign keys."""
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        f"busy_timeout={busy_ms}",
        "foreign_keys=ON",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _reader_pragmas(dbapi_connection: Any, record: Any) -> None:
    sqlite_pragmas(dbapi_connection, record, READER_BUSY_TIMEOUT_MS)


def no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    """Commits on this connection leave the WAL to a checkpointer (bot.store.sqlite.checkpoint)."""
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def reader_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An aiosqlite engine for reads (and migrations): its I/O runs on aiosqlite's thread."""
    engine = create_async_engine(url, echo=echo)
    event.listen(engine.sync_engine, "connect", _reader_pragmas)
    return engine


def writer_engine(url: str) -> AsyncEngine:
    """An aiosqlite engine whose transactions begin IMMEDIATE: the write lock is taken at the
    start, so a lock held elsewhere fails the begin, before any work, and never midway."""
    engine = create_async_engine(url)
    _immediate(engine.sync_engine)
    return engine


def batch_engine(url: str) -> Engine:
    """A pysqlite engine on the same file, for the batch thread; transactions begin IMMEDIATE."""
    engine = create_sync_engine(url.replace("sqlite+aiosqlite", "sqlite+pysqlite", 1))
    _immediate(engine)
    return engine


def _immediate(engine: Engine) -> None:
    # SQLAlchemy's documented recipe for SQLite transactions: the driver emits no BEGIN of its
    # own (isolation_level None); the "begin" event emits ours.
    event.listen(engine, "connect", sqlite_pragmas)
    event.listen(engine, "connect", _driver_leaves_transactions_alone)
    event.listen(engine, "begin", _begin_immediate)


def _driver_leaves_transactions_alone(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
