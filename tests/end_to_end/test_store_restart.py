"""Postgres goes away under a stream of webhooks, and comes back: `tocsin serve` carries on
by itself. Every webhook it answered 200 becomes an incident with its channel and pinned card,
none twice; while the store is down webhooks get 503 and /readyz says the store is unreachable.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bot.slack import ids
from bot.store import schema
from tests.builders import make_alert, make_payload
from tests.harness import ServeProcess, bot_env, eventually, post_webhook, running_emulator
from tests.pacing import scaled_limits, scaled_server
from tests.postgres_server import PostgresServer
from tests.realservers import free_port

SCALE = 10.0


class Sender:
    """Sends Alertmanager notifications of distinct groups, one after another, as
    Alertmanager would; records what each was answered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: dict[str, list[Any]] = {}  # group -> statuses (or the connection error)
        self.incidents: dict[str, int] = {}  # group answered 200 -> its incident
        self._stop = asyncio.Event()
        self._count = 0

    def accepted(self) -> int:
        return len(self.incidents)

    def refused(self) -> list[str]:
        """Groups that got anything but 200 at their last try."""
        return [g for g, seen in self.answers.items() if seen[-1] != 200]

    async def send(self, group: str) -> Any:
        payload = make_payload([make_alert(group, service="api")], group=group)
        try:
            code, answer = await post_webhook(self.url, payload)
        except aiohttp.ClientError as exc:
            code, answer = type(exc).__name__, None
        self.answers.setdefault(group, []).append(code)
        if code == 200:
            self.incidents[group] = answer["incident"]
        return code

    async def stream(self) -> None:
        while not self._stop.is_set():
            self._count += 1
            await self.send(f"StoreRestart{self._count:03d}")
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()


async def readyz(url: str) -> tuple[int, dict[str, Any]] | None:
    """/readyz's status and answer, or None when nothing answers."""
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as response:
            return response.status, await response.json()
    except aiohttp.ClientError:
        return None


async def store_unreachable(url: str) -> bool:
    """/readyz says the store is unreachable, and (its outbox lease run out meanwhile) that
    this process no longer sends to Slack."""
    seen = await readyz(url)
    if seen is None or seen[0] != 503:
        return False
    checks = seen[1]["checks"]
    assert "password" not in str(seen[1]) and "postgresql" not in str(seen[1])
    return bool(
        checks["store"] == {"ok": False, "error": "store unreachable"}
        and checks["outbox"]["sends"] is False
    )


async def ready(url: str) -> bool:
    seen = await readyz(url)
    return seen is not None and seen[0] == 200


async def incidents(postgres: PostgresServer) -> dict[int, tuple[str | None, str | None]]:
    """Every incident in the store: its channel and its card's ts."""
    connection = await asyncpg.connect(postgres.dsn())
    try:
        rows = await connection.fetch("SELECT id, channel_id, card_ts FROM incidents")
    finally:
        await connection.close()
    return {row["id"]: (row["channel_id"], row["card_ts"]) for row in rows}


@pytest.mark.parametrize("how", ["outage", "restart"])
async def test_a_postgres_restart_under_webhooks_loses_nothing_and_needs_no_restart(
    tmp_path: Path, own_pg: PostgresServer, how: str
) -> None:
    """`outage`: Postgres stays down until webhooks are refused and /readyz says so, past the
    outbox lease's expiry; `restart`: `pg_ctl restart -m fast`, as `pg_ctlcluster … restart`."""
    postgres = own_pg
    url = postgres.url()
    await asyncio.to_thread(schema.upgrade, url)
    # Slack's limits, ten times faster: a channel a minute's worth of groups takes seconds.
    config, extra_env = scaled_server(tmp_path, SCALE)
    async with running_emulator(rate_limits=scaled_limits(SCALE)) as (emulator, emulator_url):
        env = bot_env(url, emulator_url, **extra_env)
        tocsin = ServeProcess(env, free_port(), tmp_path / "serve.log")
        tocsin.env["TOCSIN_CONFIG"] = str(config)
        await tocsin.start()
        sender = Sender(tocsin.url)
        stream = asyncio.create_task(sender.stream())
        try:
            await eventually(lambda: sender.accepted() >= 10, timeout=60, what="10 webhooks stored")
            if how == "restart":
                await asyncio.to_thread(postgres.restart)
            else:
                await asyncio.to_thread(postgres.stop)
                # While the store is down: webhooks are refused (Alertmanager sends them
                # again), and /readyz says why.
                await eventually(
                    lambda: len(sender.refused()) >= 5, timeout=60, what="webhooks refused"
                )
                await eventually(
                    lambda: store_unreachable(tocsin.url),
                    timeout=60,
                    what="/readyz: store unreachable",
                )
                await asyncio.to_thread(postgres.start)
            await eventually(lambda: ready(tocsin.url), timeout=120, what="/readyz ready again")
            accepted_after = sender.accepted() + 10
            await eventually(
                lambda: sender.accepted() >= accepted_after,
                timeout=60,
                what="webhooks stored again",
            )
        finally:
            sender.stop()
            await stream
        try:
            refused = sender.refused()
            statuses = {code for group in refused for code in sender.answers[group]}
            assert statuses <= {503, "ServerDisconnectedError", "ClientOSError"}, statuses
            assert refused or how == "restart"
            # Alertmanager sends the refused notifications again; now they are stored.
            for group in refused:
                assert await sender.send(group) == 200

            async def every_card_pinned() -> bool:
                stored = await incidents(postgres)
                pins = {(p.channel, p.ts) for p in emulator.state.pins}
                return all(stored.get(i, (None, None)) in pins for i in sender.incidents.values())

            await eventually(
                every_card_pinned, timeout=180, what="a channel and a pinned card for every group"
            )
        finally:
            tocsin.stop()
        log = (tmp_path / "serve.log").read_text()
        stored = await incidents(postgres)
        # Every 200 was stored; one incident per group, one channel and one card each.
        assert set(sender.incidents.values()) == set(stored)
        assert len(stored) == len(sender.answers)
        channels = [c for c in emulator.state.channels.values() if c.name.startswith("inc-")]
        assert len(channels) == len(stored)
        cards = [
            c
            for c in emulator.calls_to("chat.postMessage")
            if (c.params.get("metadata") or {}).get("event_type") == ids.CARD_METADATA_EVENT
        ]
        assert len(cards) == len(stored)
        assert postgres.port and "password" not in log.lower()
