"""The engine a store URL names, and its session factory (SQLite's details: bot.store.sqlite)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

from bot.store.sqlite.engines import reader_engine

SessionFactory = async_sessionmaker[AsyncSession]


def is_sqlite(url: str) -> bool:
    """True for a SQLite URL."""
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine: Postgres with a pool that checks connections, or aiosqlite."""
    if is_sqlite(url):
        return reader_engine(url, echo=echo)
    return create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=10)


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded values after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
