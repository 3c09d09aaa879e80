"""Slack's budget is the app's: a sender that takes over from another counts the calls the
other made in the current window, from the store, before making its own."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from bot.slack.outbox.budget import ARRIVAL_MARGIN, SharedBudget
from bot.slack.outbox.ratelimit import RateLimiter
from bot.store.repository import Database
from bot.store.spend import SpendStore

TIERS = {"1": 1, "2": 20, "3": 50, "4": 100, "special": 600}


def sender(db: Database, clock: FakeClock) -> SharedBudget:
    limiter = RateLimiter(
        tier_per_minute=TIERS,
        per_channel_per_second=1.0,
        clock=lambda: clock.now().timestamp(),
    )
    return SharedBudget(log=SpendStore(db), limiter=limiter, now=clock.now)


async def spend(budget: SharedBudget, method: str, times: int) -> None:
    for _ in range(times):
        assert budget.limiter.try_acquire(method) == 0
        await budget.spend(method)


async def test_the_next_sender_waits_for_the_window_the_last_one_filled(db: Database) -> None:
    clock = FakeClock()
    first, second = sender(db, clock), sender(db, clock)
    await spend(first, "conversations.create", 20)  # Tier 2's minute, all of it
    await spend(first, "chat.update", 5)
    clock.advance(seconds=8)  # the first sender dies; its lease runs out
    assert await second.take_over() == 25
    wait = second.limiter.wait_for("conversations.create")
    assert wait == pytest.approx(60 - 8 + ARRIVAL_MARGIN)
    assert second.limiter.room("chat.update") == 45
    clock.advance(seconds=wait)
    assert second.limiter.wait_for("conversations.create") == 0


async def test_a_sender_taking_the_lease_back_does_not_count_its_calls_twice(
    db: Database,
) -> None:
    clock = FakeClock()
    budget = sender(db, clock)
    await spend(budget, "conversations.create", 10)
    await budget.take_over()
    assert budget.limiter.room("conversations.create") == 10


async def test_calls_older_than_a_window_are_not_counted(db: Database) -> None:
    clock = FakeClock()
    first, second = sender(db, clock), sender(db, clock)
    await spend(first, "conversations.create", 20)
    clock.advance(seconds=63)
    assert await second.take_over() == 0
    assert second.limiter.room("conversations.create") == 20


class Unreadable:
    async def record(self, method: str, at: object) -> None:
        raise OSError("the store is down")

    async def since(self, at: object) -> list[tuple[str, object]]:
        raise OSError("the store is down")


async def test_a_sender_that_cannot_read_the_window_waits_it_out() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        tier_per_minute=TIERS, per_channel_per_second=1.0, clock=lambda: clock.now().timestamp()
    )
    budget = SharedBudget(log=Unreadable(), limiter=limiter, now=clock.now)  # type: ignore[arg-type]
    assert await budget.take_over() == 0
    assert limiter.wait_for("conversations.create") == pytest.approx(60 + ARRIVAL_MARGIN)
