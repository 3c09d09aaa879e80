"""Several `tocsin serve` replicas on one Postgres database of their own, for tests and
benchmarks: the database, the replicas, which one holds the outbox lease, what Slack shows."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from bot.store import schema
from tests.builders import make_alert, make_payload
from tests.harness import ServeProcess, bot_env, readiness
from tests.pacing import scaled_server
from tests.realservers import free_port

# The admin database, as tests/conftest.py reads it; each caller's database is made beside it.
PG_ADMIN_DSN = os.environ.get("TOCSIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def own_database(revision: str = "head") -> AsyncIterator[str]:
    """A Postgres database made and migrated (to `revision`) for the caller alone, dropped
    afterwards."""
    name = f"tocsin_replicas_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    server = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{server}/{name}"
    try:
        await asyncio.to_thread(schema.upgrade, url, revision)
        yield url
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def replicas(
    database_url: str,
    emulator_url: str,
    workdir: Path,
    config: dict[str, Any],
    *,
    count: int = 2,
) -> AsyncIterator[list[ServeProcess]]:
    """`count` started `tocsin serve` processes on one store and one Slack; stopped at the end
    (SIGTERM, unless a test killed them first)."""
    path, extra_env = scaled_server(workdir, 1.0, config)
    env = {**bot_env(database_url, emulator_url, **extra_env)}
    started: list[ServeProcess] = []
    try:
        for n in range(count):
            serve = ServeProcess(env, free_port(), workdir / f"replica{n}.log")
            serve.env["TOCSIN_CONFIG"] = str(path)
            await serve.start()
            started.append(serve)
        yield started
    finally:
        for serve in started:
            serve.stop()


async def sender(processes: Sequence[ServeProcess]) -> ServeProcess | None:
    """The replica whose /readyz says it sends to Slack (holds the outbox lease), if one does."""
    for serve in processes:
        if serve.proc is None or serve.proc.poll() is not None:
            continue
        try:
            if (await readiness(serve.url))["outbox"]["sends"]:
                return serve
        except (aiohttp.ClientError, KeyError):
            continue
    return None


def group_payload(name: str) -> dict[str, Any]:
    """One Alertmanager notification for the group `name`."""
    return make_payload([make_alert(name, service="api")], group=name)


def incident_channels(emulator: SlackEmulator) -> dict[str, str]:
    """Every incident channel's name, by id."""
    return {c.id: c.name for c in emulator.state.channels.values() if c.name.startswith("inc-")}


def cards(emulator: SlackEmulator) -> Counter[str]:
    """How many incident cards each channel has (DM copies aside)."""
    channels = incident_channels(emulator)
    return Counter(
        m.channel
        for m in emulator.state.messages
        if m.channel in channels and (m.metadata or {}).get("event_type") == ids.CARD_METADATA_EVENT
    )


def answered_429(emulator: SlackEmulator) -> list[str]:
    """The methods of every call the emulator refused with 429."""
    return [c.method for c in emulator.calls if c.status == 429]
