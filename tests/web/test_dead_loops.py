"""A background loop that ends while Tocsin serves never runs again in that process: it is
logged at ERROR and /healthz answers 503 naming it, so a supervisor restarts Tocsin."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot.loops.ownership import OUTBOX_LEASE
from bot.store.lease import LeaseStore
from bot.store.outbox import Job, OutboxStore
from tests.harness import RunningBot, eventually, readiness, running_bot, running_emulator

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
LONG = timedelta(minutes=5)


async def healthz(bot: RunningBot) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as response:
        return response.status, await response.json()


async def answers_503(bot: RunningBot) -> bool:
    return (await healthz(bot))[0] == 503


class CancellingOutbox(OutboxStore):
    """An outbox whose reads cancel the task asking (a driver cancelling what awaits it):
    nothing a loop's recovery can catch."""

    async def due(
        self,
        now: datetime,
        limit: int,
        exclude: Any = (),
        exclude_kinds: Any = (),
        only_kinds: Any = (),
    ) -> list[Job]:
        raise asyncio.CancelledError


async def test_an_outbox_loop_that_returns_fails_healthz_naming_it(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(database_url, emulator, emulator_url) as bot,
    ):
        assert await healthz(bot) == (200, {"ok": True})
        with caplog.at_level(logging.ERROR):
            await bot.app.worker.stop()  # the worker ends though this process holds the lease
            await eventually(lambda: answers_503(bot), what="/healthz to fail")
        assert await healthz(bot) == (503, {"ok": False, "dead_loops": {"outbox": "returned"}})
    assert any(
        r.levelno == logging.ERROR and "background loop outbox ended" in r.getMessage()
        for r in caplog.records
    )


async def test_an_error_that_escapes_a_loops_recovery_fails_healthz(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(database_url, emulator, emulator_url) as bot,
    ):
        with caplog.at_level(logging.ERROR):
            bot.app.worker.store = CancellingOutbox(bot.app.db)
            bot.app.worker.wake()
            await eventually(lambda: answers_503(bot), what="/healthz to fail")
        status, answer = await healthz(bot)
        assert (status, answer) == (503, {"ok": False, "dead_loops": {"outbox": "cancelled"}})
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "background loop outbox ended while serving (cancelled); it will not run again in this "
        "process, /healthz fails until Tocsin is restarted"
    ]


async def test_loops_stopped_because_another_process_took_the_lease_do_not_fail_healthz(
    database_url: str,
) -> None:
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(database_url, emulator, emulator_url) as bot,
    ):
        ownership = bot.app.ownership
        leases = LeaseStore(bot.app.db)
        await leases.release(OUTBOX_LEASE, ownership.holder)
        assert await leases.acquire(OUTBOX_LEASE, "another", now=ownership.now(), ttl=LONG)
        assert not await ownership.try_once()  # its loops stop: the other process sends now
        assert await healthz(bot) == (200, {"ok": True})
        outbox = (await readiness(bot.url))["outbox"]
        assert outbox["ok"] is True and outbox["sends"] is False
        assert outbox["holder"] == "another" and outbox["this_replica"] == ownership.holder
