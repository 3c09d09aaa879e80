"""The schedule: once per local day at the configured time, across daylight-saving changes,
restarts, downtime and two schedulers on one store."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.config.digest import DigestConfig
from bot.domain.digest import Digest
from bot.domain.digest_schedule import latest_due, next_due, scheduled_at
from bot.domain.kpi import KpiDef, Unit
from bot.domain.outbox import JobKind, OutboxJob
from bot.services.digest import DigestBuilder, DigestScheduler, KpiSources
from bot.slack.outbox.workspace_jobs import digest_jobs
from bot.store.digest import DigestStore
from bot.store.engine import create_engine
from bot.store.models import DigestRunRow, OutboxJobRow
from bot.store.repository import Database

PARIS = ZoneInfo("Europe/Paris")
OPENED = KpiDef("Incidents opened", "incidents", "opened", Unit.COUNT)


def test_a_time_in_the_spring_gap_runs_once_at_the_old_offset() -> None:
    # 29 March 2026: Paris jumps from 02:00 CET to 03:00 CEST; 02:30 does not exist.
    assert scheduled_at(date(2026, 3, 29), time(2, 30), PARIS) == datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC
    )
    assert scheduled_at(date(2026, 3, 28), time(2, 30), PARIS) == datetime(
        2026, 3, 28, 1, 30, tzinfo=UTC
    )
    assert scheduled_at(date(2026, 3, 30), time(2, 30), PARIS) == datetime(
        2026, 3, 30, 0, 30, tzinfo=UTC
    )


def test_a_time_that_happens_twice_in_autumn_runs_the_first_time() -> None:
    # 25 October 2026: 02:30 happens in CEST and again in CET.
    at = scheduled_at(date(2026, 10, 25), time(2, 30), PARIS)
    assert at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_latest_and_next_due() -> None:
    now = datetime(2026, 3, 29, 6, 59, tzinfo=UTC)  # 08:59 CEST
    assert latest_due(now, time(9), PARIS).run_day == date(2026, 3, 28)
    upcoming = next_due(now, time(9), PARIS)
    assert (upcoming.run_day, upcoming.due_at) == (
        date(2026, 3, 29),
        datetime(2026, 3, 29, 7, tzinfo=UTC),
    )
    due = latest_due(upcoming.due_at, time(9), PARIS)
    assert due.run_day == date(2026, 3, 29) and due.report_day == date(2026, 3, 28)


class Posted:
    """A render function that records what it was asked to post."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.runs: list[tuple[str, date, bool, datetime]] = []

    async def __call__(self, digest: Digest, channel: str, idem: str) -> list[OutboxJob]:
        self.runs.append((channel, digest.day, digest.late, self.clock.now()))
        return [OutboxJob(kind=JobKind.POST_DIGEST, idem_key=idem, payload={"channel": channel})]


def scheduler(db: Database, clock: FakeClock, render: object, **digest: object) -> DigestScheduler:
    runs = DigestStore(db)
    config = DigestConfig.model_validate({"channels": ["C1"], **digest})
    return DigestScheduler(
        builder=DigestBuilder(runs=runs, sources=KpiSources(), kpis=[OPENED]),
        runs=runs,
        digests=[config.scheduled()],
        default_channel=None,
        render=render,  # type: ignore[arg-type]
        now=clock.now,
    )


async def walk(sched: DigestScheduler, clock: FakeClock, until: datetime, step_min: float) -> None:
    while clock.now() < until:
        await sched.run_due()
        clock.advance(minutes=step_min)


async def test_once_a_day_at_local_time_across_the_spring_change(db: Database) -> None:
    clock = FakeClock(datetime(2026, 3, 27, 9, 0, tzinfo=UTC))  # 10:00 CET: today's time passed
    posted = Posted(clock)
    sched = scheduler(db, clock, posted, time="09:00", timezone="Europe/Paris")
    await walk(sched, clock, datetime(2026, 3, 31, 12, tzinfo=UTC), step_min=10)

    # The first start came after the 27th's time: that day is not "missed", it waits.
    assert [(c, d, late) for c, d, late, _ in posted.runs] == [
        ("C1", date(2026, 3, 27), False),  # posted on the 28th about the 27th
        ("C1", date(2026, 3, 28), False),
        ("C1", date(2026, 3, 29), False),
        ("C1", date(2026, 3, 30), False),
    ]
    at = [when for *_, when in posted.runs]
    assert at[0] == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert at[1] == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST, the day of the change
    assert at[2] == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


async def test_the_autumn_change_posts_once_even_at_an_hour_that_happens_twice(
    db: Database,
) -> None:
    clock = FakeClock(datetime(2026, 10, 23, 12, tzinfo=UTC))
    posted = Posted(clock)
    sched = scheduler(db, clock, posted, time="02:30", timezone="Europe/Paris")
    await walk(sched, clock, datetime(2026, 10, 27, 12, tzinfo=UTC), step_min=10)
    at = [when for *_, when in posted.runs]
    assert at == [
        datetime(2026, 10, 24, 0, 30, tzinfo=UTC),  # 02:30 CEST
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # the first 02:30 of the long night
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2026, 10, 27, 1, 30, tzinfo=UTC),
    ]


async def test_a_restart_does_not_post_again_and_downtime_posts_late_once(db: Database) -> None:
    clock = FakeClock(datetime(2026, 6, 1, 8, 55, tzinfo=UTC))
    posted = Posted(clock)
    await walk(scheduler(db, clock, posted), clock, datetime(2026, 6, 1, 9, 30, tzinfo=UTC), 5)
    assert [(d, late) for _, d, late, _ in posted.runs] == [(date(2026, 5, 31), False)]

    # A restart the same morning: a new scheduler over the same store posts nothing.
    await walk(scheduler(db, clock, posted), clock, datetime(2026, 6, 1, 12, tzinfo=UTC), 5)
    assert len(posted.runs) == 1

    # Down from noon on the 1st until 15:00 on the 3rd: the runs of the 2nd and 3rd were missed.
    # One late digest (about the 2nd) posts at start, not one per missed day.
    clock.current = datetime(2026, 6, 3, 15, tzinfo=UTC)
    restarted = scheduler(db, clock, posted)
    await walk(restarted, clock, datetime(2026, 6, 3, 18, tzinfo=UTC), 5)
    assert [(d, late) for _, d, late, _ in posted.runs[1:]] == [(date(2026, 6, 2), True)]
    async with db.sessions() as session:
        rows = (await session.scalars(select(DigestRunRow).order_by(DigestRunRow.day))).all()
    assert [(r.day, r.state, r.late) for r in rows] == [
        ("2026-05-31", "skipped", True),  # the first start came after that day's time
        ("2026-06-01", "queued", False),
        ("2026-06-03", "queued", True),
    ]


async def test_two_schedulers_on_one_store_post_exactly_once(database_url: str) -> None:
    """Two bot processes: two engines on the same database, racing through the same hour."""
    clock = FakeClock(datetime(2026, 6, 1, 8, 59, tzinfo=UTC))
    first, second = Database(create_engine(database_url)), Database(create_engine(database_url))
    try:
        # History exists, so the run is posted (late or not) rather than skipped.
        await DigestStore(first).skip(
            "daily", "C1", date(2026, 5, 31), due_at=clock.now(), now=clock.now()
        )
        renders: list[str] = []

        async def render(digest: Digest, channel: str, idem: str) -> list[OutboxJob]:
            renders.append(idem)
            return await digest_jobs(digest, channel, idem)

        a = scheduler(first, clock, render, channels=["C1", "C2"])
        b = scheduler(second, clock, render, channels=["C1", "C2"])
        for _ in range(20):
            await asyncio.gather(a.run_due(), b.run_due(), a.run_due(), b.run_due())
            clock.advance(minutes=1)
        async with first.sessions() as session:
            posts = await session.scalars(
                select(OutboxJobRow.idem_key).where(OutboxJobRow.kind == JobKind.POST_DIGEST.value)
            )
            keys = sorted(posts)
            queued = await session.scalar(
                select(func.count()).select_from(DigestRunRow).where(DigestRunRow.state == "queued")
            )
        assert keys == ["digest:daily:C1:2026-06-01", "digest:daily:C2:2026-06-01"]
        assert sorted(renders) == keys  # built and rendered once per channel, not per process
        assert queued == 2
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_claim_lost_with_its_process_is_taken_over_later(db: Database) -> None:
    clock = FakeClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    runs = DigestStore(db)
    day = date(2026, 6, 1)
    claim = await runs.claim("daily", "C1", day, due_at=clock.now(), now=clock.now(), late=False)
    assert claim is not None
    # The process dies before queueing. Another one tries at once: refused; after the lease: ok.
    assert (
        await runs.claim("daily", "C1", day, due_at=clock.now(), now=clock.now(), late=False)
        is None
    )
    clock.advance(minutes=6)
    again = await runs.claim("daily", "C1", day, due_at=clock.now(), now=clock.now(), late=False)
    assert again is not None and again.late


async def test_a_failed_build_gives_the_run_back(db: Database) -> None:
    clock = FakeClock(datetime(2026, 6, 1, 8, 59, tzinfo=UTC))
    await DigestStore(db).skip("daily", "C1", date(2026, 5, 1), due_at=clock.now(), now=clock.now())
    attempts = 0

    async def flaky(digest: Digest, channel: str, idem: str) -> list[OutboxJob]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("chart failed")
        return [OutboxJob(kind=JobKind.POST_DIGEST, idem_key=idem, payload={"channel": channel})]

    sched = scheduler(db, clock, flaky)
    await walk(sched, clock, datetime(2026, 6, 1, 9, 5, tzinfo=UTC), 1)
    assert attempts == 2  # failed at 09:00, retried at the next pass, then done
    assert await sched.run_due() == 0
