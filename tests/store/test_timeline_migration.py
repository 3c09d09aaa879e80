"""The timeline migration (0007) on a store made by the previous release (schema 0006, entries
written with Slack's tokens): the text becomes plain, the references are kept, and every
surface renders them (SQLite and a fresh Postgres database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, text

from bot.domain.text import RefKind
from bot.slack.render import slack_text
from bot.slack.render.lists import timeline_page
from bot.store import schema
from bot.store.engine import create_engine
from bot.store.models import UtcDateTime
from bot.store.repository import Database
from tests.replicas import own_database

# As the previous release wrote them.
OLD_ENTRIES = [
    (
        "acknowledge",
        "U0ALICE1",
        "Acknowledged by <@U0ALICE1>: looking <https://grafana.example.com/d/1|at the graph>",
    ),
    ("paged", "tocsin", "Paging level 1: <@U0BOB123>, <!subteam^S0ONCALL|@oncall>"),
    ("announced", "tocsin", "Announced in <#C0ALERTS1|alerts>"),
    ("note", "U0BOB123", "a & b < c, no tokens here"),
]


@pytest.fixture(params=["sqlite", "postgres"])
async def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty store at the previous release's schema (0006)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        await asyncio.to_thread(schema.upgrade, url, "0006")
        yield url
        return
    async with own_database("0006") as url:
        yield url


async def write_old_entries(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            now = datetime(2026, 11, 30, 10, tzinfo=UTC)
            incident = (
                await connection.execute(
                    text(
                        "INSERT INTO incidents (key, current_key, source, title, slug_source, "
                        "severity, status, opened_at, auto_resolve, labels, external_url, "
                        "updated_at, version, group_labels, escalation_level, escalation_round) "
                        "VALUES ('k', 'k', 'alertmanager', 'Checkout down', 'CheckoutDown', "
                        "'sev2', 'triggered', :now, false, '{}', '', :now, 1, '{}', 0, 0) "
                        "RETURNING id"
                    ).bindparams(bindparam("now", type_=UtcDateTime(timezone=True))),
                    {"now": now},
                )
            ).scalar_one()
            for n, (kind, actor, entry) in enumerate(OLD_ENTRIES):
                await connection.execute(
                    text(
                        "INSERT INTO timeline_events (incident_id, at, kind, actor, text, data) "
                        "VALUES (:incident, :at, :kind, :actor, :text, '{}')"
                    ).bindparams(bindparam("at", type_=UtcDateTime(timezone=True))),
                    {
                        "incident": incident,
                        "at": now + timedelta(minutes=n),
                        "kind": kind,
                        "actor": actor,
                        "text": entry,
                    },
                )
            return int(incident)
    finally:
        await engine.dispose()


async def test_old_entries_become_plain_text_with_references(old_store: str) -> None:
    incident = await write_old_entries(old_store)
    await asyncio.to_thread(schema.upgrade, old_store)

    db = Database(create_engine(old_store))
    try:
        async with db.transaction() as tx:
            events = await tx.timeline(incident)
    finally:
        await db.dispose()
    plain = [e.rich.text for e in events]
    assert plain == [
        "Acknowledged by @U0ALICE1: looking at the graph",
        "Paging level 1: @U0BOB123, @oncall",
        "Announced in #alerts",
        "a & b < c, no tokens here",
    ]
    paged = events[1].rich
    assert [(r.kind, r.target, paged.text[r.start : r.end]) for r in paged.refs] == [
        (RefKind.USER, "U0BOB123", "@U0BOB123"),
        (RefKind.USERGROUP, "S0ONCALL", "@oncall"),
    ]
    # Slack gets its tokens back; the rest of the text is escaped once.
    assert slack_text(events[0].rich) == (
        "Acknowledged by <@U0ALICE1>: looking <https://grafana.example.com/d/1|at the graph>"
    )
    assert slack_text(events[3].rich) == "a &amp; b &lt; c, no tokens here"
    page, _pages = timeline_page(events, 1)
    assert "Paging level 1: <@U0BOB123>, <!subteam^S0ONCALL>" in page
    assert "Announced in <#C0ALERTS1>" in page


async def test_downgrade_writes_the_tokens_back(old_store: str) -> None:
    incident = await write_old_entries(old_store)
    await asyncio.to_thread(schema.upgrade, old_store)
    config = schema.alembic_config(old_store)
    from alembic import command

    await asyncio.to_thread(command.downgrade, config, "0006")
    engine = create_engine(old_store)
    try:
        async with engine.connect() as connection:
            texts = (
                await connection.execute(
                    text("SELECT text FROM timeline_events WHERE incident_id = :i ORDER BY id"),
                    {"i": incident},
                )
            ).scalars()
            restored = list(texts)
    finally:
        await engine.dispose()
    assert restored[1] == "Paging level 1: <@U0BOB123>, <!subteam^S0ONCALL>"
    assert restored[3] == "a & b < c, no tokens here"
