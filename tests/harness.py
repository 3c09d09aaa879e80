"""Run Tocsin for tests: in-process (aiohttp) or as a real `tocsin serve` process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.main import Tocsin, build_app
from bot.ports import Clock
from bot.slack.emulator import SlackEmulator
from tests.realservers import free_port

SIGNING_SECRET = "test-signing-secret"


@dataclass
class RunningBot:
    """A Tocsin serving HTTP on `url`, talking to `emulator`."""

    url: str
    app: Tocsin
    emulator: SlackEmulator

    async def post_alerts(self, payload: Any, *, token: str | None = None) -> tuple[int, Any]:
        """POST a webhook body (dict, str or bytes) to /webhooks/alertmanager."""
        return await post_webhook(self.url, payload, token=token)


async def post_webhook(url: str, payload: Any, *, token: str | None = None) -> tuple[int, Any]:
    """POST to a Tocsin's Alertmanager webhook; returns status and JSON (or text)."""
    import io
    import json

    text = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    data = io.BytesIO(text.encode() if isinstance(text, str) else text)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/webhooks/alertmanager", data=data, headers=headers) as response,
    ):
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = await response.text()
        return response.status, body


def bot_env(database_url: str, emulator_url: str, **extra: str) -> dict[str, str]:
    """Environment for a Tocsin talking to an emulator."""
    return {
        "SLACK_BOT_TOKEN": "xoxb-emulator",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": emulator_url,
        "TOCSIN_DATABASE_URL": database_url,
        **extra,
    }


@asynccontextmanager
async def running_emulator(**options: Any) -> AsyncIterator[tuple[SlackEmulator, str]]:
    """A started emulator with an #alerts channel; yields it and its API URL."""
    emulator = SlackEmulator(signing_secret=SIGNING_SECRET, **options)
    url = await emulator.start()
    # Made by a person, not through the API: a conversations.create on the bot's token would
    # take a Tier 2 slot Tocsin never counted (a 429 on its first minute of channels).
    emulator.add_channel("alerts", members=[emulator.bot_user_id])
    try:
        yield emulator, url
    finally:
        await emulator.stop()


@asynccontextmanager
async def running_bot(
    database_url: str,
    emulator: SlackEmulator,
    emulator_url: str,
    *,
    tweak: Callable[[Settings], None] | None = None,
    clock: Clock | None = None,
    **env: str,
) -> AsyncIterator[RunningBot]:
    """Tocsin in this process, on a free port; `tweak` may adjust its settings first, `clock`
    replaces the system clock."""
    settings = load_settings(bot_env(database_url, emulator_url, TOCSIN_CONFIG="", **env))
    settings.alerts_channel = settings.alerts_channel or "alerts"
    settings.digest.digests = []  # tests that want the daily digest configure it
    # Tests that are not about the card's pace see each change of alerts at once (the pace has
    # tests of its own, and `tocsin serve` children run on the defaults).
    settings.outbox.card_settle = timedelta(0)
    if tweak is not None:
        tweak(settings)
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    if clock is None:
        app = await build_app(settings, public_url=public_url)
    else:  # Slack calls are paced by the same clock
        app = await build_app(
            settings, public_url=public_url, clock=clock, pace_clock=lambda: clock.now().timestamp()
        )
    runner = web.AppRunner(app.web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await app.start_background()
    try:
        yield RunningBot(url=f"http://127.0.0.1:{port}", app=app, emulator=emulator)
    finally:
        await runner.cleanup()
        await app.close()


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], *, timeout: float = 20.0, what: str = "condition"
) -> None:
    """Wait until `check()` is true, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def readiness(url: str) -> dict[str, Any]:
    """The checks the /readyz of the Tocsin at `url` reports."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as response:
        report: dict[str, Any] = await response.json()
    checks: dict[str, Any] = report["checks"]
    return checks


async def settled(url: str) -> bool:
    """Every Slack job done and no timer due (diagnostics included), as the /readyz of the
    Tocsin at `url` reports it: nothing already set in motion can still reach Slack."""
    checks = await readiness(url)
    return bool(checks["outbox"]["depth"] == 0 and checks["timers"]["due"] == 0)


def suspended_in(
    function: Callable[..., Any], tasks: Iterable[asyncio.Task[Any]] | None = None
) -> bool:
    """True when one of `tasks` (every task of the loop by default) is suspended inside the
    coroutine function `function`: a positive sign that it waits there."""
    code = function.__code__
    for task in asyncio.all_tasks() if tasks is None else tasks:
        awaiting: Any = task.get_coro()
        while awaiting is not None:  # down the chain of coroutines the task is suspended in
            if getattr(awaiting, "cr_code", None) is code:
                return True
            awaiting = getattr(awaiting, "cr_await", None)
    return False


class ServeProcess:
    """`tocsin serve` as a child process, so tests can kill it."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env = {**os.environ, **env, "TOCSIN_CONFIG": ""}
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the process."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        """Start and wait for /healthz."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        async def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"tocsin serve exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                async with aiohttp.ClientSession() as s, s.get(f"{self.url}/readyz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(healthy, timeout=timeout, what="tocsin serve to be ready")

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


async def step(bot: RunningBot, clock: FakeClock, seconds: float) -> None:
    """Move time on, and wait until the outbox has done everything that became due: two looks
    at the queue that started nothing (one may have begun before the clock moved)."""
    worker = bot.app.worker
    looks = worker.idle_looks
    clock.advance(seconds=seconds)
    bot.app.scheduler.wake()
    worker.wake()
    await eventually(lambda: worker.idle_looks >= looks + 2, what="the outbox to go quiet")
