"""Every /slack/events request is verified: forged, unsigned and replayed ones get 401."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.store.models import IncidentRow
from tests.harness import RunningBot, eventually, running_bot, running_emulator


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[RunningBot]:
    async with running_emulator() as (emulator, url), running_bot(database_url, emulator, url) as b:
        emulator.add_user("U0ALICE01", "alice")
        yield b


async def incidents(bot: RunningBot) -> int:
    async with bot.app.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(IncidentRow)) or 0)


@pytest.mark.parametrize(
    ("secret", "age"),
    [("not-the-secret", 0), (None, 301), (None, -400)],
    ids=["forged", "replayed-old", "from-the-future"],
)
async def test_badly_signed_slash_commands_are_refused(
    bot: RunningBot, secret: str | None, age: int
) -> None:
    reply = await bot.emulator.send_slash_command(
        f"{bot.url}/slack/events",
        "/incident",
        "declare Forged outage sev1",
        user_id="U0ALICE01",
        channel_id="C0RANDOM1",
        timestamp=int(time.time()) - age,
        signing_secret=secret,
    )
    assert reply.status == 401
    assert await incidents(bot) == 0
    assert bot.emulator.state.response_posts == []


async def test_unsigned_requests_are_refused(bot: RunningBot) -> None:
    body = "command=%2Fincident&text=declare+x&user_id=U0ALICE01&channel_id=C1"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{bot.url}/slack/events",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as response,
    ):
        assert response.status == 401
    assert await incidents(bot) == 0


async def test_a_correctly_signed_command_within_the_window_is_accepted(bot: RunningBot) -> None:
    reply = await bot.emulator.send_slash_command(
        f"{bot.url}/slack/events",
        "/incident",
        "declare Real outage sev1",
        user_id="U0ALICE01",
        channel_id="C0RANDOM1",
        timestamp=int(time.time()) - 240,
    )
    assert reply.status == 200

    async def declared() -> bool:
        return await incidents(bot) == 1

    await eventually(declared, what="incident declared")
