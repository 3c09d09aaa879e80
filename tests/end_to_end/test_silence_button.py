"""Silence 1h creates a real silence in a real Alertmanager; Unsilence expires it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from bot.config import Settings
from bot.slack import ids
from tests.builders import contract_payload
from tests.harness import eventually, running_bot, running_emulator
from tests.realservers import AlertmanagerServer, require_binaries

pytestmark = pytest.mark.integration


async def silences(am_url: str) -> list[dict]:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as s, s.get(f"{am_url}/api/v2/silences") as r:
        return await r.json()  # type: ignore[no-any-return]


async def test_silence_and_unsilence_through_the_card(tmp_path: Path) -> None:
    require_binaries("prometheus-alertmanager")
    am = AlertmanagerServer(tmp_path, webhook_url="http://127.0.0.1:9/unused")
    await asyncio.to_thread(am.start)
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    from bot.store import schema

    await asyncio.to_thread(schema.upgrade, url)

    def configure(settings: Settings) -> None:
        settings.alertmanager_url = am.url

    try:
        async with (
            running_emulator() as (emulator, emulator_url),
            running_bot(url, emulator, emulator_url, tweak=configure) as bot,
        ):
            emulator.add_user("U0ALICE01", "alice")
            await bot.post_alerts(contract_payload("alertmanager-0.25-captured-1-firing.json"))
            await eventually(lambda: len(emulator.calls_to("pins.add")) == 1, what="card pinned")
            pin = emulator.calls_to("pins.add")[0].params
            channel, ts = pin["channel"], pin["timestamp"]

            reply = await emulator.send_block_action(
                f"{bot.url}/slack/events",
                action_id=ids.SILENCE_1H,
                value="1",
                user_id="U0ALICE01",
                channel_id=channel,
                message_ts=ts,
            )
            assert reply.status == 200

            async def silenced() -> bool:
                return any(s["status"]["state"] == "active" for s in await silences(am.url))

            await eventually(silenced, what="an active silence in Alertmanager")
            (silence,) = await silences(am.url)
            # Exactly the incident's alerts: every label they share, not only the route's
            # grouping (`alertname`), which would silence the other services' alerts too.
            assert {(m["name"], m["value"]) for m in silence["matchers"]} == {
                ("alertname", "HighErrorRate"),
                ("service", "api"),
                ("severity", "critical"),
            }
            assert all(m["isEqual"] and not m["isRegex"] for m in silence["matchers"])
            assert silence["createdBy"] == "alice"  # her name, as Alertmanager's UI shows it
            incident = await bot.app.services.incidents.get(1)
            assert incident.silence_id == silence["id"]

            def card_offers_unsilence() -> bool:
                return any(
                    c.params.get("ts") == ts and ids.UNSILENCE in json.dumps(c.params["blocks"])
                    for c in emulator.calls_to("chat.update")
                )

            await eventually(card_offers_unsilence, what="card updated with Unsilence")
            message = emulator.state.message(channel, ts)
            assert message is not None
            shown = json.dumps(message.blocks, ensure_ascii=False)
            assert "*Silenced* until <!date^" in shown
            assert "by <@U0ALICE01> — matching `alertname=HighErrorRate` `service=api`" in shown

            await emulator.send_block_action(
                f"{bot.url}/slack/events",
                action_id=ids.UNSILENCE,
                value="1",
                user_id="U0ALICE01",
                channel_id=channel,
                message_ts=ts,
            )

            async def expired() -> bool:
                return all(s["status"]["state"] == "expired" for s in await silences(am.url))

            await eventually(expired, what="the silence expired")
            kinds = [e.kind for e in await bot.app.services.incidents.timeline(1)]
            assert "silenced" in kinds and "unsilenced" in kinds
    finally:
        await asyncio.to_thread(am.stop)
