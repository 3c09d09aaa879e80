"""Slack down for ten minutes (every call answered 503), then answering 429 with Retry-After,
then back: webhooks are answered 200 throughout, and afterwards every channel, card, page and
DM is delivered exactly once. Time is a fake clock the test moves; each step waits until the
outbox has done everything that was due."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.config import Settings
from bot.config.policies import EscalationConfig, LevelConfig, PolicyConfig
from bot.slack.emulator import SlackEmulator
from bot.slack.ids import CARD_METADATA_EVENT
from bot.store.models import OutboxJobRow
from tests.builders import make_alert, make_payload
from tests.harness import RunningBot, eventually, running_bot, running_emulator, step

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0001", "U0CAROL01"


def two_levels(settings: Settings) -> None:
    settings.escalation = EscalationConfig(
        default="standard",
        policies=[
            PolicyConfig(
                name="standard",
                levels=[
                    LevelConfig(targets=[ALICE, BOB], timeout="5m"),
                    LevelConfig(targets=[CAROL], timeout="1h"),
                ],
            )
        ],
    )


async def jobs_in(bot: RunningBot, *states: str) -> int:
    async with bot.app.db.sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxJobRow).where(OutboxJobRow.state.in_(states))
        )
        return int(count or 0)


async def webhook(bot: RunningBot, n: int) -> None:
    name = f"Outage{n}"
    code, answer = await bot.post_alerts(make_payload([make_alert(name)], group=name))
    assert code == 200, answer


def texts(emulator: SlackEmulator, needle: str) -> Counter[tuple[str, str]]:
    """(channel, first line) of every message containing `needle`."""
    return Counter(
        (m.channel, (m.text or "").splitlines()[0])
        for m in emulator.state.messages
        if needle in (m.text or "")
    )


def dm_of(emulator: SlackEmulator) -> Counter[tuple[str, str]]:
    people = {c.id: c.im_user for c in emulator.state.channels.values() if c.is_im}
    return Counter(
        (str(people[m.channel]), m.text or "")
        for m in emulator.state.messages
        if m.channel in people and m.blocks
    )


async def test_a_long_outage_then_429s_lose_nothing_and_repeat_nothing(database_url: str) -> None:
    clock = FakeClock(datetime.now(UTC))
    tweak: Callable[[Settings], None] = two_levels
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=tweak, clock=clock) as bot,
    ):
        for user, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")):
            emulator.add_user(user, name)
        emulator.outage(503)
        await webhook(bot, 0)
        for minute in range(1, 11):  # ten minutes of 503s, a new alert group each minute
            await step(bot, clock, 30)
            await step(bot, clock, 30)
            if minute <= 2:
                await webhook(bot, minute)
        refused = [c for c in emulator.calls if c.status == 503]
        assert len(refused) > 20
        assert not [c for c in emulator.state.channels.values() if c.name.startswith("inc-")]

        emulator.outage(429, retry_after=1)
        for _ in range(6):  # longer than the longest backoff (5 minutes)
            await step(bot, clock, 60)
        assert any(c.status == 429 for c in emulator.calls)
        emulator.outage(None)

        async def delivered() -> bool:
            # Backoff is capped at 5 minutes: step through it until all has gone out.
            await step(bot, clock, 60)
            return len(dm_of(emulator)) == 3 * 3 and await jobs_in(bot, "pending") == 0

        await eventually(delivered, timeout=60, what="everything delivered after the outage")

        channels = [c for c in emulator.state.channels.values() if c.name.startswith("inc-")]
        assert sorted(c.name.rsplit("-", 1)[1] for c in channels) == [
            "outage0",
            "outage1",
            "outage2",
        ]
        ids = {c.id for c in channels}
        cards = [
            m
            for m in emulator.state.messages
            if m.channel in ids and (m.metadata or {}).get("event_type") == CARD_METADATA_EVENT
        ]
        assert sorted(m.channel for m in cards) == sorted(ids)  # one card per channel
        for channel in ids:  # the card comes first, whatever Slack's outage reordered
            posted = sorted(emulator.state.channel_messages(channel), key=lambda m: float(m.ts))
            first = next(m for m in posted if m.subtype is None)
            assert (first.metadata or {}).get("event_type") == CARD_METADATA_EVENT, first.text
        pages = texts(emulator, ":rotating_light: Paging level")
        assert set(pages.values()) == {1}
        assert {(ch, line.split(":")[2].strip()) for ch, line in pages} == {
            (ch, f"Paging level {n}") for ch in ids for n in (1, 2)
        }
        dms = dm_of(emulator)
        assert set(dms.values()) == {1}, "a DM was repeated"
        assert sorted(p for p, _ in dms) == sorted([ALICE, BOB, CAROL] * 3)
        assert await jobs_in(bot, "failed") == 0
        assert not texts(emulator, "Tocsin could not")


async def test_a_job_given_up_is_loud_and_said_in_alerts_once_slack_is_back(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(datetime.now(UTC))

    def give_up_soon(settings: Settings) -> None:
        settings.outbox.give_up_after = timedelta(minutes=5)

    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=give_up_soon, clock=clock) as bot,
    ):
        emulator.outage(503)
        with caplog.at_level(logging.ERROR):
            await webhook(bot, 0)
            await step(bot, clock, 60)
            # Its alert resolves meanwhile: the note saying so waits for the channel.
            resolved = make_alert("Outage0", status="resolved", ends_at="2026-11-26T10:05:00Z")
            code, _ = await bot.post_alerts(make_payload([resolved], group="Outage0"))
            assert code == 200
            for _ in range(7):
                await step(bot, clock, 60)
        lines = [r.getMessage() for r in caplog.records if "failed for good" in r.getMessage()]
        assert len(lines) == 1 and "open_channel" in lines[0] and "gave up after" in lines[0]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{bot.url}/readyz") as ready,
            session.get(f"{bot.url}/metrics") as metrics,
        ):
            outbox = (await ready.json())["checks"]["outbox"]
            # What waited for the channel (the note, diagnostics) ends with it: only the notice
            # is left, waiting for Slack.
            assert outbox["failed_24h"] == await jobs_in(bot, "failed") >= 2
            assert outbox["depth"] == await jobs_in(bot, "pending") == 1
            assert (
                'tocsin_outbox_jobs_total{kind="open_channel",outcome="gave_up"} 1.0'
                in await metrics.text()
            )
        emulator.outage(None)
        await step(bot, clock, 300)
        assert await jobs_in(bot, "pending", "running") == 0
        notices = texts(emulator, "Tocsin could not")
        assert len(notices) == 1
        (alerts_channel, line), _ = next(iter(notices.items()))
        assert emulator.state.channels[alerts_channel].name == "alerts"
        assert line.startswith(
            ":warning: Tocsin could not create the incident's channel for incident #1"
        )
        assert "service_unavailable" in line
