"""`tocsin digest --now` beside a running `tocsin serve`: the server posts the digest, once,
and the command takes none of the server's jobs; with no server, the command posts it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.slack.emulator import SlackEmulator
from bot.store import schema
from tests.builders import contract_payload
from tests.harness import ServeProcess, bot_env, eventually, post_webhook, running_emulator
from tests.realservers import free_port


def digests(emulator: SlackEmulator) -> list[str]:
    return [m.ts for m in emulator.state.messages if (m.text or "").startswith("Daily digest")]


async def digest_now(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "digest",
        "--now",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


def config(tmp_path: Path) -> Path:
    path = tmp_path / "tocsin.yml"
    path.write_text("alerts_channel: alerts\n")
    return path


async def test_beside_a_server_the_server_posts_it_and_keeps_its_jobs(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    await asyncio.to_thread(schema.upgrade, url)
    # The server's first channel takes a while: its job is running while the command runs.
    async with running_emulator(latency={"conversations.create": 4.0}) as (emulator, api):
        env = {**bot_env(url, api), "TOCSIN_CONFIG": str(config(tmp_path))}
        serve = ServeProcess(env, free_port(), tmp_path / "serve.log")
        serve.env["TOCSIN_CONFIG"] = env["TOCSIN_CONFIG"]
        await serve.start()
        try:
            code, _ = await post_webhook(
                serve.url, contract_payload("alertmanager-0.25-captured-1-firing.json")
            )
            assert code == 200
            await eventually(
                lambda: emulator.in_flight("conversations.create") > 0, what="a channel in flight"
            )
            before = len(digests(emulator))
            rc, out = await digest_now(env)
            assert rc == 0, out
            assert "by the running `tocsin serve`" in out.splitlines()[-1], out
            await eventually(lambda: len(emulator.calls_to("pins.add")) == 1, what="the card")
        finally:
            serve.stop()
    assert len(digests(emulator)) == before + 1
    # The command neither released nor redid the server's running job.
    assert len(emulator.calls_to("conversations.create")) == 1


async def test_with_no_server_the_command_posts_it_itself(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    await asyncio.to_thread(schema.upgrade, url)
    async with running_emulator() as (emulator, api):
        env = {**bot_env(url, api), "TOCSIN_CONFIG": str(config(tmp_path))}
        rc, out = await digest_now(env)
    assert rc == 0, out
    assert out.splitlines()[-1].startswith("digest posted to C"), out  # the channel's ID
    assert len(digests(emulator)) == 1
