"""/oncall: who is on call now and next, and overrides, against a running bot."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.config import Settings
from bot.config.policies import (
    EscalationConfig,
    LayerConfig,
    LevelConfig,
    PolicyConfig,
    RotationConfig,
)
from bot.slack import ids
from tests.builders import make_alert, make_payload
from tests.commands.conftest import ALICE, BOB, CAROL, Launch, Opened, Tweak, Workspace, shown
from tests.harness import eventually

USAGE = "Usage: `/oncall override @user <duration, e.g. 4h> [rotation]`"


def unique(name: str) -> str:
    # Overrides outlive a test on the shared Postgres database: keep rotations apart.
    return f"{name}-{uuid.uuid4().hex[:6]}"


def daily(name: str, members: list[str], start: date) -> RotationConfig:
    """A rotation handing off every day at 00:00 UTC, members[0] first on `start`."""
    return RotationConfig(
        name=name,
        layers=[LayerConfig(members=members, handoff="00:00", start=start, period_days=1)],
    )


def with_rotations(*rotations: RotationConfig) -> Tweak:
    def tweak(settings: Settings) -> None:
        settings.oncall.rotations = list(rotations)

    return tweak


async def oncall(ws: Workspace, text: str = "", *, user: str = ALICE) -> str:
    reply = await ws.command(text, user=user, command=ids.ONCALL_COMMAND)
    return str(reply["text"])


async def test_without_rotations_it_says_none_are_configured(ws: Workspace) -> None:
    assert await oncall(ws) == "No rotations are configured (oncall.rotations in tocsin.yml)."
    text = await oncall(ws, f"override <@{CAROL}|carol> 4h")
    assert text == ":information_source: Name the rotation: one of none configured."


async def test_shows_who_is_on_call_now_and_next(launch: Launch) -> None:
    today = datetime.now(UTC).date()
    primary, secondary = unique("primary"), unique("secondary")
    ws = await launch(
        with_rotations(
            daily(primary, [ALICE, BOB], today),
            daily(secondary, [BOB, CAROL], today - timedelta(days=1)),
        )
    )
    tomorrow = today + timedelta(days=1)
    text = await oncall(ws)
    assert text.splitlines() == [
        f"*{primary}*: now <@{ALICE}> until {tomorrow:%a} 00:00 UTC; "
        f"next <@{BOB}> from {tomorrow:%a} 00:00 UTC",
        f"*{secondary}*: now <@{CAROL}> until {tomorrow:%a} 00:00 UTC; "
        f"next <@{BOB}> from {tomorrow:%a} 00:00 UTC",
    ]


async def test_an_override_takes_the_shift_now(launch: Launch) -> None:
    today = datetime.now(UTC).date()
    name = unique("primary")
    ws = await launch(with_rotations(daily(name, [ALICE], today - timedelta(days=3))))
    assert (await oncall(ws)).startswith(f"*{name}*: now <@{ALICE}> until ")

    before = datetime.now(UTC)
    reply = await oncall(ws, f"override <@{CAROL}|carol> 4h", user=BOB)
    after = datetime.now(UTC)
    match = re.fullmatch(
        rf"<@{CAROL}> is on call for \*{name}\* until (\w+ \d\d:\d\d) UTC\.", reply
    )
    assert match is not None, reply
    until = match.group(1)
    assert until in {f"{t + timedelta(hours=4):%a %H:%M}" for t in (before, after)}

    assert await oncall(ws) == (
        f"*{name}*: now <@{CAROL}> until {until} UTC; next <@{ALICE}> from {until} UTC"
    )


async def test_override_names_the_rotation_when_there_are_several(launch: Launch) -> None:
    today = datetime.now(UTC).date()
    primary, secondary = unique("primary"), unique("secondary")
    ws = await launch(
        with_rotations(daily(primary, [ALICE], today), daily(secondary, [BOB], today))
    )
    ambiguous = await oncall(ws, f"override <@{CAROL}> 30m")
    assert ambiguous == (f":information_source: Name the rotation: one of {primary}, {secondary}.")
    unknown = await oncall(ws, f"override <@{CAROL}> 30m nope")
    assert unknown == (
        f":information_source: No rotation `nope`. Rotations: {primary}, {secondary}."
    )
    assert f"now <@{CAROL}>" not in await oncall(ws)

    chosen = await oncall(ws, f"override <@{CAROL}> 1h30m {secondary}")
    assert chosen.startswith(f"<@{CAROL}> is on call for *{secondary}* until ")
    lines = (await oncall(ws)).splitlines()
    assert lines[0].startswith(f"*{primary}*: now <@{ALICE}> ")
    assert lines[1].startswith(f"*{secondary}*: now <@{CAROL}> ")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ("override", USAGE),
        (f"override <@{CAROL}>", USAGE),
        ("override carol 4h", "Mention the person with @ (got `carol`)"),
        (f"override <@{CAROL}> 4x", "invalid duration '4x'"),
        (f"override <@{CAROL}> soon", "invalid duration 'soon'"),
        (f"override <@{CAROL}> 0h", "must be longer than zero"),
        (f"override <@{CAROL}> 9999999999d", "too long"),
        (f"override <@{CAROL}> 99999999d", "too long"),
    ],
)
async def test_bad_override_shows_the_usage(launch: Launch, args: str, fragment: str) -> None:
    name = unique("primary")
    ws = await launch(with_rotations(daily(name, [ALICE], datetime.now(UTC).date())))
    text = await oncall(ws, args)
    assert text.startswith(":information_source: ")
    assert fragment in shown(text)
    assert "Usage: `/oncall override @user" in text
    assert (await oncall(ws)).startswith(f"*{name}*: now <@{ALICE}> ")


async def test_help_and_unknown_subcommands(ws: Workspace) -> None:
    assert "`/oncall override @user <duration, e.g. 4h> [rotation]`" in shown(
        await oncall(ws, "help")
    )
    unknown = await oncall(ws, "swap")
    assert unknown.startswith("Unknown subcommand `swap`.")
    assert "/oncall override @user" in unknown


def card_context(ws: Workspace, opened: Opened) -> str:
    """The card's lines of text (its state, escalation, who was paged, who is on call)."""
    blocks = ws.card(opened)
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section" and b.get("text")]
    texts += [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    return "\n".join(texts)


async def test_the_card_says_who_is_on_call_now_in_the_rotation_its_policy_pages(
    launch: Launch,
) -> None:
    primary = unique("primary")
    rotation = daily(primary, [ALICE, BOB], datetime.now(UTC).date())

    def tweak(settings: Settings) -> None:
        settings.oncall.rotations = [rotation]
        settings.escalation = EscalationConfig(
            default="standard",
            policies=[
                PolicyConfig(
                    name="standard",
                    levels=[LevelConfig(targets=[f"rotation:{primary}"], timeout="5m")],
                )
            ],
        )

    ws = await launch(tweak)
    await ws.bot.post_alerts(make_payload([make_alert(service="api")]))
    opened = await ws.wait_until_open(1)
    midnight = re.escape(f"{datetime.now(UTC).date() + timedelta(days=1):%Y-%m-%d} 00:00 UTC")
    said = (
        f"\\*On call now:\\* <@{ALICE}> \\({primary}, until <!date\\^\\d+\\^[^|]+\\|{midnight}>\\)"
    )
    assert re.search(said, card_context(ws, opened)), card_context(ws, opened)

    # Carol takes the shift; the card says so at its next change.
    await oncall(ws, f"override <@{CAROL}|carol> 4h {primary}", user=BOB)
    await ws.said("ack", "Acknowledged by", user=BOB, channel=opened.channel)
    await eventually(
        lambda: f"*On call now:* <@{CAROL}> ({primary}, until " in card_context(ws, opened),
        what="the card to name Carol",
    )

    await ws.said("resolve", "Resolved by", user=BOB, channel=opened.channel)
    await ws.wait_for_card(opened, lambda fields: fields["Status"].startswith("resolved"))
    assert "On call now" not in card_context(ws, opened)
