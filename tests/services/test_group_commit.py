"""Group commit: webhooks arriving together share a commit; each is answered once durable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, func, select

from bot.domain.incidents import GroupDecision
from bot.domain.intake import IntakeRules
from bot.errors import StoreConflict
from bot.ports import IncidentTransaction
from bot.services.alerts import AlertIntake
from bot.services.group_commit import GroupCommit
from bot.store.models import AlertRow, IncidentRow, TimelineEventRow, WebhookReceiptRow
from bot.store.repository import Database
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload, utc

NOW = utc("2026-11-26T15:36:00Z")


def body_for(group: str, instance: str = "a") -> str:
    return json.dumps(make_payload([make_alert(group, instance=instance)], group=group))


async def count(db: Database, model: type, *where: object) -> int:
    async with db.sessions() as session:
        query = select(func.count()).select_from(model)
        return int(await session.scalar(query.where(*where) if where else query) or 0)


async def test_webhooks_sent_together_share_commits_and_each_is_durable_when_answered(
    db: Database,
) -> None:
    commits = GroupCommit(db)
    intake = AlertIntake(
        store=db, rules=IntakeRules(timedelta(minutes=30), auto_resolve=False), commits=commits
    )
    seen_committed: list[bool] = []

    async def post(n: int) -> None:
        body = body_for(f"Storm{n:02d}")
        result = await intake.ingest(parse_webhook(body.encode()), body=body, now=NOW)
        assert result.decision is GroupDecision.OPEN
        # Answered means committed: a fresh session (another connection) sees the incident.
        seen_committed.append(
            await count(db, IncidentRow, IncidentRow.id == result.incident_id) == 1
        )

    await asyncio.gather(*(post(n) for n in range(40)))

    assert seen_committed == [True] * 40
    assert await count(db, IncidentRow) == 40
    assert await count(db, WebhookReceiptRow) == 40
    assert commits.units == 40
    assert commits.batches < 40  # fewer commits than webhooks: they were shared


async def test_same_group_twice_in_one_batch_opens_once_and_joins(db: Database) -> None:
    intake = AlertIntake(store=db, rules=IntakeRules(timedelta(minutes=30), auto_resolve=False))
    first, second = body_for("HighErrorRate", "a"), body_for("HighErrorRate", "b")
    results = await asyncio.gather(
        intake.ingest(parse_webhook(first.encode()), body=first, now=NOW),
        intake.ingest(parse_webhook(second.encode()), body=second, now=NOW),
        intake.ingest(parse_webhook(second.encode()), body=second, now=NOW),
    )

    assert [r.decision for r in results] == [GroupDecision.OPEN, GroupDecision.UPDATE, None]
    assert results[2].duplicate
    assert await count(db, IncidentRow) == 1
    assert await count(db, AlertRow) == 2
    assert await count(db, WebhookReceiptRow) == 2


async def test_a_failing_unit_fails_alone_and_the_rest_of_its_batch_commits(db: Database) -> None:
    intake = AlertIntake(store=db, rules=IntakeRules(timedelta(minutes=30), auto_resolve=False))
    commits = intake.commits

    async def broken(tx: IncidentTransaction) -> None:
        await tx.add_events(1, [])
        raise ValueError("this unit is broken")

    bodies = [body_for(f"Group{n}") for n in range(5)]
    posts = [intake.ingest(parse_webhook(b.encode()), body=b, now=NOW) for b in bodies]
    outcomes = await asyncio.gather(
        *posts[:2], commits.run(broken), *posts[2:], return_exceptions=True
    )

    assert isinstance(outcomes[2], ValueError)
    opened = [o for o in outcomes if not isinstance(o, BaseException)]
    assert [o.decision for o in opened] == [GroupDecision.OPEN] * 5  # type: ignore[union-attr]
    assert await count(db, IncidentRow) == 5
    assert await count(db, TimelineEventRow, TimelineEventRow.kind == "opened") == 5


async def test_a_conflict_is_redone_on_what_the_other_writer_committed(db: Database) -> None:
    commits = GroupCommit(db)
    tries = 0

    async def racing(tx: IncidentTransaction) -> int:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise StoreConflict("someone else saved first")
        return tries

    assert await commits.run(racing) == 2


async def test_a_conflict_that_never_clears_reaches_the_caller(db: Database) -> None:
    commits = GroupCommit(db)

    async def hopeless(tx: IncidentTransaction) -> None:
        raise StoreConflict("always")

    with pytest.raises(StoreConflict, match="always"):
        await commits.run(hopeless)


async def test_one_batch_opens_resolves_and_reopens_an_incident_in_one_commit(
    db: Database,
) -> None:
    """Each unit of a batch sees what the units before it changed (the incident's new version)."""
    commits = GroupCommit(db)
    intake = AlertIntake(
        store=db, rules=IntakeRules(timedelta(minutes=30), auto_resolve=True), commits=commits
    )

    def body(status: str, starts_at: str = "2026-11-26T10:00:00Z") -> str:
        alert = make_alert("DiskFull", status=status, instance="a", starts_at=starts_at)
        return json.dumps(make_payload([alert], group="DiskFull", status=status))

    firing, resolved = body("firing"), body("resolved")
    again = body("firing", starts_at="2026-11-26T15:35:00Z")  # it fired anew
    results = await asyncio.gather(
        *(
            intake.ingest(parse_webhook(b.encode()), body=b, now=NOW)
            for b in (firing, resolved, again)
        )
    )

    assert [r.decision for r in results] == [
        GroupDecision.OPEN,
        GroupDecision.UPDATE,
        GroupDecision.REOPEN,
    ]
    assert commits.batches == 1  # no unit saw a stale incident and had to be redone alone
    async with db.sessions() as session:
        incident = (await session.scalars(select(IncidentRow))).one()
        kinds = (
            await session.scalars(select(TimelineEventRow.kind).order_by(TimelineEventRow.id))
        ).all()
        alert = (await session.scalars(select(AlertRow))).one()
    assert incident.status == "triggered"  # auto-resolved, then reopened by the refire
    assert incident.version == 3  # opened at 1, resolved, reopened
    assert kinds[-3:] == ["resolve", "reopen", "alerts_refired"]
    assert alert.status == "firing"


@contextmanager
def statements_counted() -> Iterator[list[str]]:
    """Every statement any engine sends while the block runs (engine events see them all)."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", count)


async def test_a_storm_of_one_group_is_written_with_a_few_statements_per_commit(
    db: Database,
) -> None:
    """Sixteen notifications of one group, each a new alert, share one commit: their receipts,
    alerts and timeline entries are read and written a table at a time, not one by one."""
    commits = GroupCommit(db)
    intake = AlertIntake(
        store=db, rules=IntakeRules(timedelta(minutes=30), auto_resolve=False), commits=commits
    )
    first = body_for("HighErrorRate", "host-00")
    await intake.ingest(parse_webhook(first.encode()), body=first, now=NOW)
    bodies = [body_for("HighErrorRate", f"host-{n:02d}") for n in range(1, 17)]

    with statements_counted() as statements:
        results = await asyncio.gather(
            *(intake.ingest(parse_webhook(b.encode()), body=b, now=NOW) for b in bodies)
        )

    assert [r.decision for r in results] == [GroupDecision.UPDATE] * 16
    assert commits.batches == 2  # the first notification, then the sixteen together
    assert len(statements) <= 16, statements  # one by one: 114 (seven each)
    assert await count(db, AlertRow) == 17
    assert await count(db, WebhookReceiptRow) == 17
    async with db.sessions() as session:
        texts = (
            await session.scalars(
                select(TimelineEventRow.data)
                .where(TimelineEventRow.kind == "alerts_new")
                .order_by(TimelineEventRow.id)
            )
        ).all()
    # In the order they arrived: each notification's entry names its own alert.
    assert len(texts) == 17
    instances = [json.loads(b)["alerts"][0]["fingerprint"] for b in [first, *bodies]]
    assert [t["fingerprints"] for t in texts] == [[fp] for fp in instances]


async def test_bodies_sent_again_cost_only_the_look_at_their_receipts(db: Database) -> None:
    """Alertmanager's second HA peer sends sixteen groups' notifications again, byte for byte:
    the batch reads their receipts and nothing of their incidents or alerts."""
    commits = GroupCommit(db)
    intake = AlertIntake(
        store=db, rules=IntakeRules(timedelta(minutes=30), auto_resolve=False), commits=commits
    )
    bodies = [body_for(f"Group{n:02d}") for n in range(16)]
    for body in bodies:
        await intake.ingest(parse_webhook(body.encode()), body=body, now=NOW)

    with statements_counted() as statements:
        results = await asyncio.gather(
            *(intake.ingest(parse_webhook(b.encode()), body=b, now=NOW) for b in bodies)
        )

    assert all(r.duplicate for r in results)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1, reads  # the receipts; before: 33 (each group's incident and alerts)
    assert await count(db, WebhookReceiptRow) == 16


async def test_a_body_stored_by_an_earlier_commit_is_a_duplicate_inside_a_batch(
    db: Database,
) -> None:
    intake = AlertIntake(store=db, rules=IntakeRules(timedelta(minutes=30), auto_resolve=False))
    old, new = body_for("HighErrorRate", "a"), body_for("HighErrorRate", "b")
    await intake.ingest(parse_webhook(old.encode()), body=old, now=NOW)

    again, other = await asyncio.gather(
        intake.ingest(parse_webhook(old.encode()), body=old, now=NOW),
        intake.ingest(parse_webhook(new.encode()), body=new, now=NOW),
    )

    assert again.duplicate and again.decision is None
    assert other.decision is GroupDecision.UPDATE
    assert await count(db, WebhookReceiptRow) == 2
    assert await count(db, AlertRow) == 2
