"""The timer scheduler on a real store: timers due together fire in shared transactions, one
that fails is tried alone and holds none of the others back, and a timer due before the next
poll fires at its time, not at the poll."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.clock import FakeClock, SystemClock
from bot.domain.timers import DueTimer, Timer
from bot.loops.timers import BATCH, TimerScheduler
from bot.ports import IncidentTransaction
from bot.services.incidents import in_transaction
from bot.store.models import TimerRow
from bot.store.repository import Database
from bot.store.timers import TimerStore
from tests.harness import eventually

START = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
LATER = START + timedelta(days=365)


async def schedule(db: Database, timers: list[Timer], at: datetime) -> None:
    async def work(tx: IncidentTransaction) -> None:
        for timer in timers:
            await tx.schedule(timer, at=at)

    await in_transaction(db, work)


class Work:
    """A timer kind whose work leaves a mark in the store (a far-off "done" timer), so only
    committed work is seen; the timer numbered `broken` fails while it is broken."""

    def __init__(self, broken: int | None = None) -> None:
        self.broken = broken

    async def fire(self, tx: IncidentTransaction, timer: DueTimer) -> None:
        number = int(timer.payload["n"])
        if number == self.broken:
            raise RuntimeError(f"timer {number} is broken")
        await tx.schedule(Timer("done", f"done:{number}", LATER, payload={"n": number}), at=START)


async def done(db: Database) -> list[int]:
    async with db.sessions() as session:
        rows = await session.scalars(select(TimerRow).where(TimerRow.kind == "done"))
        return sorted(int(r.payload["n"]) for r in rows)


async def state_of(db: Database, number: int) -> str:
    async with db.sessions() as session:
        rows = await session.scalars(select(TimerRow).where(TimerRow.idem_key == f"work:{number}"))
        return rows.one().state


async def test_a_failing_timer_is_tried_alone_and_holds_back_none_of_the_others(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(START)
    work = Work(broken=7)
    scheduler = TimerScheduler(
        db=db, store=TimerStore(db), handlers={"work": work.fire}, now=clock.now
    )
    count = BATCH + 4  # more than one transaction's worth
    await schedule(
        db, [Timer("work", f"work:{n}", START, payload={"n": n}) for n in range(count)], START
    )

    assert await scheduler.run_due() == count - 1
    assert await done(db) == [n for n in range(count) if n != 7]  # each once
    assert await state_of(db, 7) == "pending"  # due again
    assert "timer 7 is broken" in caplog.text

    assert await scheduler.run_due() == 0  # still broken; nothing else is due
    work.broken = None
    assert await scheduler.run_due() == 1
    assert await done(db) == list(range(count))
    assert await scheduler.run_due() == 0


async def test_a_timer_due_before_the_next_poll_fires_at_its_time(db: Database) -> None:
    clock = SystemClock()
    work = Work()
    scheduler = TimerScheduler(
        db=db,
        store=TimerStore(db),
        handlers={"work": work.fire},
        now=clock.now,
        poll_interval=3600,  # a timer left to the poll would wait an hour
    )
    running = asyncio.create_task(scheduler.run())
    try:
        now = clock.now()
        await schedule(
            db, [Timer("work", "work:1", now + timedelta(seconds=0.5), payload={"n": 1})], now
        )
        scheduler.wake()  # as scheduling does: the pass finds it not yet due
        await eventually(lambda: done_is(db, [1]), what="the timer to fire at its time")
    finally:
        await scheduler.stop()
        await running


async def done_is(db: Database, expected: list[int]) -> bool:
    return await done(db) == expected
