"""A page reaches people three ways: invited to the channel, mentioned there, and a DM; one
person who cannot be reached does not keep the others from being paged, and is named."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from bot.config import Settings
from bot.config.policies import EscalationConfig, LevelConfig, PolicyConfig
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from tests.builders import make_alert, make_payload, with_tokens
from tests.harness import RunningBot, eventually, running_bot, running_emulator

ALICE, BOB, CAROL, DANA = "U0ALICE01", "U0BOB0001", "U0CAROL01", "U0DANA001"
GONE = "U0GONE001"  # never in this workspace (a typo, or a person removed long ago)


def policy(*levels: list[str], timeout: str = "5m") -> Callable[[Settings], None]:
    def tweak(settings: Settings) -> None:
        settings.escalation = EscalationConfig(
            default="standard",
            policies=[
                PolicyConfig(
                    name="standard",
                    levels=[LevelConfig(targets=t, timeout=timeout) for t in levels],
                )
            ],
        )

    return tweak


def people(emulator: SlackEmulator) -> None:
    for user, name in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (DANA, "dana")):
        emulator.add_user(user, name)
    emulator.add_usergroup("S0DBTEAM1", "db-team", [BOB])


def incident_channel(emulator: SlackEmulator):  # type: ignore[no-untyped-def]
    return next(c for c in emulator.state.channels.values() if c.name.startswith("inc-"))


def channel_texts(emulator: SlackEmulator, channel_id: str) -> list[str]:
    return [m.text or "" for m in emulator.state.messages if m.channel == channel_id]


def dm_cards(emulator: SlackEmulator, user: str) -> list[str]:
    """The DMs the person received from the bot (card messages)."""
    dms = {c.id for c in emulator.state.channels.values() if c.is_im and c.im_user == user}
    return [m.text or "" for m in emulator.state.messages if m.channel in dms and m.blocks]


async def paging_line(emulator: SlackEmulator, needle: str) -> str:
    """Wait for a message in the incident channel containing `needle`; return it."""
    found: list[str] = []

    def seen() -> bool:
        if not any(c.name.startswith("inc-") for c in emulator.state.channels.values()):
            return False
        texts = channel_texts(emulator, incident_channel(emulator).id)
        found[:] = [t for t in texts if needle in t]
        return bool(found)

    await eventually(seen, what=f"a message with {needle!r}")
    return found[0]


@asynccontextmanager
async def dana_left(
    database_url: str, tweak: Callable[[Settings], None]
) -> AsyncIterator[tuple[SlackEmulator, RunningBot]]:
    """A bot with `tweak`'s policy, Dana's account deactivated, and an alert that pages."""
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=tweak) as bot,
    ):
        people(emulator)
        emulator.deactivate_user(DANA)
        await bot.post_alerts(make_payload([make_alert(service="api")]))
        yield emulator, bot


async def timeline_texts(bot: RunningBot) -> list[str]:
    incident = (await bot.app.services.incidents.open_incidents())[0]
    return [with_tokens(e.rich) for e in await bot.app.services.incidents.timeline(incident.id)]


async def test_first_level_is_invited_mentioned_and_messaged(database_url: str) -> None:
    tweak = policy([f"user:{ALICE}", "usergroup:S0DBTEAM1"], [CAROL])
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=tweak) as bot,
    ):
        people(emulator)
        await bot.post_alerts(make_payload([make_alert(service="api")]))
        mention = await paging_line(emulator, "Paging level 1")
        assert f"<@{ALICE}>" in mention and f"<@{BOB}>" in mention
        assert "could not" not in mention
        await eventually(
            lambda: len(dm_cards(emulator, ALICE)) == 1 and len(dm_cards(emulator, BOB)) == 1,
            what="the card in Alice's and Bob's DMs",
        )
        channel = incident_channel(emulator)
        assert {ALICE, BOB} <= set(channel.members)
        assert CAROL not in channel.members
        assert dm_cards(emulator, CAROL) == []


async def test_a_level_mixing_members_and_new_people_invites_the_new_ones(
    database_url: str,
) -> None:
    # Alice is in the channel from level 1 when level 2 (Alice and Carol) is paged: without
    # `force`, Slack's all-or-nothing invite would keep Carol out because Alice is a member.
    tweak = policy([ALICE], [ALICE, CAROL])
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=tweak) as bot,
    ):
        people(emulator)
        await bot.post_alerts(make_payload([make_alert(service="api")]))
        await paging_line(emulator, "Paging level 1")
        incident = (await bot.app.services.incidents.open_incidents())[0]
        assert incident.card_ts is not None
        reply = await emulator.send_block_action(
            f"{bot.url}/slack/events",
            action_id=ids.ESCALATE,
            value=str(incident.id),
            user_id=DANA,
            channel_id=incident_channel(emulator).id,
            message_ts=incident.card_ts,
        )
        assert reply.status == 200
        mention = await paging_line(emulator, ":rotating_light: Paging level 2")
        assert f"<@{ALICE}>" in mention and f"<@{CAROL}>" in mention
        assert "could not" not in mention
        assert CAROL in incident_channel(emulator).members
        await eventually(lambda: len(dm_cards(emulator, CAROL)) == 1, what="Carol's DM")
        await eventually(lambda: len(dm_cards(emulator, ALICE)) == 2, what="Alice's second DM")


async def test_one_departed_person_does_not_keep_the_others_from_being_paged(
    database_url: str,
) -> None:
    async with dana_left(database_url, policy([ALICE, DANA, GONE, CAROL])) as (emulator, bot):
        mention = await paging_line(emulator, "Paging level 1")
        assert mention.splitlines() == [
            f":rotating_light: Paging level 1: <@{ALICE}> <@{CAROL}> — please acknowledge.",
            f":warning: <@{DANA}> could not be invited: cant_invite",
            f":warning: <@{GONE}> could not be invited: user_not_found",
        ]
        await eventually(
            lambda: len(dm_cards(emulator, ALICE)) == 1 and len(dm_cards(emulator, CAROL)) == 1,
            what="the DMs of those who could be reached",
        )
        assert {ALICE, CAROL} <= set(incident_channel(emulator).members)
        timeline = await timeline_texts(bot)
        assert f"Paged level 1: <@{ALICE}>, <@{CAROL}>" in timeline
        assert any(
            f"<@{DANA}> (cant_invite)" in t and f"<@{GONE}> (user_not_found)" in t for t in timeline
        ), timeline


async def test_a_level_nobody_can_be_paged_at_moves_to_the_next_at_once(
    database_url: str,
) -> None:
    # Level 1 would wait an hour for an acknowledgement nobody can give.
    tweak = policy([GONE, DANA], [CAROL], timeout="1h")
    async with dana_left(database_url, tweak) as (emulator, bot):
        nobody = await paging_line(emulator, "Nobody at level 1")
        assert nobody == (
            f":warning: Nobody at level 1 could be paged: <@{GONE}> (user_not_found), "
            f"<@{DANA}> (cant_invite). Paging level 2 now."
        )
        mention = await paging_line(emulator, ":rotating_light: Paging level 2")
        assert f"<@{CAROL}>" in mention
        await eventually(lambda: len(dm_cards(emulator, CAROL)) == 1, what="Carol's DM")
        timeline = await timeline_texts(bot)
        assert "Nobody at level 1 could be paged; paging level 2 now" in timeline
