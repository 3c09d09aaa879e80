"""`/oncall test`: a test notification through each of the caller's contact methods, and what
came of each, without the URL's secrets."""

from __future__ import annotations

from bot.config import Settings
from bot.config.people import PersonConfig
from bot.slack import ids
from tests.commands.conftest import ALICE, BOB, Launch
from tests.notify.test_contact_rules import TOKEN, titles, webhook_server


async def test_oncall_test_sends_through_each_method_and_says_which_failed(
    launch: Launch,
) -> None:
    async with (
        webhook_server() as (pushes, push_url),
        webhook_server(status=401) as (refused, refused_url),
    ):

        def tweak(settings: Settings) -> None:
            settings.people = {
                ALICE: PersonConfig.model_validate(
                    {"contacts": {"push": push_url, "pager": refused_url}}
                )
            }

        ws = await launch(tweak)
        reply = await ws.command("test", user=ALICE, command=ids.ONCALL_COMMAND)
        lines = str(reply["text"]).splitlines()
        assert lines[1] == "• *slack* (Slack): sent (you are reading it)"
        assert lines[2] == "• *push* (json): sent"
        assert lines[3].startswith("• *pager* (json): FAILED: ") and "401" in lines[3]
        assert TOKEN not in reply["text"]
        assert titles(pushes) == ["Tocsin test notification"]
        assert len(refused) == 1

        nobody = await ws.command("test", user=BOB, command=ids.ONCALL_COMMAND)
        assert "You have no contact method beyond Slack: add yours under `people:`." in str(
            nobody["text"]
        )
