"""Two writers that both found no incident for a key (two replicas on one Postgres, each
answering one Alertmanager peer) open it once: the second is refused and redoes its work."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.errors import StoreConflict
from bot.store.engine import create_engine
from bot.store.repository import Database
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload, utc

NOW = utc("2026-11-26T15:36:00Z")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_second_of_two_writers_that_found_no_incident_is_refused(
    database_url: str,
) -> None:
    group = parse_webhook(json.dumps(make_payload([make_alert("HighErrorRate")])).encode())
    first_db, second_db = (Database(create_engine(database_url)) for _ in range(2))
    first_read, second_read, first_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    try:

        async def first() -> int:
            async with first_db.transaction() as tx:
                assert await tx.latest_incident(group.key) is None
                first_read.set()
                await second_read.wait()
                opened = await tx.open_incident(group, at=NOW, auto_resolve=False, replacing=None)
            first_done.set()
            return opened.id

        async def second() -> int:
            await first_read.wait()
            async with second_db.transaction() as tx:
                assert await tx.latest_incident(group.key) is None  # before the first commits
                second_read.set()
                await first_done.wait()
                opened = await tx.open_incident(group, at=NOW, auto_resolve=False, replacing=None)
            return opened.id

        results = await asyncio.gather(first(), second(), return_exceptions=True)
        assert isinstance(results[0], int)
        assert isinstance(results[1], StoreConflict), results[1]
        async with first_db.transaction() as tx:
            latest = await tx.latest_incident(group.key)
            assert latest is not None and latest.id == results[0]
    finally:
        await first_db.dispose()
        await second_db.dispose()
