"""End to end: real Prometheus fires a rule, real Alertmanager posts to a running `tocsin serve`.

The test sees exactly one incident channel in the Slack emulator, the pinned card with its five
buttons, and, once the rule stops firing, the same card updated in place.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.slack import ids
from tests.end_to_end.test_realservers import RULES
from tests.harness import ServeProcess, bot_env, eventually, running_emulator, settled
from tests.realservers import (
    AlertmanagerServer,
    MetricSource,
    PrometheusServer,
    free_port,
    require_binaries,
)

pytestmark = pytest.mark.integration
TOKEN = "am-to-tocsin"


def _card_blocks(call_params: dict) -> list[dict]:  # type: ignore[type-arg]
    blocks = call_params["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks  # type: ignore[no-any-return]


async def test_firing_rule_opens_one_channel_and_resolution_updates_the_card(
    tmp_path: Path,
) -> None:
    require_binaries("prometheus", "prometheus-alertmanager")
    port = free_port()
    config = tmp_path / "tocsin.yml"
    config.write_text("alerts_channel: alerts\nauto_resolve: true\n")
    async with running_emulator() as (emulator, emulator_url):
        env = bot_env(
            f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}",
            emulator_url,
            TOCSIN_WEBHOOK_TOKEN=TOKEN,
        )
        serve = ServeProcess({**env}, port, tmp_path / "tocsin.log")
        serve.env["TOCSIN_CONFIG"] = str(config)
        source = MetricSource()
        source.start()
        source.set("tocsin_test_errors", 3, {"service": "api"})
        alertmanager = AlertmanagerServer(
            tmp_path, webhook_url=f"{serve.url}/webhooks/alertmanager", bearer_token=TOKEN
        )
        prometheus = PrometheusServer(
            tmp_path, scrape_targets=[source.url], rules=RULES, alertmanager_url=None
        )
        try:
            await serve.start()
            await asyncio.to_thread(alertmanager.start)
            prometheus.alertmanager_url = alertmanager.url
            await asyncio.to_thread(prometheus.start)

            await eventually(
                lambda: len(emulator.calls_to("pins.add")) == 1, timeout=60, what="a pinned card"
            )
            created = [
                c
                for c in emulator.calls_to("conversations.create")
                if c.response.get("ok") and c.params["name"].startswith("inc-")
            ]
            assert len(created) == 1
            channel = created[0].response["channel"]["id"]
            pinned_ts = emulator.calls_to("pins.add")[0].params["timestamp"]
            card = next(
                c
                for c in emulator.calls_to("chat.postMessage")
                if c.response.get("ts") == pinned_ts
            )
            actions = next(b for b in _card_blocks(card.params) if b["type"] == "actions")
            assert [e["action_id"] for e in actions["elements"]] == list(ids.CARD_ACTIONS)

            source.set("tocsin_test_errors", 0, {"service": "api"})

            def updated_resolved() -> bool:
                return any(
                    c.params.get("ts") == pinned_ts
                    and c.params.get("channel") == channel
                    and "All alerts resolved" in json.dumps(c.params.get("blocks"))
                    for c in emulator.calls_to("chat.update")
                )

            await eventually(updated_resolved, timeout=60, what="the card updated to resolved")
            # Whatever the resolution set in motion is done: a duplicate would be among it.
            await eventually(lambda: settled(serve.url), timeout=60, what="the outbox drained")
            assert (
                len(
                    [
                        c
                        for c in emulator.calls_to("conversations.create")
                        if c.params["name"].startswith("inc-")
                    ]
                )
                == 1
            )
            assert len(emulator.calls_to("pins.add")) == 1
        finally:
            await asyncio.to_thread(prometheus.stop)
            await asyncio.to_thread(alertmanager.stop)
            source.stop()
            serve.stop()
