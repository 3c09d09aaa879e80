"""Jobs waiting for their incident's channel or card: woken when it is recorded, not polled."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.domain.intake import IntakeRules
from bot.domain.outbox import WAITING, JobKind, note_job
from bot.services.alerts import AlertIntake
from bot.store.outbox import Job, JobOutcome, OutboxStore
from bot.store.repository import Database
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload, utc

NOW = utc("2026-11-26T15:36:00Z")
LATER = NOW + timedelta(seconds=30)


async def incident_with_note(db: Database) -> tuple[OutboxStore, Job, Job]:
    """An incident whose channel is not open yet, its open_channel job and a note job."""
    body = json.dumps(make_payload([make_alert("HighErrorRate")]))
    intake = AlertIntake(store=db, rules=IntakeRules(timedelta(minutes=30), auto_resolve=False))
    incident_id = (
        await intake.ingest(parse_webhook(body.encode()), body=body, now=NOW)
    ).incident_id
    assert incident_id is not None
    async with db.transaction() as tx:
        await tx.enqueue([note_job(incident_id, "n1", "a note")], at=NOW)
    store = OutboxStore(db)
    due = {job.kind: job for job in await store.due(NOW, limit=10)}
    for job in due.values():
        assert await store.claim(job, NOW)
    return store, due[JobKind.OPEN_CHANNEL], due[JobKind.POST_NOTE]


async def test_a_job_still_waiting_for_its_channel_is_not_looked_at_again_soon(
    db: Database,
) -> None:
    store, _, note = await incident_with_note(db)

    await store.retry(
        note, at=LATER, error=f"{WAITING}channel not created yet", count_attempt=False, now=NOW
    )

    assert [j.kind for j in await store.due(NOW + timedelta(seconds=29), limit=10)] == []
    assert [j.kind for j in await store.due(LATER, limit=10)] == [JobKind.POST_NOTE]


async def test_recording_the_channel_wakes_the_jobs_waiting_for_it(db: Database) -> None:
    store, opener, note = await incident_with_note(db)
    await store.retry(
        note, at=LATER, error=f"{WAITING}channel not created yet", count_attempt=False, now=NOW
    )

    await store.complete(opener, JobOutcome(incident_patch={"channel_id": "C123"}), NOW)

    assert [j.kind for j in await store.due(NOW, limit=10)] == [JobKind.POST_NOTE]


async def test_a_job_that_ran_on_an_old_view_while_the_channel_was_recorded_is_due_at_once(
    db: Database,
) -> None:
    store, opener, note = await incident_with_note(db)
    # The note read the incident before its channel existed; the channel is recorded (and
    # waiting jobs woken) before the note puts itself back to wait.
    await store.complete(opener, JobOutcome(incident_patch={"channel_id": "C123"}), NOW)

    await store.retry(
        note, at=LATER, error=f"{WAITING}channel not created yet", count_attempt=False, now=NOW
    )

    assert [j.kind for j in await store.due(NOW, limit=10)] == [JobKind.POST_NOTE]


async def test_a_job_waiting_for_the_card_still_waits_when_only_the_channel_exists(
    db: Database,
) -> None:
    store, opener, note = await incident_with_note(db)
    await store.complete(opener, JobOutcome(incident_patch={"channel_id": "C123"}), NOW)

    await store.retry(
        note, at=LATER, error=f"{WAITING}card not posted yet", count_attempt=False, now=NOW
    )

    assert await store.due(NOW, limit=10) == []
