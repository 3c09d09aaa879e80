"""The drill migration (0009) on a store at 0008: incidents opened by earlier drills (their
labels carry `drill`) become drills, the others stay real (SQLite and a fresh Postgres)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, text

from bot.store import schema
from bot.store.engine import create_engine
from bot.store.models import UtcDateTime
from bot.store.repository import Database
from tests.replicas import own_database

LABELS = {  # title: (group labels, common labels)
    "[DRILL] 5xx above 5% on api": ({"alertname": "HighErrorRate", "drill": "drill-1a2b3c"}, {}),
    "Checkout down": ({"alertname": "CheckoutDown"}, {"alertname": "CheckoutDown"}),
    "An old drill": ({}, {"alertname": "WebhookFailure", "drill": "drill-4d5e6f"}),
}


@pytest.fixture(params=["sqlite", "postgres"])
async def store_at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        await asyncio.to_thread(schema.upgrade, url, "0008")
        yield url
        return
    async with own_database("0008") as url:
        yield url


async def write_incidents(url: str) -> None:
    engine = create_engine(url)
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    try:
        async with engine.begin() as connection:
            for n, (title, (group, common)) in enumerate(LABELS.items()):
                await connection.execute(
                    text(
                        "INSERT INTO incidents (key, current_key, source, title, slug_source, "
                        "severity, status, opened_at, auto_resolve, labels, external_url, "
                        "updated_at, version, group_labels, escalation_level, escalation_round) "
                        "VALUES (:key, :key, 'alertmanager', :title, :title, 'sev2', "
                        "'triggered', :now, false, :common, '', :now, 1, :group, 0, 0)"
                    ).bindparams(bindparam("now", type_=UtcDateTime(timezone=True))),
                    {
                        "key": f"k{n}",
                        "title": title,
                        "now": now,
                        "common": json.dumps(common),
                        "group": json.dumps(group),
                    },
                )
    finally:
        await engine.dispose()


async def test_incidents_of_earlier_drills_become_drills(store_at_0008: str) -> None:
    await write_incidents(store_at_0008)
    await asyncio.to_thread(schema.upgrade, store_at_0008)
    db = Database(create_engine(store_at_0008))
    try:
        async with db.transaction() as tx:
            listed = await tx.recent_incidents(resolved=None, since=None)
    finally:
        await db.dispose()
    assert {i.title: i.drill for i in listed} == {
        "[DRILL] 5xx above 5% on api": True,
        "Checkout down": False,
        "An old drill": True,
    }
