"""Diagnostic results that are ready together reach the incident channel as one message.

Slack takes about one message per second per channel, so a playbook's results, one message
each, would trickle in a second apart. What the channel shows is asserted from the emulator:
which chat.postMessage calls carried which results, in what order, below the card, within
Block Kit's limits, and never twice, not even after a crash in the middle of a post.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path

from bot.clock import FakeClock
from bot.domain.diagnostics import DiagnosticResult, Status, Table
from bot.slack import ids
from bot.slack.emulator import RecordedCall, SlackEmulator
from bot.store import schema
from tests.end_to_end.test_diagnostics_e2e import Posted, alert_payload, diagnostic_messages
from tests.harness import (
    RunningBot,
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

# The shipped HighErrorRate playbook, with no source configured: three instant error results.
PLAYBOOK_TITLES = [
    "5xx ratio by service",
    "p95 latency (service api)",
    "Top unresolved Sentry issues",
]
# 1x1 transparent PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def diagnostic_posts(emulator: SlackEmulator, channel: str) -> list[RecordedCall]:
    """The chat.postMessage calls that put diagnostic results into `channel`."""
    return [
        c
        for c in emulator.calls_to("chat.postMessage")
        if c.params.get("channel") == channel
        and c.response.get("ok")
        and (c.params.get("metadata") or {}).get("event_type") == ids.DIAGNOSTICS_METADATA_EVENT
    ]


def results_of(emulator: SlackEmulator, call: RecordedCall) -> list[Posted]:
    """The results shown by the message one call made."""
    ts = call.response["ts"]
    return [p for p in diagnostic_messages(emulator, call.params["channel"]) if p.message.ts == ts]


async def opened(bot: RunningBot, incident_id: int = 1) -> tuple[str, str]:
    """The incident's channel and card ts, once the card is posted."""

    async def card() -> bool:
        return (await bot.app.services.incidents.get(incident_id)).card_ts is not None

    await eventually(card, timeout=20, what="the incident's card")
    incident = await bot.app.services.incidents.get(incident_id)
    assert incident.channel_id is not None and incident.card_ts is not None
    return incident.channel_id, incident.card_ts


def card_call(emulator: SlackEmulator, channel: str, card_ts: str) -> RecordedCall:
    return next(
        c
        for c in emulator.calls_to("chat.postMessage")
        if c.params.get("channel") == channel and c.response.get("ts") == card_ts
    )


async def test_results_ready_together_are_one_message_below_the_card(database_url: str) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as bot,
    ):
        status, _ = await bot.post_alerts(alert_payload())
        assert status == 200
        channel, card_ts = await opened(bot)
        await eventually(
            lambda: len(diagnostic_messages(emulator, channel)) >= 3,
            timeout=20,
            what="three diagnostic results",
        )
        await eventually(bot.app.worker.store.depth_is_zero, timeout=20, what="empty outbox")

        (post,) = diagnostic_posts(emulator, channel)
        shown = results_of(emulator, post)
        assert [p.title for p in shown] == PLAYBOOK_TITLES  # the playbook's order
        assert [p.status for p in shown] == ["error"] * 3
        assert len(diagnostic_messages(emulator, channel)) == 3  # nothing posted twice
        # Below the card: posted after it, and later in the channel.
        assert post.at > card_call(emulator, channel, card_ts).at
        assert float(post.response["ts"]) > float(card_ts)
        # The notification text names every result.
        for title in PLAYBOOK_TITLES:
            assert title in post.params["text"]

        events = [e for e in await bot.app.services.incidents.timeline(1) if e.kind == "diagnostic"]
        assert sorted(e.text.split(": error")[0] for e in events) == sorted(PLAYBOOK_TITLES)


async def test_a_result_arriving_mid_slot_joins_the_others_at_the_slot(database_url: str) -> None:
    clock = FakeClock(datetime.now(UTC))  # Slack's pace (a post a second) is paced by it too
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, clock=clock) as bot,
    ):
        status, _ = await bot.post_alerts(alert_payload())
        assert status == 200
        channel, _card_ts = await opened(bot)

        async def results_queued() -> bool:
            events = await bot.app.services.incidents.timeline(1)
            return len([e for e in events if e.kind == "diagnostic"]) == 3

        await eventually(results_queued, what="the playbook's three results queued")
        # The card took the channel's slot: the three results wait for the next, a second on.
        await step(bot, clock, 0)
        assert diagnostic_posts(emulator, channel) == []
        # Half-way through that second a fourth comes (someone ran /diag, say).
        await step(bot, clock, 0.5)
        assert diagnostic_posts(emulator, channel) == []
        late = DiagnosticResult("Late check", Status.OK, "fine", source="prometheus")
        await bot.app.services.diagnostics.publish_all(1, [late])
        await step(bot, clock, 0)
        assert diagnostic_posts(emulator, channel) == []

        # At the slot, and with no more time passing, one message with all four.
        await step(bot, clock, 0.5)
        (post,) = diagnostic_posts(emulator, channel)
        # Which was queued first depends on the machine's speed.
        titles = [p.title for p in results_of(emulator, post)]
        assert sorted(titles) == sorted([*PLAYBOOK_TITLES, "Late check"])
        assert len(diagnostic_messages(emulator, channel)) == 4


def big_result(number: int, *, png: bytes | None = None) -> DiagnosticResult:
    """A result with a long text and a wide table: three blocks, two near the 3000 limit."""
    rows = tuple((f"series-{number}-{r}-" + "x" * 60, f"{r}.5") for r in range(30))
    return DiagnosticResult(
        title=f"Check {number:02d}",
        status=Status.WARN,
        text="over the line " * 300,
        table=Table(("series", "value"), rows),
        image_png=png,
        source="prometheus",
    )


async def test_more_results_than_one_message_holds_go_in_several(database_url: str) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as bot,
    ):
        status, _ = await bot.post_alerts(alert_payload())
        assert status == 200
        channel, _card = await opened(bot)
        await eventually(lambda: len(diagnostic_messages(emulator, channel)) >= 3, timeout=20)
        before = len(diagnostic_posts(emulator, channel))

        results = [big_result(n, png=PNG if n == 3 else None) for n in range(1, 21)]
        await bot.app.services.diagnostics.publish_all(1, results)
        await eventually(
            lambda: len(diagnostic_messages(emulator, channel)) >= 3 + 20,
            timeout=20,
            what="twenty more results",
        )
        await eventually(bot.app.worker.store.depth_is_zero, timeout=20, what="empty outbox")

        posts = diagnostic_posts(emulator, channel)[before:]
        # 20 results of 3 blocks are 60 blocks: 16 results (48 blocks), then the other 4.
        assert [len(results_of(emulator, p)) for p in posts] == [16, 4]
        for post in posts:
            blocks = post.params["blocks"]
            assert len(blocks) <= 50
            for block in blocks:
                if block["type"] == "section":
                    assert len(block["text"]["text"]) <= 3000
            assert len(post.params["text"]) <= 3000
        titles = [p.title for post in posts for p in results_of(emulator, post)]
        assert titles == [r.title for r in results]  # each once, oldest first
        # Slack's pace: the second message waits for the channel's next slot.
        assert posts[1].at - posts[0].at >= 0.9

        # The graph follows the message that says "graph below", once.
        uploads = [
            c
            for c in emulator.calls_to("files.completeUploadExternal")
            if c.params.get("channel_id") == channel and c.response.get("ok")
        ]
        assert len(uploads) == 1
        assert uploads[0].at > posts[0].at
        (third,) = [p for p in results_of(emulator, posts[0]) if p.title == "Check 03"]
        assert "graph below" in third.everything


async def test_a_post_cut_off_by_a_crash_is_not_posted_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    await asyncio.to_thread(schema.upgrade, url)
    latency = {"chat.postMessage": 2.0}
    async with running_emulator(latency=latency) as (emulator, emulator_url):
        env = bot_env(url, emulator_url)
        port = free_port()
        first = ServeProcess(env, port, tmp_path / "first.log")
        await first.start()
        try:
            code, _ = await post_webhook(first.url, alert_payload())
            assert code == 200
            await eventually(
                lambda: len(emulator.calls_to("pins.add")) == 1, timeout=30, what="card pinned"
            )
            # The card is in; the next post is the results', and it is on its way.
            await eventually(
                lambda: emulator.in_flight("chat.postMessage") > 0,
                timeout=10,
                what="the results' chat.postMessage in flight",
            )
        finally:
            first.kill()
        # Slack completes the post the dead process never heard of.
        await eventually(
            lambda: emulator.in_flight("chat.postMessage") == 0,
            timeout=30,
            what="the cut-off chat.postMessage completed by Slack",
        )
        channel = next(c.id for c in emulator.state.channels.values() if c.name.startswith("inc-"))
        assert len(diagnostic_messages(emulator, channel)) == 3

        second = ServeProcess(env, port, tmp_path / "second.log")
        await second.start()
        try:
            await eventually(lambda: settled(second.url), timeout=30, what="outbox drained")
        finally:
            second.stop()
        posts = diagnostic_posts(emulator, channel)
        assert len(posts) == 1, [results_of(emulator, p) for p in posts]
        assert sorted(p.title for p in diagnostic_messages(emulator, channel)) == sorted(
            PLAYBOOK_TITLES
        )
        # The second process looked before it would have posted.
        history = emulator.calls_to("conversations.history")
        assert any(c.params.get("channel") == channel for c in history)
