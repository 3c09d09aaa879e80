"""Socket Mode end to end: with SLACK_APP_TOKEN, Tocsin opens a socket through the
emulator's apps.connections.open; a slash command and a card button arrive over it (nothing
over HTTP), are acknowledged there, and the card changes."""

from __future__ import annotations

import json

from bot.slack import ids
from tests.harness import eventually, running_bot, running_emulator

ALICE = "U0ALICE01"
NOWHERE = "http://127.0.0.1:9/slack/events"  # with a socket open, Slack sends nothing by HTTP


async def test_a_command_and_a_card_button_over_the_socket(database_url: str) -> None:
    async with running_emulator() as (emulator, url):
        emulator.add_user(ALICE, "alice")
        general = emulator.add_channel("general", members=[ALICE])
        async with running_bot(
            database_url, emulator, url, SLACK_APP_TOKEN=emulator.app_token
        ) as bot:
            await eventually(lambda: len(emulator.sockets.connections) == 1, what="the socket")
            reply = await emulator.send_slash_command(
                NOWHERE,
                ids.INCIDENT_COMMAND,
                "declare Socket & test sev2",
                user_id=ALICE,
                channel_id=general,
            )
            assert reply.status == 200 and not reply.timed_out

            def said() -> list[str]:
                return [str(p.body.get("text")) for p in emulator.state.response_posts]

            await eventually(lambda: any("Declared incident #1" in t for t in said()), what="reply")
            incident = await bot.app.services.incidents.get(1)
            assert incident.title == "Socket & test"

            async def carded() -> bool:
                nonlocal incident
                incident = await bot.app.services.incidents.get(1)
                return incident.card_ts is not None

            await eventually(carded, what="the card")
            assert incident.channel_id is not None and incident.card_ts is not None
            click = await emulator.send_block_action(
                NOWHERE,
                action_id=ids.ACKNOWLEDGE,
                value="1",
                user_id=ALICE,
                channel_id=incident.channel_id,
                message_ts=incident.card_ts,
                block_id=ids.CARD_BLOCK_ID,
            )
            assert click.status == 200 and not click.timed_out

            def acknowledged() -> bool:
                card = emulator.state.message(str(incident.channel_id), str(incident.card_ts))
                return card is not None and "acknowledged" in json.dumps(card.blocks)

            await eventually(acknowledged, what="the card to say acknowledged")
        kinds = [e["type"] for e in emulator.sockets.envelopes]
        assert kinds == ["slash_commands", "interactive"]
