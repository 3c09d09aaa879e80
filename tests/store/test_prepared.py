"""Prepared statements read and write exactly what SQLAlchemy's own path does (SQLite, Postgres)."""

from __future__ import annotations

import json
from datetime import UTC, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.services.alerts import AlertIntake, IntakePolicy
from bot.store import ingest_sql as sql
from bot.store.models import AlertRow, IncidentRow, OutboxJobRow, TimelineEventRow
from bot.store.prepared import PreparedResult
from bot.store.repository import Database
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload, utc

NOW = utc("2026-11-26T15:36:00Z")


async def opened_incident(db: Database) -> int:
    alerts = [
        make_alert("DiskFull", instance="db-1", note="ünïcode ✓"),
        make_alert("DiskFull", instance="db-2", status="resolved", ends_at="2026-11-26T10:05:00Z"),
    ]
    body = json.dumps(make_payload(alerts, group="DiskFull"))
    intake = AlertIntake(store=db, policy=IntakePolicy(timedelta(minutes=30), auto_resolve=False))
    result = await intake.ingest(parse_webhook(body.encode()), body=body, now=NOW)
    assert result.incident_id is not None
    return result.incident_id


async def test_rows_read_prepared_equal_the_orm_objects(db: Database) -> None:
    incident_id = await opened_incident(db)
    async with db.sessions() as session:
        orm_incident = await session.get(IncidentRow, incident_id)
        row = (await session.execute(sql.INCIDENT_BY_ID, {"id": incident_id})).first()
        orm_alerts = list(
            await session.scalars(
                select(AlertRow).where(AlertRow.incident_id == incident_id).order_by(AlertRow.id)
            )
        )
        shown = {"incident_id": incident_id, "shown": 10}
        rows = (await session.execute(sql.ALERTS_SHOWN, shown)).all()

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
    async with db.session() as session:
        await session.execute(
            sql.INSERT_EVENTS,
            [
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
            ],
        )
    async with db.sessions() as session:
        events = list(
            await session.scalars(
                select(TimelineEventRow)
                .where(TimelineEventRow.kind == "note")
                .order_by(TimelineEventRow.id)
            )
        )
    assert [(e.actor, e.at, e.data) for e in events] == [
        ("U1", NOW, {"k": [1, None, "ü"]}),
        ("U2", NOW + timedelta(microseconds=1), {}),
    ]
    assert all(e.at.tzinfo == UTC for e in events)


async def test_a_naive_datetime_is_refused_as_on_the_long_way(db: Database) -> None:
    incident_id = await opened_incident(db)
    with pytest.raises(Exception, match="naive datetime"):
        async with db.session() as session:
            await session.execute(
                sql.SET_ALERTS_RESOLVED_AT, {"b_id": incident_id, "b_at": NOW.replace(tzinfo=None)}
            )


async def test_column_defaults_still_apply_when_a_value_is_left_out(db: Database) -> None:
    async with db.session() as session:
        await session.execute(
            sql.INSERT_JOB,
            {
                "idem_key": "k1",
                "kind": "post_note",
                "state": "pending",
                "not_before": NOW,
                "created_at": NOW,
                "updated_at": NOW,
            },
        )
    async with db.sessions() as session:
        job = await session.scalar(select(OutboxJobRow).where(OutboxJobRow.idem_key == "k1"))
    assert job is not None and job.attempts == 0 and job.payload == {}


async def test_updates_count_rows_and_literals_in_a_statement_are_bound(db: Database) -> None:
    async with db.session() as session:
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
    async with db.session() as session:
        pending = await session.scalar(sql.PENDING_BY_COALESCE_KEY, {"key": "a"})
        done = await session.scalar(sql.PENDING_BY_COALESCE_KEY, {"key": "b"})
        hit = await session.execute(sql.SET_JOB_PAYLOAD, {"b_id": pending, "b_payload": {"x": 1}})
        miss = await session.execute(sql.SET_JOB_PAYLOAD, {"b_id": 10_000, "b_payload": {}})
        assert getattr(hit, "rowcount", None) == 1
        assert getattr(miss, "rowcount", None) == 0
    assert pending is not None and done is None
    async with db.sessions() as session:
        assert await session.scalar(
            select(OutboxJobRow.payload).where(OutboxJobRow.id == pending)
        ) == {"x": 1}


async def test_on_sqlite_the_webhook_statements_run_prepared(db: Database) -> None:
    incident_id = await opened_incident(db)
    async with db.sessions() as session:
        result = await session.execute(sql.INCIDENT_BY_ID, {"id": incident_id})
        plain = await session.execute(select(IncidentRow.id).where(IncidentRow.id == incident_id))
    prepared_here = db.engine.dialect.name == "sqlite"
    assert isinstance(result, PreparedResult) is prepared_here
    assert not isinstance(plain, PreparedResult)
