"""A reused alert group key (prometheus/alertmanager#3959): alerts with new fingerprints that
join an incident somebody acknowledged are told in its channel and to the acknowledger, once;
past the reopen window, a key that fires again opens a new incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.clock import FakeClock
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from tests.builders import make_alert, make_payload
from tests.harness import eventually, running_bot, running_emulator, settled, step
from tests.slack.test_card_truth import (
    ALICE,
    card,
    click,
    incident_channel,
    opened,
    people,
    settings_with,
    settle,
)

JOINED = ":rotating_light: 1 new alert joined this acknowledged incident"


def notes(emulator: SlackEmulator, says: str) -> list[str]:
    channel = incident_channel(emulator)
    return [m.text for m in emulator.state.channel_messages(channel) if says in (m.text or "")]


def dms_to(emulator: SlackEmulator, user: str, says: str) -> list[str]:
    dms = {c.id for c in emulator.state.channels.values() if c.is_im and c.im_user == user}
    return [m.text for m in emulator.state.messages if m.channel in dms and says in (m.text or "")]


async def test_new_alerts_in_an_acknowledged_incident_tell_the_channel_and_the_acknowledger(
    database_url: str,
) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=settings_with(levels=[[ALICE]])) as bot,
    ):
        people(emulator)
        first = make_alert(service="api", instance="a")
        await bot.post_alerts(make_payload([first]))
        await opened(bot, emulator)
        await click(bot, emulator, ids.ACKNOWLEDGE, ALICE, card(emulator))
        assert notes(emulator, "new alert") == []

        joined = make_payload([first, make_alert(service="api", instance="b")])
        await bot.post_alerts(joined)
        await eventually(lambda: settled(bot.url), what="the Slack work done")
        assert notes(emulator, JOINED) == [
            f"{JOINED} (HighErrorRate): <@{ALICE}> please take a look."
        ]
        assert len(dms_to(emulator, ALICE, "You are paged (new alerts)")) == 1

        # Alertmanager sends the group again (its repeat interval): nothing new, nothing told.
        await bot.post_alerts(joined)
        await bot.post_alerts(make_payload([make_alert(service="api", instance="b"), first]))
        await eventually(lambda: settled(bot.url), what="the Slack work done")
        assert len(notes(emulator, JOINED)) == 1
        assert len(dms_to(emulator, ALICE, "You are paged (new alerts)")) == 1


async def test_a_key_that_fires_again_after_the_reopen_window_opens_a_new_incident(
    database_url: str,
) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, clock=clock) as bot,
    ):
        people(emulator)
        alert = make_alert(service="api")
        await bot.post_alerts(make_payload([alert]))
        await opened(bot, emulator, clock)
        ended = make_alert(service="api", status="resolved", ends_at="2026-11-26T10:30:00Z")
        await bot.post_alerts(make_payload([ended], status="resolved"))  # resolves it (playbook)
        await settle(bot, clock)
        assert (await bot.app.services.incidents.get(1)).status.value == "resolved"
        await step(bot, clock, timedelta(minutes=31).total_seconds())  # past reopen_window
        again = make_alert(service="api", starts_at="2026-11-26T11:00:00Z")
        await bot.post_alerts(make_payload([again]))
        await settle(bot, clock)
        channels = [c.name for c in emulator.state.channels.values() if c.name.startswith("inc-")]
        assert len(channels) == 2
        assert (await bot.app.services.incidents.get(2)).status.value == "triggered"
        assert (await bot.app.services.incidents.get(1)).status.value == "resolved"
