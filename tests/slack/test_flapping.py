"""Flapping: an alert group that fires again 3 times within 30 minutes (the default rule) is
marked flapping on its card and timeline; its re-fires reopen it quietly (no page, no
announcement); after 30 calm minutes it stops flapping. Webhooks replayed a minute apart on a
fake clock, as Alertmanager sends them for a rule that toggles."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.clock import FakeClock
from bot.config import Settings
from bot.config.policies import EscalationConfig, LevelConfig, PolicyConfig
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from bot.store import schema
from tests.builders import make_alert, make_payload
from tests.harness import RunningBot, eventually, running_bot, running_emulator, step
from tests.realservers import AlertmanagerServer, require_binaries
from tests.slack.test_card_truth import (
    ALICE,
    alerts_channel,
    buttons,
    card,
    incident_channel,
    people,
    press,
    settle,
    words,
)


def paging_alice(settings: Settings) -> None:
    """Alice is paged, with a level long enough that no re-page comes from the policy."""
    settings.escalation = EscalationConfig(
        default="standard",
        policies=[
            PolicyConfig(name="standard", levels=[LevelConfig(targets=[ALICE], timeout="6h")])
        ],
    )


def toggled(name: str, n: int) -> tuple[dict[str, object], dict[str, object]]:
    """The n-th firing of the rule and its resolve, as Alertmanager notifies them."""
    starts = f"2026-11-26T10:{2 * n:02d}:00Z"
    firing = make_alert(name, service="api", starts_at=starts)
    ended = make_alert(
        name,
        service="api",
        status="resolved",
        starts_at=starts,
        ends_at=f"2026-11-26T10:{2 * n + 1:02d}:00Z",
    )
    return make_payload([firing], group=name), make_payload([ended], group=name, status="resolved")


def pages(emulator: SlackEmulator) -> list[str]:
    dms = {c.id for c in emulator.state.channels.values() if c.is_im and c.im_user == ALICE}
    return [m.text for m in emulator.state.messages if m.channel in dms and not m.thread_ts]


async def flap(bot: RunningBot, clock: FakeClock, name: str, times: int) -> None:
    """Fire, then resolve and fire again `times` times, a minute apart."""
    for n in range(times + 1):
        fire, resolve = toggled(name, n)
        if n:
            await step(bot, clock, 60.0)
        await bot.post_alerts(fire)
        await settle(bot, clock)
        if n < times:
            await step(bot, clock, 60.0)
            await bot.post_alerts(resolve)
            await settle(bot, clock)


async def test_a_rule_toggled_four_times_is_one_incident_flapping_with_one_page(
    database_url: str,
) -> None:
    clock = FakeClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=paging_alice, clock=clock) as bot,
    ):
        people(emulator)
        await flap(bot, clock, "DiskFull", times=4)

        assert [c.name for c in emulator.state.channels.values() if c.name.startswith("inc-")] == [
            "inc-20261126-1-diskfull"
        ]
        assert len(pages(emulator)) == 1
        shown = words(card(emulator))
        assert ":warning: *Flapping* since" in shown
        assert "fired again 4 times" in shown
        assert "▲" in shown and "▼" in shown
        assert ids.SILENCE_FLAPPING in buttons(card(emulator))
        timeline = [e.text for e in await bot.app.services.incidents.timeline(1)]
        assert any(t.startswith("Flapping: fired again 3 times within 30m") for t in timeline)
        async with aiohttp.ClientSession() as http, http.get(f"{bot.url}/metrics") as answer:
            assert "tocsin_flaps_detected_total 1.0" in await answer.text()

        # Thirty calm minutes: no longer flapping, and the card says so.
        await step(bot, clock, 31 * 60.0)
        await settle(bot, clock)
        assert "Flapping" not in words(card(emulator))
        assert ids.SILENCE_1H in buttons(card(emulator))
        timeline = [e.text for e in await bot.app.services.incidents.timeline(1)]
        assert any(t.startswith("No longer flapping: calm for 30m") for t in timeline)


async def test_once_flapping_a_resolving_group_reopens_without_a_page_or_an_announcement(
    database_url: str,
) -> None:
    """HighErrorRate's playbook resolves the incident with its alerts: each re-fire reopens it.
    The first two re-fires page again and say so; from the third, it flaps, quietly."""
    clock = FakeClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    tweak: Callable[[Settings], None] = paging_alice
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=tweak, clock=clock) as bot,
    ):
        people(emulator)
        await flap(bot, clock, "HighErrorRate", times=2)
        assert len(pages(emulator)) == 3  # opened, and reopened twice
        said = [m.text for m in emulator.state.channel_messages(incident_channel(emulator))]
        assert sum("Reopened: an alert fired again" in (t or "") for t in said) == 2

        _, resolve = toggled("HighErrorRate", 2)
        fire, _ = toggled("HighErrorRate", 3)
        await step(bot, clock, 60.0)
        await bot.post_alerts(resolve)
        await settle(bot, clock)
        await step(bot, clock, 60.0)
        await bot.post_alerts(fire)  # the third re-fire within 30 minutes: flapping
        await settle(bot, clock)
        assert (await bot.app.services.incidents.get(1)).status.value == "triggered"
        assert len(pages(emulator)) == 3
        said = [m.text for m in emulator.state.channel_messages(incident_channel(emulator))]
        assert sum("Reopened: an alert fired again" in (t or "") for t in said) == 2
        thread = [m.text for m in emulator.state.channel_messages(alerts_channel(emulator))]
        assert sum("Reopened" in (t or "") for t in thread) == 2
        assert ":warning: *Flapping* since" in words(card(emulator))


async def test_silence_while_flapping_survives_the_next_resolve_in_alertmanager(
    tmp_path: Path,
) -> None:
    require_binaries("prometheus-alertmanager")
    am = AlertmanagerServer(tmp_path / "am", webhook_url="http://127.0.0.1:9/unused")
    await asyncio.to_thread(am.start)
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    await asyncio.to_thread(schema.upgrade, url)

    def configure(settings: Settings) -> None:
        paging_alice(settings)
        settings.alertmanager_url = am.url

    # Behind the real time, so the silence starts at once for Alertmanager (not "pending").
    clock = FakeClock(datetime.now(UTC) - timedelta(minutes=30))
    try:
        async with (
            running_emulator() as (emulator, emulator_url),
            running_bot(url, emulator, emulator_url, tweak=configure, clock=clock) as bot,
        ):
            people(emulator)
            await flap(bot, clock, "HighErrorRate", times=3)
            shown = card(emulator)
            assert ids.SILENCE_FLAPPING in buttons(shown)
            await press(bot, emulator, ids.SILENCE_FLAPPING, "1", ALICE, shown)
            await eventually(lambda: active(am.url), what="a silence in Alertmanager")
            await settle(bot, clock)
            said = [m.text for m in emulator.state.channel_messages(incident_channel(emulator))]
            assert any((t or "").startswith("Silenced while flapping by <@") for t in said)

            _, resolve = toggled("HighErrorRate", 3)
            await step(bot, clock, 60.0)
            await bot.post_alerts(resolve)  # the group resolves again
            await settle(bot, clock)
            assert (await bot.app.services.incidents.get(1)).status.value == "resolved"
            found = await silences_of(am.url)
            assert [s["status"]["state"] for s in found] == ["active"]
            assert ids.UNSILENCE in buttons(card(emulator))
    finally:
        await asyncio.to_thread(am.stop)


async def silences_of(am_url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"{am_url}/api/v2/silences") as r:
        found: list[dict[str, Any]] = await r.json()
        return found


async def active(am_url: str) -> bool:
    return any(s["status"]["state"] == "active" for s in await silences_of(am_url))
