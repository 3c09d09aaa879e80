"""Storm mode: past `storm.new_groups` new alert groups within `storm.within`, the next groups
join one storm incident: one channel and one card that lists them, updated in place, and one
page; each group keeps its alerts and state."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.config import Settings
from bot.domain.incidents import IncidentStatus
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from bot.slack.emulator.state import Message
from bot.store import schema
from bot.store.models import AlertRow, IncidentRow
from tests.builders import make_alert, make_payload
from tests.harness import (
    ServeProcess,
    bot_env,
    eventually,
    post_webhook,
    running_bot,
    running_emulator,
    settled,
    step,
)
from tests.realservers import free_port
from tests.slack.test_card_truth import ALICE, people, press, settings_with, settle, words

THRESHOLD = 10  # the default rule: 10 new groups within 2 minutes
# Tier 2 methods (conversations.create, setTopic) allow 20 calls a minute: after a dozen
# channels the last of the Slack work may wait most of a minute for Slack's budget.
PACED_WORK = 90.0


def rule(n: int) -> str:
    return f"Rule{n:03d}"


def labels(n: int) -> dict[str, str]:
    return {"service": f"svc{n % 4}", "dc": "fra1"}


def firing(n: int) -> dict[str, Any]:
    common = {"alertname": rule(n), "severity": "critical", **labels(n)}
    alert = make_alert(rule(n), **labels(n))
    return make_payload([alert], group=rule(n), commonLabels=common)


def resolved(n: int) -> dict[str, Any]:
    common = {"alertname": rule(n), "severity": "critical", **labels(n)}
    alert = make_alert(rule(n), status="resolved", ends_at="2026-11-26T10:30:00Z", **labels(n))
    return make_payload([alert], group=rule(n), commonLabels=common)


def paged(emulator: SlackEmulator, user: str) -> list[str]:
    """The incident cards sent to `user` in their DM with the bot (a page each)."""
    dms = {c.id for c in emulator.state.channels.values() if c.is_im and c.im_user == user}
    return [
        words(m)
        for m in emulator.state.messages
        if m.channel in dms and m.blocks and not m.thread_ts
    ]


def channels(emulator: SlackEmulator) -> list[str]:
    return [c.name for c in emulator.state.channels.values() if c.name.startswith("inc-")]


def storm_card(emulator: SlackEmulator) -> Message:
    storm = next(c for c in emulator.state.channels.values() if "storm" in c.name)
    return next(
        m
        for m in emulator.state.channel_messages(storm.id)
        if (m.metadata or {}).get("event_type") == ids.CARD_METADATA_EVENT
    )


async def storm_says(url: str, emulator: SlackEmulator, text: str) -> None:
    """Wait until the Tocsin at `url` did all its Slack work and the storm's card says `text`."""

    async def said() -> bool:
        if not any("storm" in c for c in channels(emulator)):
            return False
        return await settled(url) and text in words(storm_card(emulator))

    await eventually(said, timeout=PACED_WORK, what=f"the storm card to say {text!r}")


async def test_thirty_new_groups_make_ten_channels_and_one_storm_that_lists_the_rest(
    database_url: str,
) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=settings_with(levels=[[ALICE]])) as bot,
    ):
        people(emulator)
        for n in range(30):
            status, _ = await bot.post_alerts(firing(n))
            assert status == 200
        await storm_says(bot.url, emulator, "20 alert groups: 20 firing, 0 resolved")

        names = channels(emulator)
        assert len(names) == THRESHOLD + 1
        assert sum("storm-1" in name for name in names) == 1
        card = words(storm_card(emulator))
        for n in range(THRESHOLD, 30):  # every folded group, by name, on the card
            assert rule(n) in card
        for n in range(THRESHOLD):  # the groups before the storm have channels of their own
            assert f"{rule(n)} " not in card
        assert "`dc=fra1`" in card  # what every group shares: the likely cause
        # A storm's buttons act on it as a whole; none silences what its groups merely share.
        assert "Silence" not in card and "Acknowledge" in card
        assert all(c.response.get("ok") for c in emulator.calls)  # 0 × 429
        # One page for the storm; its groups page nobody on their own.
        pages = paged(emulator, ALICE)
        assert sum("Alert storm 1" in p for p in pages) == 1
        titles = sorted(p.split(" — ", 1)[0] for p in pages if "Alert storm" not in p)
        assert titles == [f"You are paged (level 1) for [sev1] {rule(n)}" for n in range(THRESHOLD)]
        async with aiohttp.ClientSession() as http, http.get(f"{bot.url}/metrics") as answer:
            metrics = await answer.text()
        assert "tocsin_storms_opened_total 1.0" in metrics
        assert "tocsin_storm_groups_folded_total 20.0" in metrics

        for n in range(THRESHOLD, 20):
            await bot.post_alerts(resolved(n))
        await storm_says(bot.url, emulator, "20 alert groups: 10 firing, 10 resolved")
        # Acknowledging the storm acknowledges its groups (the page stops for all of them).
        card_message = storm_card(emulator)
        await press(bot, emulator, ids.ACKNOWLEDGE, "11", ALICE, card_message)
        await storm_says(bot.url, emulator, "acknowledged by")
        assert (await bot.app.services.incidents.get(25)).status is IncidentStatus.ACKNOWLEDGED

        # Split one group out: its own channel and card, its timeline carried with it.
        split = next(
            n for n in range(20, 30) if f"#{n + 2} {rule(n)}" in words(storm_card(emulator))
        )
        number = split + 2  # incidents 1-10 have channels, 11 is the storm
        reply = await emulator.send_slash_command(
            f"{bot.url}/slack/events",
            ids.INCIDENT_COMMAND,
            f"split {number}",
            user_id=ALICE,
            channel_id=card_message.channel,
        )
        assert reply.status == 200
        await storm_says(bot.url, emulator, "19 alert groups")
        own = [name for name in channels(emulator) if rule(split).lower() in name]
        assert len(own) == 1
        history = [e.text for e in await bot.app.services.incidents.timeline(number)]
        assert any("folded into alert storm #11" in t for t in history)
        assert any("Split out of alert storm #11" in t for t in history)

        async with bot.app.db.sessions() as session:
            members = await session.scalar(
                select(func.count())
                .select_from(IncidentRow)
                .where(IncidentRow.storm_id.is_not(None))
            )
            alerts = await session.scalar(select(func.count()).select_from(AlertRow))
        assert (members, alerts) == (19, 30)  # every group kept, with its alerts


async def test_a_storm_and_its_groups_survive_a_crash_and_no_group_opens_a_channel_for_it(
    tmp_path: Path, database_url: str
) -> None:
    await asyncio.to_thread(schema.upgrade, database_url)
    async with running_emulator() as (emulator, emulator_url):
        tocsin = ServeProcess(bot_env(database_url, emulator_url), free_port(), tmp_path / "log")
        await tocsin.start()
        try:
            for n in range(15):
                assert (await post_webhook(tocsin.url, firing(n)))[0] == 200
            await storm_says(tocsin.url, emulator, "5 alert groups: 5 firing")

            tocsin.kill()  # kill -9 mid-storm
            await tocsin.start()
            # Alertmanager sends its groups again, and the storm goes on with new ones.
            for n in range(20):
                assert (await post_webhook(tocsin.url, firing(n)))[0] == 200
            await storm_says(tocsin.url, emulator, "10 alert groups: 10 firing")
            assert len(channels(emulator)) == THRESHOLD + 1
            assert sum("storm" in name for name in channels(emulator)) == 1
        finally:
            tocsin.stop()


async def test_three_hundred_new_groups_in_a_minute_fold_into_one_paced_storm_card(
    database_url: str,
) -> None:
    """At Slack's documented limits (the emulator's defaults) and Tocsin's own defaults: the
    card settles 2 s (`outbox.card_settle`) before it shows new groups."""

    def defaults(settings: Settings) -> None:
        settings.outbox.card_settle = timedelta(seconds=2)

    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=defaults) as bot,
    ):
        for start in range(0, 300, 15):
            answers = await asyncio.gather(
                *(bot.post_alerts(firing(n)) for n in range(start, start + 15))
            )
            assert [status for status, _ in answers] == [200] * 15
        last_group = time.monotonic()  # the emulator's clock
        await storm_says(bot.url, emulator, "290 alert groups: 290 firing, 0 resolved")

        assert len(channels(emulator)) == THRESHOLD + 1
        assert all(c.response.get("ok") for c in emulator.calls)  # 0 × 429
        card = storm_card(emulator)
        shown = words(card)
        assert all(f"{rule(n)} " in shown for n in range(THRESHOLD, 300))  # 0 groups lost
        async with bot.app.db.sessions() as session:
            members = await session.scalar(
                select(func.count())
                .select_from(IncidentRow)
                .where(IncidentRow.storm_id.is_not(None))
            )
            alerts = await session.scalar(select(func.count()).select_from(AlertRow))
        assert (members, alerts) == (290, 300)
        updates = [
            c.at
            for c in emulator.calls_to("chat.update")
            if c.params["channel"] == card.channel and c.params["ts"] == card.ts
        ]
        # Not an update per group: the page and the announcement are shown at once (two
        # updates), and the groups that joined after the card was posted, every 2 s at most.
        posted = next(
            c.at for c in emulator.calls_to("chat.postMessage") if c.response.get("ts") == card.ts
        )
        joining = max(0.0, last_group - posted)
        assert len(updates) <= 2 + math.ceil(joining / 2.0) + 1, (updates, posted, last_group)


async def test_a_calm_storm_offers_its_open_groups_a_split_button(database_url: str) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, clock=clock) as bot,
    ):
        people(emulator)
        for n in range(THRESHOLD + 3):  # three groups fold: #12, #13, #14
            await bot.post_alerts(firing(n))
        await bot.post_alerts(resolved(THRESHOLD))  # #12's alert resolves
        await settle(bot, clock)
        assert "3 alert groups" in words(storm_card(emulator))
        assert calm_notes(emulator) == []

        await step(bot, clock, 121.0)  # two minutes with no new group: the storm has calmed
        await settle(bot, clock)
        notes = calm_notes(emulator)
        assert len(notes) == 1
        assert notes[0].text.startswith("The storm has calmed: no new alert group for 2m.")
        rows = [b for b in notes[0].blocks or [] if b["type"] == "actions"]
        assert [e["value"] for b in rows for e in b["elements"]] == ["13", "14"]  # still firing

        await press(bot, emulator, ids.SPLIT_GROUP, "13", ALICE, notes[0])

        async def split() -> bool:
            """Slack was answered before the split was made: wait for it, time moving on."""
            await step(bot, clock, 1.0)
            return any(rule(THRESHOLD + 1).lower() in name for name in channels(emulator))

        await eventually(split, what="the split group's own channel")
        await settle(bot, clock)
        assert "2 alert groups" in words(storm_card(emulator))


def calm_notes(emulator: SlackEmulator) -> list[Message]:
    storm = next(c for c in emulator.state.channels.values() if "storm" in c.name)
    return [
        m
        for m in emulator.state.channel_messages(storm.id)
        if (m.text or "").startswith("The storm has calmed")
    ]


async def test_a_group_that_fires_again_after_its_storm_resolved_gets_its_own_channel(
    database_url: str,
) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=settings_with(levels=[[ALICE]])) as bot,
    ):
        people(emulator)
        for n in range(THRESHOLD + 1):  # the eleventh (#12) folds into storm #11
            await bot.post_alerts(firing(n))
        await storm_says(bot.url, emulator, "1 alert group: 1 firing")
        card = storm_card(emulator)
        await press(bot, emulator, ids.RESOLVE, "11", ALICE, card)
        await storm_says(bot.url, emulator, "resolved")
        assert (await bot.app.services.incidents.get(12)).status is IncidentStatus.RESOLVED
        before = len(paged(emulator, ALICE))

        await bot.post_alerts(resolved(THRESHOLD))
        later = make_alert(rule(THRESHOLD), starts_at="2026-11-26T11:00:00Z", **labels(THRESHOLD))
        await bot.post_alerts(make_payload([later], group=rule(THRESHOLD)))
        await eventually(lambda: settled(bot.url), timeout=PACED_WORK, what="the Slack work done")
        assert any(rule(THRESHOLD).lower() in name for name in channels(emulator))
        group = await bot.app.services.incidents.get(12)
        assert (group.status, group.storm_id) == (IncidentStatus.TRIGGERED, None)
        assert len(paged(emulator, ALICE)) == before + 1
