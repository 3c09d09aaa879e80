"""The card's pace: the changes of a busy alert group are shown together, by one update of the
card once they settle (`outbox.card_settle`), so that one noisy group cannot spend Slack's
chat.update budget that every card shares; a change of state is shown at once, with every
change of alerts made before it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.clock import FakeClock
from bot.config import Settings
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from tests.builders import make_alert, make_payload
from tests.harness import eventually, running_bot, running_emulator, step
from tests.slack.test_card_truth import ALICE, card, opened, people, press, words


def settle_for(seconds: float) -> Callable[[Settings], None]:
    def tweak(settings: Settings) -> None:
        settings.outbox.card_settle = timedelta(seconds=seconds)

    return tweak


def card_updates(emulator: SlackEmulator, ts: str) -> int:
    return sum(1 for c in emulator.calls_to("chat.update") if c.params["ts"] == ts)


async def test_a_burst_of_alert_changes_is_one_card_update_once_it_settles(
    database_url: str,
) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=settle_for(2), clock=clock) as bot,
    ):
        people(emulator)
        await bot.post_alerts(make_payload([make_alert(service="api", instance="host-00")]))
        await opened(bot, emulator, clock)
        shown = card(emulator)
        assert "1 firing, 0 resolved" in words(shown)
        before = card_updates(emulator, shown.ts)

        for n in range(1, 21):
            alert = make_alert(service="api", instance=f"host-{n:02d}")
            await bot.post_alerts(make_payload([alert]))
        await step(bot, clock, 1.0)  # the worker has looked, a second on: not settled yet
        assert "1 firing, 0 resolved" in words(card(emulator))
        assert card_updates(emulator, shown.ts) == before

        await step(bot, clock, 1.5)
        assert "21 firing, 0 resolved" in words(card(emulator))
        assert card_updates(emulator, shown.ts) == before + 1


async def test_a_click_shows_at_once_with_the_alert_changes_made_before_it(
    database_url: str,
) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=settle_for(60), clock=clock) as bot,
    ):
        people(emulator)
        await bot.post_alerts(make_payload([make_alert(service="api", instance="host-00")]))
        await opened(bot, emulator, clock)
        await bot.post_alerts(make_payload([make_alert(service="api", instance="host-01")]))
        await step(bot, clock, 0.0)
        assert "1 firing, 0 resolved" in words(card(emulator))

        # The clock stays where it is: the update of the card that waited to settle is
        # brought forward by the change of state.
        shown = card(emulator)
        await press(bot, emulator, ids.ACKNOWLEDGE, "1", ALICE, shown)
        await eventually(
            lambda: "acknowledged by" in words(card(emulator)), what="the card to say acknowledged"
        )
        assert "2 firing, 0 resolved" in words(card(emulator))
