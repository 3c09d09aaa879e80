"""A page reaches people three ways: invited to the channel, mentioned there, and a DM."""

from __future__ import annotations

from bot.config import Settings
from bot.policy_config import EscalationConfig, LevelConfig, PolicyConfig
from tests.builders import make_alert, make_payload
from tests.harness import eventually, running_bot, running_emulator


def with_policy(settings: Settings) -> None:
    settings.escalation = EscalationConfig(
        default="standard",
        policies=[
            PolicyConfig(
                name="standard",
                levels=[
                    LevelConfig(targets=["user:U0ALICE01", "usergroup:S0DBTEAM1"], timeout="5m"),
                    LevelConfig(targets=["U0CAROL01"], timeout="5m"),
                ],
            )
        ],
    )


async def test_first_level_is_invited_mentioned_and_messaged(database_url: str) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=with_policy) as bot,
    ):
        for user, name in (("U0ALICE01", "alice"), ("U0BOB0001", "bob"), ("U0CAROL01", "carol")):
            emulator.add_user(user, name)
        emulator.add_usergroup("S0DBTEAM1", "db-team", ["U0BOB0001"])
        await bot.post_alerts(make_payload([make_alert(service="api")]))

        def dms() -> dict[str, str]:
            return {
                c.params["users"]: c.response["channel"]["id"]
                for c in emulator.calls_to("conversations.open")
                if c.response.get("ok")
            }

        await eventually(lambda: len(dms()) == 2, what="two DMs opened")
        channel = next(c for c in emulator.state.channels.values() if c.name.startswith("inc-"))
        assert {"U0ALICE01", "U0BOB0001"} <= set(channel.members)
        assert "U0CAROL01" not in channel.members
        mention = [
            m.text
            for m in emulator.state.messages
            if m.channel == channel.id and "Paging level 1" in (m.text or "")
        ]
        assert mention and "<@U0ALICE01>" in mention[0] and "<@U0BOB0001>" in mention[0]
        for dm in dms().values():
            await eventually(
                lambda dm=dm: any(m.channel == dm and m.blocks for m in emulator.state.messages),
                what="the card in a DM",
            )
        assert "U0CAROL01" not in dms()
