"""POST /webhooks/alertmanager against a running Tocsin and the Slack emulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.slack import ids
from bot.store.models import AlertRow, IncidentRow, WebhookReceiptRow
from tests.builders import contract_payload, make_alert, make_payload
from tests.harness import RunningBot, eventually, running_bot, running_emulator

TOKEN = "hook-token-123"


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[RunningBot]:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, TOCSIN_WEBHOOK_TOKEN=TOKEN) as running,
    ):
        yield running


async def rows(bot: RunningBot, model: type) -> int:
    async with bot.app.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def incident_channels(bot: RunningBot) -> list[dict]:  # type: ignore[type-arg]
    return [
        c.response["channel"]
        for c in bot.emulator.calls_to("conversations.create")
        if c.response.get("ok") and c.response["channel"]["name"].startswith("inc-")
    ]


@pytest.mark.parametrize(
    ("body", "token", "status", "reason"),
    [
        (contract_payload("alertmanager-0.25-captured-1-firing.json"), None, 401, "bearer"),
        (contract_payload("alertmanager-0.25-captured-1-firing.json"), "wrong", 401, "bearer"),
        ("{not json", TOKEN, 400, "not valid JSON"),
        (
            {**contract_payload("alertmanager-0.25-captured-1-firing.json"), "version": "3"},
            TOKEN,
            400,
            "version",
        ),
        ({"version": "4", "status": "firing", "alerts": []}, TOKEN, 400, "groupKey"),
        (
            make_payload([{"status": "firing", "labels": {"alertname": "X"}}]),
            TOKEN,
            400,
            "startsAt",
        ),
        (make_payload([make_alert(starts_at="yesterday")]), TOKEN, 400, "startsAt"),
        ([1, 2, 3], TOKEN, 400, "object"),
    ],
)
async def test_bad_input_gets_a_4xx_with_a_reason_and_writes_nothing(
    bot: RunningBot, body: object, token: str | None, status: int, reason: str
) -> None:
    code, answer = await bot.post_alerts(body, token=token)
    assert code == status
    assert reason in answer["error"]
    assert "Traceback" not in json.dumps(answer)
    for model in (WebhookReceiptRow, IncidentRow, AlertRow):
        assert await rows(bot, model) == 0


async def test_oversized_body_is_refused_with_413(bot: RunningBot) -> None:
    big = make_payload([make_alert(service="api")])
    big["commonAnnotations"] = {"description": "x" * 1_100_000}
    code, answer = await bot.post_alerts(big, token=TOKEN)
    assert code == 413
    assert "larger than" in answer["error"]
    assert await rows(bot, WebhookReceiptRow) == 0


async def test_alert_opens_one_channel_with_a_pinned_card_and_an_announcement(
    bot: RunningBot,
) -> None:
    payload = contract_payload("alertmanager-0.25-captured-1-firing.json")
    code, answer = await bot.post_alerts(payload, token=TOKEN)
    assert (code, answer["decision"]) == (200, "open")
    # Alertmanager re-sends; the replay must not open a second channel.
    assert (await bot.post_alerts(payload, token=TOKEN))[1]["decision"] == "duplicate"
    emulator = bot.emulator
    await eventually(lambda: len(emulator.calls_to("pins.add")) == 1, what="card pinned")
    channels = incident_channels(bot)
    assert len(channels) == 1
    channel = channels[0]
    assert channel["name"].startswith("inc-") and channel["name"].endswith("-1-higherrorrate")
    pinned_ts = emulator.calls_to("pins.add")[0].params["timestamp"]
    card = next(
        c for c in emulator.calls_to("chat.postMessage") if c.response.get("ts") == pinned_ts
    )
    blocks = card.params["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    actions = next(b for b in blocks if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == list(ids.CARD_ACTIONS)
    assert [e["text"]["text"] for e in actions["elements"]] == [
        "Acknowledge",
        "Escalate",
        "Resolve",
        "Silence 1h",
        "Run diagnostics",
    ]
    topic = emulator.calls_to("conversations.setTopic")[0].params["topic"]
    # The shipped HighErrorRate playbook sets sev2 over the alert's severity=critical.
    assert "SEV2" in topic and "High error rate" in topic
    await eventually(
        lambda: any(
            f"<#{channel['id']}>" in str(c.params.get("text"))
            for c in emulator.calls_to("chat.postMessage")
        ),
        what="announcement in #alerts",
    )


async def test_resolution_updates_the_card_in_place(bot: RunningBot) -> None:
    await bot.post_alerts(contract_payload("alertmanager-0.25-captured-1-firing.json"), token=TOKEN)
    emulator = bot.emulator
    await eventually(lambda: len(emulator.calls_to("pins.add")) == 1, what="card pinned")
    await bot.post_alerts(
        contract_payload("alertmanager-0.25-captured-3-resolved.json"), token=TOKEN
    )
    pinned = emulator.calls_to("pins.add")[0].params

    def card_updates() -> list[Any]:
        return [
            c for c in emulator.calls_to("chat.update") if c.params["channel"] == pinned["channel"]
        ]

    await eventually(lambda: len(card_updates()) >= 1, what="card update")
    update = card_updates()[-1]
    assert update.params["ts"] == pinned["timestamp"]
    assert "All alerts resolved" in json.dumps(update.params["blocks"])
    assert len(incident_channels(bot)) == 1


async def test_health_ready_and_metrics(bot: RunningBot) -> None:
    await bot.post_alerts(make_payload([make_alert(service="api")]), token=TOKEN)
    await bot.post_alerts("{", token=TOKEN)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{bot.url}/healthz") as r:
            assert r.status == 200
        async with session.get(f"{bot.url}/readyz") as r:
            ready = await r.json()
            assert r.status == 200
            assert ready["checks"]["store"]["ok"] and ready["checks"]["schema"]["ok"]
        await eventually(lambda: len(bot.emulator.calls_to("pins.add")) == 1, what="card pinned")
        async with session.get(f"{bot.url}/metrics") as r:
            text = await r.text()
    assert 'tocsin_alerts_received_total{source="alertmanager"} 1.0' in text
    assert 'tocsin_webhooks_rejected_total{reason="invalid",source="alertmanager"} 1.0' in text
    assert 'tocsin_incidents_opened_total{source="alertmanager"} 1.0' in text
    assert 'tocsin_slack_calls_total{method="conversations.create",outcome="ok"} 1.0' in text
    assert "tocsin_outbox_depth" in text
    assert "tocsin_webhook_seconds_bucket" in text
