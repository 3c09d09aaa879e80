"""Async engine and session factory, with SQLite tuned for a single busy writer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]


def is_sqlite(url: str) -> bool:
    """True for a SQLite URL."""
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine; SQLite gets WAL, synchronous=NORMAL, a busy timeout and foreign keys."""
    if not is_sqlite(url):
        return create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=10)
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_sync_sqlite_engine(url: str) -> Engine:
    """A pysqlite engine on the same file as an aiosqlite URL, with the same pragmas."""
    engine = create_sync_engine(url.replace("sqlite+aiosqlite", "sqlite+pysqlite", 1))
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    """Commits on this connection leave the WAL to a checkpointer (bot.store.checkpoint)."""
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=30000",
        "foreign_keys=ON",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded values after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
