"""The outbox under Slack's rate limits: nothing lost, nothing sent while a Retry-After runs."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.domain.outbox import note_job
from bot.slack.emulator import RateLimit
from bot.slack.outbox.ratelimit import RateLimiter
from bot.store.models import OutboxJobRow
from tests.builders import make_alert, make_payload
from tests.harness import eventually, running_bot, running_emulator


def generous_pacing(settings: Settings) -> None:
    # Tocsin believes Tier 2 allows 600/min, so the emulator's stricter limit answers 429.
    settings.outbox.tier_per_minute = {**settings.outbox.tier_per_minute, "2": 600}
    settings.outbox.per_channel_per_second = 20.0
    settings.storm = None  # every group its own channel: the 429s of conversations.create


async def test_thirty_groups_end_as_thirty_channels_despite_429s(database_url: str) -> None:
    limits = {"conversations.create": RateLimit(calls=4, window_seconds=1.0)}
    async with (
        running_emulator(rate_limits=limits) as (emulator, url),
        running_bot(database_url, emulator, url, tweak=generous_pacing) as bot,
    ):
        for i in range(30):
            code, _ = await bot.post_alerts(
                make_payload([make_alert(f"Alert{i}")], group=f"Alert{i}")
            )
            assert code == 200

        def channels() -> int:
            return sum(
                1
                for c in emulator.calls_to("conversations.create")
                if c.response.get("ok") and c.params["name"].startswith("inc-")
            )

        await eventually(lambda: channels() == 30, timeout=60, what="30 channels")
        await eventually(
            lambda: len(emulator.calls_to("pins.add")) == 30, timeout=30, what="30 pins"
        )
        assert any(c.status == 429 for c in emulator.calls_to("conversations.create"))
        assert emulator.violations == []

        async def states() -> set[str]:
            async with bot.app.db.sessions() as session:
                return set(await session.scalars(select(OutboxJobRow.state)))

        await eventually(
            lambda: bot.app.worker.store.depth_is_zero(), timeout=30, what="empty outbox"
        )
        assert await states() == {"done"}
        names = [
            c.params["name"]
            for c in emulator.calls_to("conversations.create")
            if c.response.get("ok")
        ]
        assert len(names) == len(set(names))


def test_limiter_paces_a_tier_and_obeys_retry_after() -> None:
    now = [0.0]
    limiter = RateLimiter(
        tier_per_minute={"2": 20, "3": 50}, per_channel_per_second=1.0, clock=lambda: now[0]
    )
    assert all(limiter.try_acquire("conversations.create") == 0 for _ in range(20))
    assert limiter.try_acquire("conversations.create") == 60.0
    now[0] = 60.0
    assert limiter.try_acquire("conversations.create") == 0
    limiter.block("chat.update", 30)
    assert limiter.wait_for("chat.update") == 30.0
    assert limiter.try_acquire("chat.postMessage", "C1") == 0
    assert limiter.try_acquire("chat.postMessage", "C1") == 1.0
    assert limiter.try_acquire("chat.postMessage", "C2") == 0


async def test_jobs_beyond_a_methods_room_are_not_claimed_only_to_be_put_back(
    database_url: str,
) -> None:
    def three_channels_a_minute(settings: Settings) -> None:
        settings.outbox.tier_per_minute = {**settings.outbox.tier_per_minute, "2": 3}

    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=three_channels_a_minute) as bot,
    ):
        # A storm: ten groups at once, so the worker finds ten channels to open in one look.
        posts = [
            bot.post_alerts(make_payload([make_alert(f"Alert{i}")], group=f"Alert{i}"))
            for i in range(10)
        ]
        assert [code for code, _ in await asyncio.gather(*posts)] == [200] * 10

        def incident_channels() -> int:
            calls = emulator.calls_to("conversations.create")
            return sum(1 for c in calls if c.params["name"].startswith("inc-"))

        async def opens() -> list[tuple[str, str | None]]:
            async with bot.app.db.sessions() as session:
                rows = await session.execute(
                    select(OutboxJobRow.state, OutboxJobRow.last_error).where(
                        OutboxJobRow.kind == "open_channel"
                    )
                )
                return [(state, error) for state, error in rows]

        async def minute_spent() -> bool:
            states = sorted(state for state, _ in await opens())
            return states == ["done"] * 3 + ["pending"] * 7

        # Three creates a minute: three channels, then the others wait for the next minute.
        await eventually(minute_spent, what="the minute's three channels, the rest pending")
        opened = incident_channels()
        assert opened == 3
        worker = bot.app.worker
        looks = worker.idle_looks
        await eventually(lambda: worker.idle_looks >= looks + 3, what="a few more looks")
        # The waiting ones were never started: none was claimed only to find the method paced.
        assert [error for _, error in await opens() if error] == []
        assert incident_channels() == opened


def test_limiter_room_counts_what_a_method_may_still_do_now() -> None:
    now = [0.0]
    limiter = RateLimiter(
        tier_per_minute={"2": 3, "3": 50}, per_channel_per_second=1.0, clock=lambda: now[0]
    )
    assert limiter.room("conversations.create") == 3
    limiter.try_acquire("conversations.create")
    assert limiter.room("conversations.create") == 2
    limiter.block("conversations.create", 5)
    assert limiter.room("conversations.create") == 0
    now[0] = 61.0
    assert limiter.room("conversations.create") == 3


async def test_posts_to_a_paced_channel_wait_in_the_queue_and_go_a_second_apart(
    database_url: str,
) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as bot,
    ):
        code, _ = await bot.post_alerts(make_payload([make_alert("DiskFull")], group="DiskFull"))
        assert code == 200
        await eventually(lambda: len(emulator.calls_to("pins.add")) == 1, what="the card")
        async with bot.app.db.transaction() as tx:
            await tx.enqueue(
                [note_job(1, f"n{i}", f"note {i}") for i in range(4)], at=bot.app.services.now()
            )
        bot.app.worker.wake()

        def notes() -> list[float]:
            return [
                c.at
                for c in emulator.calls_to("chat.postMessage")
                if c.params.get("text", "").startswith("note ")
            ]

        await eventually(lambda: len(notes()) == 4, timeout=10, what="four notes")
        gaps = [later - earlier for earlier, later in zip(notes(), notes()[1:], strict=False)]
        assert all(gap >= 0.95 for gap in gaps), gaps  # Slack's one message a second
        # None was started only to find its channel paced and be put back.
        held = bot.app.metrics.registry.get_sample_value(
            "tocsin_slack_rate_limited_waits_total",
            {"method": "chat.postMessage", "reason": "local"},
        )
        assert held in (None, 0.0)


def test_a_tier_window_counts_from_the_answer_so_it_never_ends_before_slacks() -> None:
    now = [0.0]
    limiter = RateLimiter(
        tier_per_minute={"2": 1, "3": 50}, per_channel_per_second=1.0, clock=lambda: now[0]
    )
    assert limiter.try_acquire("conversations.create") == 0
    now[0] = 0.4  # the answer: Slack counted the call somewhere in between
    limiter.settle("conversations.create")
    now[0] = 60.1
    assert limiter.wait_for("conversations.create") == pytest.approx(0.3)
    now[0] = 60.4
    assert limiter.try_acquire("conversations.create") == 0


def test_a_channels_next_post_counts_from_the_answer_so_it_never_comes_early() -> None:
    now = [0.0]
    limiter = RateLimiter(
        tier_per_minute={"3": 50}, per_channel_per_second=1.0, clock=lambda: now[0]
    )
    assert limiter.try_acquire("chat.postMessage", "C1") == 0
    now[0] = 0.7  # a big message: Slack saw it arrive somewhere before this answer
    limiter.settle("chat.postMessage", "C1")
    now[0] = 1.0
    assert limiter.wait_for("chat.postMessage", "C1") == pytest.approx(0.7)
    assert limiter.wait_for("chat.postMessage", "C2") == 0  # other channels are not held
    now[0] = 1.7
    assert limiter.try_acquire("chat.postMessage", "C1") == 0
