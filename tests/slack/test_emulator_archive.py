"""conversations.archive in the emulator answers as Slack documents it (semantics.md): ok, then
`already_archived`; `cant_archive_general`, `method_not_supported_for_channel_type` for a DM,
`not_in_channel`, `restricted_action`, `channel_not_found`; an archived channel says who
archived it and refuses posts with `is_archived`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.emulator import SlackEmulator

HUMAN = "U0HUMAN0001"


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(signing_secret="bot-secret")
    await emu.start()
    emu.add_user(HUMAN, "alice")
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
def client(emulator: SlackEmulator) -> AsyncWebClient:
    assert emulator.base_url is not None
    return AsyncWebClient(token=emulator.bot_token, base_url=emulator.base_url, retry_handlers=[])


async def error_of(client: AsyncWebClient, channel: str) -> str:
    with pytest.raises(SlackApiError) as info:
        await client.conversations_archive(channel=channel)
    return str(info.value.response["error"])


async def test_archive_answers_ok_then_already_archived(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    channel = (await client.conversations_create(name="inc-1"))["channel"]["id"]
    answer = await client.conversations_archive(channel=channel)
    assert answer.data == {"ok": True}
    assert await error_of(client, channel) == "already_archived"
    info = await client.conversations_info(channel=channel)
    assert info["channel"]["is_archived"] is True
    history = await client.conversations_history(channel=channel)
    newest = history["messages"][0]
    assert newest["subtype"] == "channel_archive"
    assert newest["text"] == f"<@{emulator.state.bot_user_id}> archived the channel"
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel=channel, text="too late")
    assert refused.value.response["error"] == "is_archived"


async def test_archive_refusals(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    bot = emulator.state.bot_user_id
    general = emulator.add_channel("general", members=[HUMAN, bot], is_general=True)
    dm = (await client.conversations_open(users=HUMAN))["channel"]["id"]
    elsewhere = emulator.add_channel("team-chat", members=[HUMAN])
    assert await error_of(client, general) == "cant_archive_general"
    assert await error_of(client, dm) == "method_not_supported_for_channel_type"
    assert await error_of(client, elsewhere) == "not_in_channel"
    assert await error_of(client, "C0MISSING00") == "channel_not_found"
    assert await error_of(client, "#team-chat") == "channel_not_found"  # an ID, not a name

    restricted = (await client.conversations_create(name="inc-2"))["channel"]["id"]
    emulator.restrict_archiving()
    assert await error_of(client, restricted) == "restricted_action"
    assert emulator.state.channels[restricted].is_archived is False
