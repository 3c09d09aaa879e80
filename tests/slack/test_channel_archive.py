"""A resolved incident's channel is archived `archive_after` later, its closing summary the last
thing said in it; a reopening keeps it open; `off` keeps every channel open; a retry neither
says the last word twice nor archives twice; the timeline keeps everything."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from bot.clock import FakeClock
from bot.config import Settings
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from bot.slack.emulator.state import Message
from tests.builders import make_alert, make_payload
from tests.harness import RunningBot, eventually, running_bot, running_emulator, step
from tests.slack.test_card_truth import (
    ALICE,
    BOB,
    buttons,
    card,
    click,
    dm_card,
    incident_channel,
    people,
    settings_with,
    settle,
)

DAY = 24 * 3600.0
SUMMARY = ":card_file_box: Closing this channel"


def archive_after(value: str, *, auto_resolve: bool = False) -> Callable[[Settings], None]:
    def tweak(settings: Settings) -> None:
        settings.archive_after = Settings(archive_after=value).archive_after
        settings.auto_resolve = auto_resolve

    return tweak


def archived(emulator: SlackEmulator) -> bool:
    return emulator.state.channels[incident_channel(emulator)].is_archived


def said(emulator: SlackEmulator) -> list[Message]:
    """What was posted in the incident channel (not Slack's own notices), oldest first."""
    return [m for m in emulator.state.channel_messages(incident_channel(emulator)) if not m.subtype]


def card_severity(emulator: SlackEmulator) -> str:
    """The severity as the incident channel's topic says it (sev2)."""
    return emulator.state.channels[incident_channel(emulator)].topic.split(" ")[0].lower()


def summaries(emulator: SlackEmulator) -> list[str]:
    return [m.text for m in said(emulator) if m.text.startswith(SUMMARY)]


@asynccontextmanager
async def archiving(
    database_url: str, tweak: Callable[[Settings], None]
) -> AsyncIterator[tuple[RunningBot, SlackEmulator, FakeClock]]:
    """A bot on a fake clock, its settings tweaked, against the emulator."""
    clock = FakeClock(datetime.now(UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=tweak, clock=clock) as bot,
    ):
        yield bot, emulator, clock


async def wait_past(bot: RunningBot, clock: FakeClock, seconds: float) -> None:
    """Move time on past a deadline and let everything that became due reach Slack."""
    await step(bot, clock, seconds)
    await settle(bot, clock)


async def open_incident(bot: RunningBot, emulator: SlackEmulator, clock: FakeClock) -> None:
    people(emulator)
    await bot.post_alerts(make_payload([make_alert(service="api")]))
    await settle(bot, clock)


async def timeline(bot: RunningBot) -> list[str]:
    return [e.text for e in await bot.app.services.incidents.timeline(1)]


async def test_a_resolved_incident_s_channel_is_archived_after_its_closing_summary(
    database_url: str,
) -> None:
    async with archiving(database_url, archive_after("2d")) as (bot, emulator, clock):
        await open_incident(bot, emulator, clock)
        await step(bot, clock, 30 * 60)
        await click(bot, emulator, ids.RESOLVE, BOB, card(emulator), clock)
        await wait_past(bot, clock, 2 * DAY - 60)
        assert not archived(emulator)  # a minute before its time

        await wait_past(bot, clock, 120)
        await eventually(lambda: archived(emulator), what="the channel archived")
        last = said(emulator)[-1]
        assert last.text.startswith(SUMMARY)
        assert "incident #1 is resolved" in last.text
        assert f"*[{card_severity(emulator).upper()}] HighErrorRate*" in last.text
        assert f"Resolved by <@{BOB}> " in last.text and ", after 30m." in last.text
        assert "The timeline keeps all " in last.text
        notice = emulator.state.channel_messages(incident_channel(emulator))[-1]
        assert notice.subtype == "channel_archive"  # Slack's own line, after the summary
        assert summaries(emulator) == [last.text]
        assert (await timeline(bot))[-1] == "Channel archived"
        assert not emulator.state.channel("alerts").is_archived  # type: ignore[union-attr]


async def test_lost_answers_neither_repeat_the_summary_nor_the_archive(
    database_url: str,
) -> None:
    tweak = archive_after("1h", auto_resolve=True)
    async with archiving(database_url, tweak) as (bot, emulator, clock):
        await open_incident(bot, emulator, clock)
        resolved = make_alert(service="api", status="resolved", ends_at="2026-11-26T10:30:00Z")
        await bot.post_alerts(make_payload([resolved], status="resolved"))  # resolves it
        await settle(bot, clock)
        # Both calls are made, and both answers are lost on their way back.
        emulator.lose_answers("chat.postMessage")
        emulator.lose_answers("conversations.archive")
        await wait_past(bot, clock, 3600 + 60)
        for _ in range(10):  # the retries wait out their backoff
            if archived(emulator) and "Channel archived" in await timeline(bot):
                break
            await wait_past(bot, clock, 60)
        assert archived(emulator)
        assert len(summaries(emulator)) == 1
        assert summaries(emulator)[0] == said(emulator)[-1].text
        assert "Resolved by tocsin " in summaries(emulator)[0]
        posts = [
            c
            for c in emulator.calls_to("chat.postMessage")
            if str(c.params.get("text", "")).startswith(SUMMARY)
        ]
        assert [p.status for p in posts] == [503]  # made once; its answer lost, then found
        assert [c.status for c in emulator.calls_to("conversations.archive")] == [503, 200]
        assert emulator.calls_to("conversations.archive")[1].response["error"] == (
            "already_archived"
        )
        assert (await timeline(bot)).count("Channel archived") == 1


async def test_reopened_before_its_time_the_channel_stays_open_until_the_next_resolve(
    database_url: str,
) -> None:
    async with archiving(database_url, archive_after("1d")) as (bot, emulator, clock):
        await open_incident(bot, emulator, clock)
        await click(bot, emulator, ids.RESOLVE, BOB, card(emulator), clock)
        await step(bot, clock, 3600)
        await click(bot, emulator, ids.REOPEN, BOB, card(emulator), clock)
        await step(bot, clock, 3600)
        await click(bot, emulator, ids.RESOLVE, BOB, card(emulator), clock)
        # The first resolve's day is over; the incident is resolved, but by a later resolve.
        await wait_past(bot, clock, DAY - 2 * 3600 + 60)
        assert not archived(emulator)
        assert summaries(emulator) == []

        await wait_past(bot, clock, 2 * 3600)
        await eventually(lambda: archived(emulator), what="the channel archived")
        assert len(summaries(emulator)) == 1
        assert "Reopened by" not in summaries(emulator)[0]  # the count says it
        assert "1 reopening" in summaries(emulator)[0]


async def test_reopened_and_left_open_the_channel_is_never_archived(database_url: str) -> None:
    async with archiving(database_url, archive_after("1d")) as (bot, emulator, clock):
        await open_incident(bot, emulator, clock)
        await click(bot, emulator, ids.RESOLVE, BOB, card(emulator), clock)
        await click(bot, emulator, ids.REOPEN, BOB, card(emulator), clock)
        await wait_past(bot, clock, 3 * DAY)
        assert not archived(emulator)
        assert summaries(emulator) == []
        assert "Channel archived" not in await timeline(bot)


async def test_off_keeps_resolved_channels_open(database_url: str) -> None:
    async with archiving(database_url, archive_after("off")) as (bot, emulator, clock):
        await open_incident(bot, emulator, clock)
        await click(bot, emulator, ids.RESOLVE, BOB, card(emulator), clock)
        await wait_past(bot, clock, timedelta(days=60).total_seconds())
        assert not archived(emulator)
        assert summaries(emulator) == []
        assert emulator.calls_to("conversations.archive") == []


async def test_a_workspace_that_forbids_archiving_is_told_once_and_the_summary_stays(
    database_url: str,
) -> None:
    async with archiving(database_url, archive_after("1h")) as (bot, emulator, clock):
        await open_incident(bot, emulator, clock)
        await click(bot, emulator, ids.RESOLVE, BOB, card(emulator), clock)
        emulator.restrict_archiving()
        await wait_past(bot, clock, 3600 + 60)
        assert not archived(emulator)
        assert len(summaries(emulator)) == 1
        alerts = emulator.state.channel("alerts")
        assert alerts is not None
        notices = [
            m.text
            for m in emulator.state.channel_messages(alerts.id)
            if "could not archive" in m.text
        ]
        assert notices == [
            ":warning: Tocsin could not archive the incident's channel for incident #1 "
            f"([{card_severity(emulator)}] HighErrorRate) in <#{incident_channel(emulator)}>: "
            "conversations.archive: restricted_action"
        ]
        assert "conversations.archive: restricted_action" in await timeline(bot)


async def test_an_archived_incident_is_not_reopened_from_a_dm_and_the_clicker_is_told(
    database_url: str,
) -> None:
    archive, paging = archive_after("1d"), settings_with(levels=[[ALICE]])

    def tweak(settings: Settings) -> None:
        archive(settings)
        paging(settings)

    async with archiving(database_url, tweak) as (bot, emulator, clock):
        await open_incident(bot, emulator, clock)
        dm = dm_card(emulator, ALICE)
        assert dm is not None
        await click(bot, emulator, ids.RESOLVE, ALICE, dm, clock)
        await wait_past(bot, clock, DAY + 60)
        await eventually(lambda: archived(emulator), what="the channel archived")
        dm = dm_card(emulator, ALICE)
        assert dm is not None and ids.REOPEN in buttons(dm)

        reply = await emulator.send_block_action(
            f"{bot.url}/slack/events",
            action_id=ids.REOPEN,
            value="1",
            user_id=ALICE,
            channel_id=dm.channel,
            message_ts=dm.ts,
        )
        assert reply.status == 200
        told = (
            "Incident #1's channel is archived, so it stays resolved. If it is happening "
            "again, declare a new incident: `/incident declare`."
        )

        def answers() -> list[str]:
            return [m.text for m in emulator.state.messages if m.ephemeral_to == ALICE]

        await eventually(lambda: any(told in a for a in answers()), what="Alice told why")
        assert (await bot.app.services.incidents.get(1)).status.value == "resolved"
        assert (await timeline(bot))[-1] == "Channel archived"
