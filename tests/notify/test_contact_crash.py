"""Kill -9 `tocsin serve` between the steps of a notification rule and start it again: every
step still reaches the person, and none twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.store import schema
from tests.builders import contract_payload
from tests.harness import (
    ServeProcess,
    bot_env,
    eventually,
    post_webhook,
    running_emulator,
    settled,
)
from tests.realservers import Received, free_port, local_endpoint

DANA = "U0DANA001"


@asynccontextmanager
async def topics() -> AsyncIterator[tuple[list[Received], int]]:
    """A local endpoint for apprise's json:// pushes: what it received, in order."""
    async with local_endpoint() as (received, port):
        yield received, port


def topic_of(received: list[Received]) -> list[str]:
    return [r.path.strip("/") for r in received]


def config(port: int) -> str:
    return f"""\
alerts_channel: alerts
escalation:
  default: standard
  policies:
    - name: standard
      levels:
        - targets: [user:{DANA}]
          timeout: 30m
people:
  {DANA}:
    contacts:
      first: "json://127.0.0.1:{port}/first"
      second: "json://127.0.0.1:{port}/second"
      third: "json://127.0.0.1:{port}/third"
    rules:
      - {{after: 0s, notify: [slack, first]}}
      - {{after: 3s, notify: [second]}}
      - {{after: 6s, notify: [third]}}
"""


async def test_a_rule_survives_kill_9_between_its_steps(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    await asyncio.to_thread(schema.upgrade, url)
    async with topics() as (received, push_port), running_emulator() as (emulator, api):
        emulator.add_user(DANA, "dana")
        (tmp_path / "tocsin.yml").write_text(config(push_port))
        env, port = bot_env(url, api), free_port()
        first = ServeProcess(env, port, tmp_path / "first.log")
        first.env["TOCSIN_CONFIG"] = str(tmp_path / "tocsin.yml")
        await first.start()
        try:
            payload = contract_payload("alertmanager-0.25-captured-1-firing.json")
            assert (await post_webhook(first.url, payload))[0] == 200
            await eventually(lambda: topic_of(received) == ["first"], what="the first step's push")
        finally:
            first.kill()  # SIGKILL: the second step's timer is pending, or due meanwhile

        second = ServeProcess(env, port, tmp_path / "second.log")
        second.env["TOCSIN_CONFIG"] = first.env["TOCSIN_CONFIG"]
        await second.start()
        try:
            await eventually(
                lambda: len(received) >= 3, timeout=30, what="the later steps after the restart"
            )
            await eventually(lambda: settled(second.url), timeout=60, what="the Slack work done")
            dms = [
                m
                for m in emulator.state.messages
                if emulator.state.channels[m.channel].is_im and not m.thread_ts
            ]
        finally:
            second.stop()
        # Each step once: steps that fell due while no process ran go at once, side by side.
        sent = topic_of(received)
        assert sent[0] == "first" and sorted(sent) == ["first", "second", "third"]
        assert len(dms) == 1  # the Slack step too
