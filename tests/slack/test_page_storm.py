"""A storm of incidents paging the same two people, under Slack's documented limits (sped up
tenfold, tests/pacing.py), with `tocsin serve` killed (SIGKILL) mid-storm and started again:
exactly one page message per incident and level, one DM per person, incident and level."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from bot.store import schema
from tests.builders import make_alert, make_payload
from tests.harness import ServeProcess, bot_env, eventually, post_webhook, running_emulator
from tests.pacing import scaled_limits, scaled_server
from tests.pages import page_dms as dms
from tests.pages import page_messages as pages
from tests.realservers import free_port

SCALE = 10.0
INCIDENTS = 50
ALICE, BOB = "U0ALICE01", "U0BOB0001"
POLICY = {
    "escalation": {
        "default": "storm",
        "policies": [
            {
                "name": "storm",
                "levels": [
                    {"targets": [f"user:{ALICE}", f"user:{BOB}"], "timeout": "3s"},
                    {"targets": [f"user:{ALICE}", f"user:{BOB}"], "timeout": "1h"},
                ],
            }
        ],
    }
}


async def settled(url: str) -> bool:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as response:
        checks = (await response.json())["checks"]
    return bool(checks["outbox"]["depth"] == 0 and checks["timers"]["due"] == 0)


async def storm(url: str) -> None:
    async def one(i: int) -> None:
        name = f"PageStorm{i:02d}"
        code, answer = await post_webhook(
            url, make_payload([make_alert(name, service="api")], group=name)
        )
        assert code == 200, answer

    await asyncio.gather(*(one(i) for i in range(INCIDENTS)))


async def test_a_storm_pages_each_person_once_per_incident_and_level_across_a_kill(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    await asyncio.to_thread(schema.upgrade, url)
    config, extra_env = scaled_server(tmp_path, SCALE, POLICY)
    async with running_emulator(rate_limits=scaled_limits(SCALE)) as (emulator, emulator_url):
        emulator.add_user(ALICE, "alice")
        emulator.add_user(BOB, "bob")
        env = {**bot_env(url, emulator_url, **extra_env)}
        port = free_port()
        first = ServeProcess(env, port, tmp_path / "first.log")
        first.env["TOCSIN_CONFIG"] = str(config)
        await first.start()
        try:
            await storm(first.url)
            await eventually(lambda: sum(dms(emulator).values()) >= 30, timeout=120, what="30 DMs")
        finally:
            first.kill()
        delivered_before_kill = sum(dms(emulator).values())
        assert delivered_before_kill < 4 * INCIDENTS  # killed mid-storm, not after it

        second = ServeProcess(env, port, tmp_path / "second.log")
        second.env["TOCSIN_CONFIG"] = str(config)
        await second.start()
        try:
            await eventually(
                lambda: (
                    len(dms(emulator)) == 4 * INCIDENTS and len(pages(emulator)) == 2 * INCIDENTS
                ),
                timeout=300,
                what="every page and DM of both levels",
            )
            await eventually(lambda: settled(second.url), timeout=120, what="outbox drained")
        finally:
            second.stop()

        channels = {c.id for c in emulator.state.channels.values() if c.name.startswith("inc-")}
        assert len(channels) == INCIDENTS
        assert set(pages(emulator)) == {(c, f"level {n}") for c in channels for n in (1, 2)}
        assert set(pages(emulator).values()) == {1}, "a page message was repeated"
        assert set(dms(emulator)) == {
            (p, c, f"level {n}") for p in (ALICE, BOB) for c in channels for n in (1, 2)
        }
        assert set(dms(emulator).values()) == {1}, "a DM was repeated"
        assert not any("could not" in (m.text or "") for m in emulator.state.messages)
        # Each process opens each person's DM once; the channel is the same every time.
        assert len(emulator.calls_to("conversations.open")) <= 4
