"""A serving SQLite store checkpoints its write-ahead log in a thread, not inside commits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.store.engine import create_engine
from bot.store.repository import Database
from tests.harness import eventually


def wal_pages_not_checkpointed(path: Path) -> int:
    """Frames in the log not yet copied into the database file (a PASSIVE look)."""
    with sqlite3.connect(path) as connection:
        _busy, log_frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(log_frames) - int(copied)


async def write_rows(db: Database, count: int) -> None:
    """`count` commits of a ~3 KB webhook receipt each."""
    for n in range(count):
        async with db.session() as session:
            await session.execute(
                text(
                    "INSERT INTO webhook_receipts (source, body_sha256, received_at, group_key, "
                    "alert_count, body) VALUES ('alertmanager', :sha, '2026-01-01 00:00:00', "
                    "'{}:{}', 1, :body)"
                ),
                {"sha": f"{n:064d}", "body": "x" * 3000},
            )


@pytest.fixture
def path(tmp_path: Path, sqlite_template: Path) -> Path:
    """A migrated SQLite file of its own."""
    target = tmp_path / "tocsin.db"
    target.write_bytes(sqlite_template.read_bytes())
    return target


def store_at(path: Path) -> Database:
    return Database(create_engine(f"sqlite+aiosqlite:///{path}"))


async def test_commits_leave_the_log_to_the_checkpoint_thread(path: Path) -> None:
    db = store_at(path)
    await db.checkpoint_in_background(interval=3600)  # only the last one, at stop
    try:
        async with db.sessions() as session:
            assert await session.scalar(text("PRAGMA wal_autocheckpoint")) == 0
        await write_rows(db, 600)  # ~1,800 pages: past SQLite's own 1,000-page mark
        size_before = path.stat().st_size
        assert path.with_name("tocsin.db-wal").stat().st_size > 1000 * 4096
    finally:
        await db.dispose()  # the thread checkpoints once more as it stops
    assert path.stat().st_size > size_before + 600 * 3000
    assert wal_pages_not_checkpointed(path) == 0


async def test_the_thread_keeps_the_log_short_while_serving(path: Path) -> None:
    db = store_at(path)
    await db.checkpoint_in_background(interval=0.02)
    try:
        await write_rows(db, 300)
        # Done by the thread while the store is in use, not by the last checkpoint at stop.
        await eventually(
            lambda: path.stat().st_size > 300 * 3000,
            timeout=30,
            what="the checkpoint thread to copy the log into the database file",
        )
    finally:
        await db.dispose()


async def test_a_store_that_does_not_serve_checkpoints_as_sqlite_does(path: Path) -> None:
    db = store_at(path)
    try:
        async with db.sessions() as session:
            assert await session.scalar(text("PRAGMA wal_autocheckpoint")) == 1000
    finally:
        await db.dispose()
