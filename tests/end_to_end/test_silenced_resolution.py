"""A silence hides the resolution: Alertmanager does not notify a silenced alert's resolve
until the silence ends. While Tocsin's silence lasts, it asks a real Alertmanager which
silenced alerts still fire, so the card says the alert resolved while still silenced."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.config import Settings
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from tests.harness import RunningBot, eventually, running_bot, running_emulator, step
from tests.realservers import AlertmanagerServer, free_port, require_binaries
from tests.slack.test_card_truth import ALICE, card, click, incident_channel, settle, words

pytestmark = pytest.mark.integration

WEBHOOK = "/webhooks/alertmanager"
LABELS = {"alertname": "HighErrorRate", "service": "api", "severity": "critical"}
# The HighErrorRate playbook resolves its incidents once every alert has resolved.
ALL_RESOLVED = ":white_check_mark: All alerts resolved; incident resolved automatically."


@dataclass
class Forward:
    """Forwards every request to `target` (set once known); `up` False refuses connections."""

    target: str = ""
    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.method == "POST" and request.path == WEBHOOK:
            self.received.append(json.loads(body))
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.target + request.path_qs,
                data=body,
                headers={"Content-Type": request.headers.get("Content-Type", "")},
            ) as answer,
        ):
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                content_type=answer.content_type,
            )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@contextlib.asynccontextmanager
async def serving(forward: Forward) -> AsyncIterator[Forward]:
    await forward.start()
    try:
        yield forward
    finally:
        await forward.stop()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def post_to_alertmanager(am: AlertmanagerServer, *, ends_at: datetime) -> None:
    """What Prometheus does: post the alert, firing until `ends_at` (resolved once past)."""
    alert = {
        "labels": LABELS,
        "annotations": {"summary": "5xx above 5% on api"},
        "startsAt": rfc3339(datetime.now(UTC) - timedelta(minutes=5)),
        "endsAt": rfc3339(ends_at),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{am.url}/api/v2/alerts", json=[alert]) as answer,
    ):
        assert answer.status == 200, await answer.text()


async def card_says(bot: RunningBot, clock: FakeClock, emulator: SlackEmulator, text: str) -> None:
    """Move the fake clock a second at a time until the card says `text`."""

    async def says() -> bool:
        await step(bot, clock, 1.0)
        return text in words(card(emulator))

    await eventually(says, timeout=60, what=f"the card to say {text!r}")


def channel_texts(emulator: SlackEmulator) -> list[str]:
    return [m.text for m in emulator.state.channel_messages(incident_channel(emulator))]


@dataclass
class Scene:
    am: AlertmanagerServer
    bot: RunningBot
    emulator: SlackEmulator
    clock: FakeClock
    webhooks: Forward
    api: Forward


async def silenced_incident(
    tmp_path: Path, sqlite_template: Path, test: Callable[[Scene], Awaitable[None]]
) -> None:
    """A real Alertmanager notifies Tocsin of a firing alert; Alice silences it from the card.
    Tocsin reaches Alertmanager's API through `api`, which a test may take down."""
    require_binaries("prometheus-alertmanager")
    shutil.copy(sqlite_template, tmp_path / "tocsin.db")
    database = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    webhooks = Forward()
    am = AlertmanagerServer(tmp_path / "am", webhook_url=webhooks.url + WEBHOOK)
    await asyncio.to_thread(am.start)
    api = Forward(target=am.url)
    clock = FakeClock(datetime.now(UTC))  # Alertmanager refuses silences that end in the past

    def configure(settings: Settings) -> None:
        settings.alertmanager_url = api.url

    try:
        async with (
            serving(webhooks),
            serving(api),
            running_emulator() as (emulator, emulator_url),
            running_bot(database, emulator, emulator_url, tweak=configure, clock=clock) as bot,
        ):
            emulator.add_user(ALICE, "alice")
            webhooks.target = bot.url
            await post_to_alertmanager(am, ends_at=datetime.now(UTC) + timedelta(hours=1))
            await eventually(lambda: bool(webhooks.received), what="Alertmanager's notification")
            await eventually(lambda: bool(emulator.calls_to("pins.add")), what="the card")
            await settle(bot, clock)
            assert "1 firing, 0 resolved" in words(card(emulator))
            await click(bot, emulator, ids.SILENCE_1H, ALICE, card(emulator), clock)
            assert ids.UNSILENCE in json.dumps(card(emulator).blocks)
            await test(Scene(am, bot, emulator, clock, webhooks, api))
    finally:
        await asyncio.to_thread(am.stop)


async def test_an_alert_resolved_under_the_silence_reads_resolved_before_unsilence(
    tmp_path: Path, sqlite_template: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.services.silence_watch")

    async def scene(s: Scene) -> None:
        async def checked() -> bool:
            await step(s.bot, s.clock, 1.0)
            return "Alertmanager holds 1 alert(s) matching its silence" in caplog.text

        await eventually(checked, timeout=60, what="a check while the alert still fires")
        await settle(s.bot, s.clock)
        assert "1 firing, 0 resolved" in words(card(s.emulator))  # it does fire still

        await post_to_alertmanager(s.am, ends_at=datetime.now(UTC) - timedelta(seconds=1))
        await card_says(s.bot, s.clock, s.emulator, "0 firing, 1 resolved")
        # Still silenced: nobody pressed Unsilence, and Alertmanager told Tocsin nothing.
        incident = await s.bot.app.services.incidents.get(1)
        assert incident.silence_id is not None
        assert ids.UNSILENCE in json.dumps(card(s.emulator).blocks)
        assert all(w["status"] == "firing" for w in s.webhooks.received)
        timeline = [e.text for e in await s.bot.app.services.incidents.timeline(1)]
        assert "1 alert resolved: HighErrorRate" in timeline
        assert timeline.count("All alerts resolved") == 1
        await settle(s.bot, s.clock)
        assert ALL_RESOLVED in channel_texts(s.emulator)
        assert "· resolved ·" in s.emulator.state.channels[incident_channel(s.emulator)].topic

        # Once the silence is lifted Alertmanager may notify the resolve after all: the same
        # news, said once.
        await click(s.bot, s.emulator, ids.UNSILENCE, ALICE, card(s.emulator), s.clock)
        firing = s.webhooks.received[0]
        resolved = {
            **firing,
            "status": "resolved",
            "alerts": [
                {**a, "status": "resolved", "endsAt": rfc3339(datetime.now(UTC))}
                for a in firing["alerts"]
            ],
        }
        status, _ = await s.bot.post_alerts(resolved)
        assert status == 200
        await settle(s.bot, s.clock)
        timeline = [e.text for e in await s.bot.app.services.incidents.timeline(1)]
        assert timeline.count("All alerts resolved") == 1
        assert timeline.count("1 alert resolved: HighErrorRate") == 1
        assert channel_texts(s.emulator).count(ALL_RESOLVED) == 1
        assert "0 firing, 1 resolved" in words(card(s.emulator))

    await silenced_incident(tmp_path, sqlite_template, scene)


async def test_alertmanager_out_of_reach_leaves_the_card_and_is_asked_again(
    tmp_path: Path, sqlite_template: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.services.silence_watch")

    async def scene(s: Scene) -> None:
        await s.api.stop()  # Alertmanager's API is out of Tocsin's reach
        await post_to_alertmanager(s.am, ends_at=datetime.now(UTC) - timedelta(seconds=1))
        before = channel_texts(s.emulator)

        async def asked() -> bool:
            await step(s.bot, s.clock, 1.0)
            return "could not ask Alertmanager" in caplog.text

        await eventually(asked, timeout=60, what="a check that could not reach Alertmanager")
        await settle(s.bot, s.clock)
        assert "1 firing, 0 resolved" in words(card(s.emulator))  # as it was
        assert channel_texts(s.emulator) == before  # nothing said, no error shown

        await s.api.start()  # back
        await card_says(s.bot, s.clock, s.emulator, "0 firing, 1 resolved")
        timeline = [e.text for e in await s.bot.app.services.incidents.timeline(1)]
        assert timeline.count("All alerts resolved") == 1

    await silenced_incident(tmp_path, sqlite_template, scene)
