"""Shared fixtures: a migrated store on SQLite and on the machine's Postgres."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from bot.store import schema
from bot.store.engine import create_engine
from bot.store.repository import Database
from tests.postgres_server import PostgresServer, own_postgres

PG_ADMIN_DSN = os.environ.get("TOCSIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_TABLES = (
    "incidents, alerts, timeline_events, webhook_receipts, outbox, timers, oncall_overrides, "
    "digest_runs, sandbox_snapshots, leases, slack_calls"
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    schema.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A Postgres database made for this run, migrated once, dropped at the end."""
    name = f"tocsin_test_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        schema.upgrade(url)
        yield url
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_admin(sql: str, dsn: str = PG_ADMIN_DSN) -> None:
    import asyncio

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """The URL of an empty, migrated store: SQLite and Postgres in turn."""
    if request.param == "sqlite":
        target = tmp_path / "tocsin.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite+aiosqlite:///{target}"
    url: str = request.getfixturevalue("pg_url")
    _pg_admin(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE", url.replace("+asyncpg", ""))
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A Database over an empty store."""
    database = Database(create_engine(database_url))
    yield database
    await database.dispose()


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    """A Postgres server of the test's own, which it may stop, start and restart (never the
    shared one); skipped when PostgreSQL is not installed."""
    server = own_postgres()
    try:
        yield server
    finally:
        server.remove()
