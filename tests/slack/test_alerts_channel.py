"""`alerts_channel: "#name"` is looked up once at start: announcements (and the join that
comes first when the bot is not in the channel yet) use the channel's ID, which Slack's
methods other than chat.postMessage require; a name that matches no channel stops the start."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.errors import ConfigError
from tests.builders import make_alert, make_payload
from tests.harness import eventually, running_bot, running_emulator

PERSON = "U0OPS00001"


def named(name: str):  # type: ignore[no-untyped-def]
    def tweak(settings: Settings) -> None:
        settings.alerts_channel = name

    return tweak


async def test_a_channel_name_is_resolved_and_the_bot_joins_by_id(database_url: str) -> None:
    async with running_emulator() as (emulator, url):
        emulator.add_user(PERSON, "ops")
        ops = emulator.add_channel("ops-alerts", members=[PERSON])  # the bot is not in it
        async with running_bot(database_url, emulator, url, tweak=named("#ops-alerts")) as bot:
            assert bot.app.services.alerts_channel == ops
            await bot.post_alerts(make_payload([make_alert(service="api")]))

            def announced() -> bool:
                return any("<#C" in m.text for m in emulator.state.channel_messages(ops))

            await eventually(announced, what="the announcement in #ops-alerts")
        assert emulator.state.channels[ops].members == [PERSON, emulator.bot_user_id]
        joins = emulator.calls_to("conversations.join")
        assert [c.params["channel"] for c in joins] == [ops]
        assert all(c.response["ok"] for c in joins)


@pytest.mark.parametrize("name", ["#no-such-channel", "no-such-channel"])
async def test_a_name_that_matches_no_channel_stops_the_start(database_url: str, name: str) -> None:
    async with running_emulator() as (emulator, url):
        with pytest.raises(ConfigError, match="no-such-channel: no channel of that name"):
            async with running_bot(database_url, emulator, url, tweak=named(name)):
                pass
