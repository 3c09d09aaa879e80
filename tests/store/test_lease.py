"""The outbox lease: one live holder; another takes it only once it expires; a holder that
lost it cannot renew it; a clean release lets the next one in at once. SQLite and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.clock import FakeClock
from bot.errors import StoreBusy, StoreUnreachable
from bot.loops.ownership import Ownership
from bot.store.lease import LeaseStore
from bot.store.repository import Database

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=6)


async def test_one_holder_at_a_time_and_takeover_after_expiry(db: Database) -> None:
    leases = LeaseStore(db)
    assert await leases.acquire("outbox", "a", now=NOW, ttl=TTL)
    assert not await leases.acquire("outbox", "b", now=NOW + timedelta(seconds=5), ttl=TTL)
    assert await leases.holder("outbox", now=NOW + timedelta(seconds=5)) == "a"
    assert await leases.renew("outbox", "a", now=NOW + timedelta(seconds=5), ttl=TTL)
    # a stops renewing (killed): 6 s after its last renewal, b takes over.
    later = NOW + timedelta(seconds=12)
    assert await leases.holder("outbox", now=later) is None
    assert await leases.acquire("outbox", "b", now=later, ttl=TTL)
    assert not await leases.renew("outbox", "a", now=later, ttl=TTL)
    assert await leases.holder("outbox", now=later) == "b"
    await leases.release("outbox", "a")  # not a's any more: nothing happens
    assert await leases.holder("outbox", now=later) == "b"
    await leases.release("outbox", "b")
    assert await leases.acquire("outbox", "c", now=later, ttl=TTL)


async def test_many_trying_at_once_give_one_holder(db: Database) -> None:
    leases = LeaseStore(db)
    won = await asyncio.gather(
        *(leases.acquire("outbox", f"p{i}", now=NOW, ttl=TTL) for i in range(8))
    )
    assert won.count(True) == 1


class BusyLeases(LeaseStore):
    """The store answers, until it is busy (another process holds its write lock)."""

    busy = False

    async def renew(self, name: str, holder: str, *, now: datetime, ttl: timedelta) -> bool:
        if self.busy:
            raise StoreBusy("the SQLite store stayed locked for 8 s")
        return await super().renew(name, holder, now=now, ttl=ttl)


async def test_a_busy_store_keeps_the_loops_until_the_lease_would_expire(db: Database) -> None:
    clock = FakeClock(NOW)
    started: list[str] = []
    leases = BusyLeases(db)
    ownership = Ownership(
        leases=leases,
        now=clock.now,
        on_acquired=lambda: _note(started, "start"),
        on_lost=lambda: _note(started, "stop"),
        ttl=TTL,
    )
    assert await ownership.try_once()
    leases.busy = True
    clock.advance(seconds=4)
    assert await ownership.try_once()  # renewal failed, but the lease runs 2 s more
    clock.advance(seconds=3)
    assert not await ownership.try_once()  # expired: another process may hold it now
    assert started == ["start", "stop"]


async def _note(into: list[str], what: str) -> None:
    into.append(what)


async def test_loops_that_could_not_start_are_started_at_the_next_round(db: Database) -> None:
    clock = FakeClock(NOW)
    started: list[str] = []
    failures = [StoreUnreachable("the store is unreachable (ConnectionRefusedError)")]

    async def start() -> None:
        if failures:
            raise failures.pop()
        started.append("start")

    ownership = Ownership(leases=LeaseStore(db), now=clock.now, on_acquired=start, ttl=TTL)
    assert not await ownership.try_once()  # the lease is taken, but the loops are not running
    clock.advance(seconds=2)
    assert await ownership.try_once()
    assert started == ["start"]
    assert await LeaseStore(db).holder("outbox", now=clock.now()) == ownership.holder
