"""Kill `tocsin serve` between receipt and channel creation: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.slack import ids
from bot.store import schema
from tests.builders import contract_payload
from tests.harness import (
    ServeProcess,
    bot_env,
    eventually,
    post_webhook,
    readiness,
    running_emulator,
    settled,
)
from tests.realservers import free_port


def inc_channels(emulator) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.name for c in emulator.state.channels.values() if c.name.startswith("inc-")]


@pytest.mark.parametrize("create_latency", [0.0, 3.0], ids=["before-create", "during-create"])
async def test_killed_process_resumes_without_loss_or_duplicates(
    tmp_path: Path, create_latency: float
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    await asyncio.to_thread(schema.upgrade, url)
    config = tmp_path / "tocsin.yml"
    config.write_text("alerts_channel: alerts\n")
    latency = {"conversations.create": create_latency}
    async with running_emulator(latency=latency) as (emulator, emulator_url):
        env = {**bot_env(url, emulator_url), "TOCSIN_CONFIG": str(config)}
        port = free_port()
        first = ServeProcess(env, port, tmp_path / "first.log")
        first.env["TOCSIN_CONFIG"] = str(config)
        await first.start()
        try:
            code, _ = await post_webhook(
                first.url, contract_payload("alertmanager-0.25-captured-1-firing.json")
            )
            assert code == 200
            if create_latency:
                # The create call is in flight when the process dies.
                await eventually(
                    lambda: emulator.in_flight("conversations.create") > 0,
                    timeout=10,
                    what="conversations.create in flight",
                )
        finally:
            first.kill()
        # Slack finishes the create the dead process never heard of (none is left otherwise).
        await eventually(
            lambda: emulator.in_flight("conversations.create") == 0,
            timeout=30,
            what="the cut-off conversations.create completed by Slack",
        )

        second = ServeProcess(env, port, tmp_path / "second.log")
        second.env["TOCSIN_CONFIG"] = str(config)
        await second.start()
        try:
            await eventually(
                lambda: len(emulator.calls_to("pins.add")) >= 1, timeout=30, what="card pinned"
            )
            await eventually(lambda: settled(second.url), timeout=30, what="outbox drained")
        finally:
            second.stop()
        assert len(inc_channels(emulator)) == 1
        cards = [
            c
            for c in emulator.calls_to("chat.postMessage")
            if (c.params.get("metadata") or {}).get("event_type") == ids.CARD_METADATA_EVENT
        ]
        assert len(cards) == 1

        # A clean restart repeats nothing.
        calls_before = len(emulator.calls)
        third = ServeProcess(env, port, tmp_path / "third.log")
        third.env["TOCSIN_CONFIG"] = str(config)
        await third.start()
        try:
            # It sends to Slack, and all it set in motion at start-up is done: the outbox
            # drained, no timer due.
            async def quiet() -> bool:
                return bool((await readiness(third.url))["outbox"]["sends"]) and await settled(
                    third.url
                )

            await eventually(quiet, timeout=30, what="the restarted outbox drained")
        finally:
            third.stop()
        # Only reads: the bot's identity, and the alerts channel's ID from its name in the config.
        lookups = {"auth.test", "conversations.list"}
        assert [c.method for c in emulator.calls[calls_before:] if c.method not in lookups] == []
