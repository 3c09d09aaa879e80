"""Prepared statements read and write exactly what SQLAlchemy's own path does (SQLite, Postgres).

They run prepared in units of work given to `Database.run` (on SQLite: the store's thread); the
rows they write are read back the usual way, through the ORM.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from bot.domain.intake import IntakeRules
from bot.ports import IncidentTransaction
from bot.services.alerts import AlertIntake
from bot.store import ingest_sql as sql
from bot.store.models import AlertRow, IncidentRow, OutboxJobRow, TimelineEventRow
from bot.store.repository import Database
from bot.store.sessions import StoreSession
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload, utc

NOW = utc("2026-11-26T15:36:00Z")


async def on_store(db: Database, work: Callable[[StoreSession], Awaitable[Any]]) -> Any:
    """`work` over the session of one unit of work run by the store."""

    async def unit(tx: IncidentTransaction) -> Any:
        return await work(tx.session)  # type: ignore[attr-defined]

    return await db.run(unit)


async def opened_incident(db: Database) -> int:
    alerts = [
        make_alert("DiskFull", instance="db-1", note="ünïcode ✓"),
        make_alert("DiskFull", instance="db-2", status="resolved", ends_at="2026-11-26T10:05:00Z"),
    ]
    body = json.dumps(make_payload(alerts, group="DiskFull"))
    intake = AlertIntake(store=db, rules=IntakeRules(timedelta(minutes=30), auto_resolve=False))
    result = await intake.ingest(parse_webhook(body.encode()), body=body, now=NOW)
    assert result.incident_id is not None
    return result.incident_id


async def test_rows_read_prepared_equal_the_orm_objects(db: Database) -> None:
    incident_id = await opened_incident(db)

    async def read(session: StoreSession) -> Any:
        row = (await session.execute(sql.INCIDENT_BY_ID, {"id": incident_id})).first()
        shown = {"incident_id": incident_id, "shown": 10, "skip": 0}
        return row, (await session.execute(sql.ALERTS_SHOWN, shown)).all()

    row, rows = await on_store(db, read)
    async with db.sessions() as session:
        orm_incident = await session.get(IncidentRow, incident_id)
        orm_alerts = list(
            await session.scalars(
                select(AlertRow).where(AlertRow.incident_id == incident_id).order_by(AlertRow.id)
            )
        )
    assert orm_incident is not None and row is not None
    for column in IncidentRow.__table__.columns:
        assert getattr(row, column.key) == getattr(orm_incident, column.key), column.key
    assert row.opened_at == NOW and row.opened_at.tzinfo is not None
    assert [r.fingerprint for r in rows] == [a.fingerprint for a in orm_alerts]
    for got, want in zip(rows, orm_alerts, strict=True):
        for column in AlertRow.__table__.columns:
            assert getattr(got, column.key) == getattr(want, column.key), column.key
    assert rows[0].labels["note"] == "ünïcode ✓"
    assert rows[1].ends_at == utc("2026-11-26T10:05:00Z")


async def test_values_written_prepared_read_back_through_the_orm(db: Database) -> None:
    incident_id = await opened_incident(db)
    at_plus_two = NOW.astimezone(timezone(timedelta(hours=2)))  # same instant, another zone
    events = [
        {
            "incident_id": incident_id,
            "at": at_plus_two,
            "kind": "note",
            "actor": "U1",
            "text": "a",
            "data": {"k": [1, None, "ü"]},
        },
        {
            "incident_id": incident_id,
            "at": NOW + timedelta(microseconds=1),
            "kind": "note",
            "actor": "U2",
            "text": "b",
            "data": {},
        },
    ]
    await on_store(db, lambda session: session.execute(sql.INSERT_EVENTS, events))
    async with db.sessions() as session:
        written = list(
            await session.scalars(
                select(TimelineEventRow)
                .where(TimelineEventRow.kind == "note")
                .order_by(TimelineEventRow.id)
            )
        )
    assert [(e.actor, e.at, e.data) for e in written] == [
        ("U1", NOW, {"k": [1, None, "ü"]}),
        ("U2", NOW + timedelta(microseconds=1), {}),
    ]
    assert all(e.at.tzinfo == UTC for e in written)


async def test_a_naive_datetime_is_refused_as_on_the_long_way(db: Database) -> None:
    incident_id = await opened_incident(db)
    naive = {"b_id": incident_id, "b_at": NOW.replace(tzinfo=None)}
    with pytest.raises(Exception, match="naive datetime"):
        await on_store(db, lambda session: session.execute(sql.SET_ALERTS_RESOLVED_AT, naive))


async def test_column_defaults_still_apply_when_a_value_is_left_out(db: Database) -> None:
    job = {
        "idem_key": "k1",
        "kind": "post_note",
        "state": "pending",
        "not_before": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    }
    await on_store(db, lambda session: session.execute(sql.INSERT_JOB, job))
    async with db.sessions() as session:
        found = await session.scalar(select(OutboxJobRow).where(OutboxJobRow.idem_key == "k1"))
    assert found is not None and found.attempts == 0 and found.payload == {}


async def test_updates_count_rows_and_literals_in_a_statement_are_bound(db: Database) -> None:
    async def work(session: StoreSession) -> Any:
        for key, state in (("a", "pending"), ("b", "done")):
            await session.execute(
                sql.INSERT_JOB,
                {
                    "idem_key": key,
                    "kind": "update_card",
                    "payload": {},
                    "coalesce_key": key,
                    "state": state,
                    "attempts": 0,
                    "not_before": NOW,
                    "created_at": NOW,
                    "updated_at": NOW,
                },
            )
        pending = await session.scalar(sql.PENDING_BY_COALESCE_KEY, {"key": "a"})
        done = await session.scalar(sql.PENDING_BY_COALESCE_KEY, {"key": "b"})
        hit = await session.execute(sql.SET_JOB_PAYLOAD, {"b_id": pending, "b_payload": {"x": 1}})
        miss = await session.execute(sql.SET_JOB_PAYLOAD, {"b_id": 10_000, "b_payload": {}})
        return pending, done, getattr(hit, "rowcount", None), getattr(miss, "rowcount", None)

    pending, done, hit, miss = await on_store(db, work)
    assert pending is not None and done is None and (hit, miss) == (1, 0)
    async with db.sessions() as session:
        assert await session.scalar(
            select(OutboxJobRow.payload).where(OutboxJobRow.id == pending)
        ) == {"x": 1}


@pytest.fixture
def statements() -> Iterator[list[tuple[str, str]]]:
    """Every statement any engine sends its database, with the thread that sent it."""
    seen: list[tuple[str, str]] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append((statement, threading.current_thread().name))

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


async def test_engine_events_see_every_statement_and_sqlite_runs_intake_on_its_thread(
    db: Database, statements: list[tuple[str, str]]
) -> None:
    """A webhook's unit of work, prepared statements included, is seen by engine events (echo,
    tracing); on SQLite it runs on the store's thread."""
    await opened_incident(db)
    sent = [s for s, _thread in statements]
    assert any(s.startswith("INSERT INTO alerts") for s in sent)
    assert any(s.startswith("INSERT INTO webhook_receipts") for s in sent)
    if db.engine.dialect.name == "sqlite":
        receipt = next(t for s, t in statements if s.startswith("INSERT INTO webhook_receipts"))
        assert receipt.startswith("tocsin-store")
