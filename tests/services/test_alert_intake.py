"""Alert intake against a real store (SQLite and Postgres), with Alertmanager 0.25 captures."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlalchemy import func, select, text, update

from bot.domain.incidents import GroupDecision
from bot.domain.intake import IntakeRules
from bot.services.alerts import AlertIntake
from bot.store.models import (
    AlertRow,
    IncidentRow,
    OutboxJobRow,
    TimelineEventRow,
    WebhookReceiptRow,
)
from bot.store.outbox import JobOutcome, OutboxStore
from bot.store.repository import Database
from integrations.alertmanager import parse_webhook
from tests.builders import contract_payload, make_alert, make_payload, utc
from tests.harness import eventually, suspended_in

NOW = utc("2026-11-26T15:36:00Z")


def intake(db: Database, auto_resolve: bool = False) -> AlertIntake:
    return AlertIntake(
        store=db,
        rules=IntakeRules(reopen_window=timedelta(minutes=30), auto_resolve=auto_resolve),
    )


async def send(service: AlertIntake, payload: dict, now=NOW):  # type: ignore[no-untyped-def]
    body = json.dumps(payload)
    return await service.ingest(parse_webhook(body.encode()), body=body, now=now)


async def count(db: Database, model: type) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def record_channel(db: Database, incident_id: int | None) -> None:
    """What the open_channel job records once Slack made the channel."""
    async with db.session() as session:
        await session.execute(
            update(IncidentRow).where(IncidentRow.id == incident_id).values(channel_id="C1")
        )


async def jobs(db: Database) -> list[str]:
    async with db.sessions() as session:
        return list(await session.scalars(select(OutboxJobRow.kind).order_by(OutboxJobRow.id)))


async def test_captured_sequence_opens_one_incident_then_updates_and_resolves(db: Database) -> None:
    service = intake(db, auto_resolve=True)
    first = await send(service, contract_payload("alertmanager-0.25-captured-1-firing.json"))
    assert first.decision is GroupDecision.OPEN
    assert await jobs(db) == ["open_channel"]
    await record_channel(db, first.incident_id)

    joined = await send(
        service, contract_payload("alertmanager-0.25-captured-2-firing-joined.json")
    )
    assert joined.decision is GroupDecision.UPDATE and joined.incident_id == first.incident_id
    assert await count(db, AlertRow) == 2

    resolved = await send(service, contract_payload("alertmanager-0.25-captured-3-resolved.json"))
    assert resolved.incident_id == first.incident_id
    async with db.sessions() as session:
        row = await session.get(IncidentRow, first.incident_id)
        assert row is not None and row.status == "resolved" and row.resolved_by == "tocsin"
        kinds = list(
            await session.scalars(select(TimelineEventRow.kind).order_by(TimelineEventRow.id))
        )
    assert kinds == [
        "opened",
        "alerts_new",
        "alerts_new",
        "alerts_resolved",
        "alerts_resolved",
        "resolve",
    ]
    assert await count(db, IncidentRow) == 1
    # Auto-resolved: the card and the topic follow, the channel hears it, and so does the
    # announcement's thread in #alerts.
    assert await jobs(db) == [
        "open_channel",
        "update_card",
        "set_topic",
        "post_alerts_note",
        "post_note",
    ]


async def test_replaying_a_webhook_changes_nothing(db: Database) -> None:
    service = intake(db)
    payload = contract_payload("alertmanager-0.25-captured-1-firing.json")
    await send(service, payload)
    before = [await count(db, m) for m in (IncidentRow, AlertRow, TimelineEventRow, OutboxJobRow)]
    again = await send(service, payload)
    assert again.duplicate
    # A re-sent notification with a new body but the same alerts changes nothing either.
    payload["commonAnnotations"] = {"summary": "changed wording"}
    await send(service, payload)
    after = [await count(db, m) for m in (IncidentRow, AlertRow, TimelineEventRow, OutboxJobRow)]
    assert after == before


async def test_alert_changes_before_the_channel_exists_queue_no_card_updates(
    db: Database,
) -> None:
    """The card, posted once the channel is open, shows the alerts as they are then."""
    service = intake(db)
    opened = await send(service, make_payload([make_alert(instance="0")]))
    for n in range(1, 4):
        alerts = [make_alert(instance=str(i)) for i in range(n + 1)]
        changed = await send(service, make_payload(alerts))
        assert changed.changed == 1 and not changed.new_work
    assert await jobs(db) == ["open_channel"]

    await record_channel(db, opened.incident_id)
    later = await send(service, make_payload([make_alert(instance=str(i)) for i in range(5)]))
    assert later.new_work
    assert await jobs(db) == ["open_channel", "update_card"]


async def test_only_notifications_that_queue_new_work_say_so(db: Database) -> None:
    """The workers are woken for new jobs and timers, not for a change a queued job absorbs."""
    service = intake(db)
    a, b = make_alert(instance="a"), make_alert(instance="b")
    opened = await send(service, make_payload([a]))
    await record_channel(db, opened.incident_id)
    joined = await send(service, make_payload([a, b]))  # first card update: a new job
    resolved_b = make_alert(instance="b", status="resolved", ends_at="2026-11-26T15:40:00Z")
    absorbed_payload = make_payload([a, resolved_b])
    absorbed = await send(service, absorbed_payload)  # the pending card update absorbs it
    replayed = await send(service, absorbed_payload)
    assert [r.new_work for r in (opened, joined, absorbed, replayed)] == [True, True, False, False]
    assert absorbed.changed == 1
    assert await jobs(db) == ["open_channel", "update_card"]


async def test_resolved_key_reopens_within_window_and_opens_new_after(db: Database) -> None:
    service = intake(db, auto_resolve=True)
    fire = make_payload([make_alert(service="api")])
    first = await send(service, fire)
    resolved_alert = make_alert(service="api", status="resolved", ends_at="2026-11-26T15:40:00Z")
    await send(service, make_payload([resolved_alert]), now=NOW + timedelta(minutes=4))

    refire = make_payload([make_alert(service="api", starts_at="2026-11-26T15:50:00Z")])
    again = await send(service, refire, now=NOW + timedelta(minutes=14))
    assert again.decision is GroupDecision.REOPEN and again.incident_id == first.incident_id

    resolved_again = make_alert(
        service="api",
        status="resolved",
        starts_at="2026-11-26T15:50:00Z",
        ends_at="2026-11-26T15:55:00Z",
    )
    await send(service, make_payload([resolved_again]), now=NOW + timedelta(minutes=20))
    late = make_payload([make_alert(service="api", starts_at="2026-11-26T17:00:00Z")])
    new = await send(service, late, now=NOW + timedelta(hours=2))
    assert new.decision is GroupDecision.OPEN and new.incident_id != first.incident_id
    assert await count(db, IncidentRow) == 2


async def test_an_already_resolved_unknown_group_opens_nothing(db: Database) -> None:
    service = intake(db)
    result = await send(service, contract_payload("alertmanager-webhook-resolved.json"))
    assert result.decision is GroupDecision.IGNORE
    assert await count(db, IncidentRow) == 0
    assert await count(db, WebhookReceiptRow) == 1


async def test_concurrent_first_notifications_open_one_incident(db: Database) -> None:
    service = intake(db)
    payloads = [make_payload([make_alert(service=f"s{i}")]) for i in range(8)]
    results = await asyncio.gather(*(send(service, p) for p in payloads))
    assert len({r.incident_id for r in results}) == 1
    assert await count(db, IncidentRow) == 1
    assert await count(db, AlertRow) == 8
    assert await jobs(db) == ["open_channel"]  # no channel yet: its card will show all eight


async def test_recording_the_channel_waits_for_a_webhook_in_flight(db: Database) -> None:
    """A webhook that saw no channel commits before the channel is recorded, so the card (posted
    after) shows its alerts; one that commits later sees the channel and queues an update."""
    service = intake(db)
    opened = await send(service, make_payload([make_alert(instance="0")]))
    store = OutboxStore(db)
    [open_channel] = await store.due(NOW, limit=5)
    assert await store.claim(open_channel, NOW)
    async with db.sessions() as session:
        key = await session.scalar(
            select(IncidentRow.key).where(IncidentRow.id == opened.incident_id)
        )
    async with db.transaction() as tx:
        incident = await tx.latest_incident(key)
        assert incident is not None and incident.channel_id is None
        recording = asyncio.create_task(
            store.complete(open_channel, JobOutcome(incident_patch={"channel_id": "C1"}), NOW)
        )
        await eventually(
            lambda: recording_waits(db, recording), what="the recording waiting for the webhook"
        )
        assert not recording.done()
        assert await channel_of(db, opened.incident_id) is None
    await asyncio.wait_for(recording, timeout=30)  # a hang guard only
    assert await channel_of(db, opened.incident_id) == "C1"


async def channel_of(db: Database, incident_id: int) -> str | None:
    """The incident's channel as committed (read outside any open transaction)."""
    async with db.sessions() as session:
        channel: str | None = await session.scalar(
            select(IncidentRow.channel_id).where(IncidentRow.id == incident_id)
        )
    return channel


async def recording_waits(db: Database, recording: asyncio.Task[None]) -> bool:
    """The recording is held back by the open transaction (or, wrongly, already done): on
    Postgres its statement waits for the row lock; on SQLite it waits for the store's one
    writer, which the transaction holds."""
    if recording.done():
        return True
    if db.engine.dialect.name == "sqlite":
        return suspended_in(asyncio.Lock.acquire, [recording])
    async with db.sessions() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


async def test_a_note_for_an_incident_without_a_channel_waits_for_it(db: Database) -> None:
    """Queued waiting (not due, then taken only to find no channel): the channel wakes it."""
    service = intake(db)
    opened = await send(service, make_payload([make_alert(instance="0")]))
    resolved = make_alert(instance="0", status="resolved", ends_at="2026-11-26T15:40:00Z")
    await send(service, make_payload([resolved]))
    store = OutboxStore(db)
    assert [job.kind.value for job in await store.due(NOW, limit=10)] == ["open_channel"]
    assert await jobs(db) == ["open_channel", "post_note"]

    [open_channel] = await store.due(NOW, limit=10)
    assert await store.claim(open_channel, NOW)
    await store.complete(open_channel, JobOutcome(incident_patch={"channel_id": "C1"}), NOW)
    [note] = await store.due(NOW, limit=10)
    assert note.kind.value == "post_note" and note.incident_id == opened.incident_id
    assert "All alerts resolved" in note.payload["text"]


async def test_a_notification_naming_some_alerts_resolves_only_when_none_still_fires(
    db: Database,
) -> None:
    """The other alerts of the incident count, though the notification does not name them."""
    service = intake(db, auto_resolve=True)
    opened = await send(service, make_payload([make_alert(instance=str(i)) for i in range(3)]))
    ended = "2026-11-26T15:40:00Z"
    for i in (0, 1):
        resolved = make_alert(instance=str(i), status="resolved", ends_at=ended)
        assert (await send(service, make_payload([resolved]))).changed == 1
    async with db.sessions() as session:
        row = await session.get(IncidentRow, opened.incident_id)
        assert row is not None and row.status == "triggered" and row.alerts_resolved_at is None

    last = make_alert(instance="2", status="resolved", ends_at=ended)
    await send(service, make_payload([last]))
    async with db.sessions() as session:
        row = await session.get(IncidentRow, opened.incident_id)
        assert row is not None and row.status == "resolved" and row.alerts_resolved_at is not None


async def test_an_alert_firing_again_clears_when_the_alerts_last_all_resolved(
    db: Database,
) -> None:
    """The card's "all resolved at" goes once an alert fires again, in a later commit."""
    service = intake(db, auto_resolve=False)
    opened = await send(service, make_payload([make_alert(instance="0")]))
    ended = "2026-11-26T15:40:00Z"
    await send(service, make_payload([make_alert(instance="0", status="resolved", ends_at=ended)]))

    async def resolved_at() -> object:
        async with db.sessions() as session:
            row = await session.get(IncidentRow, opened.incident_id)
            assert row is not None
            return row.alerts_resolved_at

    assert await resolved_at() is not None
    await send(service, make_payload([make_alert(instance="1")]))
    assert await resolved_at() is None
