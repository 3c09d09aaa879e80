"""PagerDuty and Opsgenie as escalation targets, against fakes that follow their documented
APIs: one alert per incident, acknowledged and resolved as the Tocsin incident is; 429 and 5xx
tried again; a 400 named in the channel and not tried again; a webhook target gets the
incident, signed; no key is ever shown."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.clock import FakeClock
from bot.config import Settings
from bot.config.people import NotifyConfig
from bot.config.policies import EscalationConfig, LevelConfig, PolicyConfig
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from tests.builders import make_alert, make_payload
from tests.fakes.paging_services import FakeOpsgenie, FakePagerDuty
from tests.harness import RunningBot, running_bot, running_emulator, step
from tests.realservers import Received, local_endpoint
from tests.slack.test_card_truth import ALICE, card, click, incident_channel, people, settle

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"  # 32 characters, as PagerDuty's are
KEY = "tocsin-incident-1"
SECRET = "hook-secret-5e6f"


@dataclass
class World:
    bot: RunningBot
    emulator: SlackEmulator
    clock: FakeClock
    pagerduty: FakePagerDuty
    opsgenie: FakeOpsgenie
    hooks: list[Received]

    async def press(self, action: str) -> None:
        """Press a card button as Alice; wait until the click was acted on and its work done."""
        await click(self.bot, self.emulator, action, ALICE, card(self.emulator), self.clock)

    def said(self) -> list[str]:
        channel = incident_channel(self.emulator)
        return [m.text or "" for m in self.emulator.state.channel_messages(channel)]


@asynccontextmanager
async def world(database_url: str, *, routing_key: str = ROUTING_KEY) -> AsyncIterator[World]:
    pagerduty, opsgenie = FakePagerDuty(), FakeOpsgenie()
    pd_url, og_url = await pagerduty.start(), await opsgenie.start()
    clock = FakeClock(datetime.now(UTC))

    def tweak(settings: Settings) -> None:
        targets = [ALICE, "pagerduty:payments", "opsgenie:ops", "webhook:audit"]
        settings.escalation = EscalationConfig(
            default="standard",
            policies=[
                PolicyConfig(name="standard", levels=[LevelConfig(targets=targets, timeout="30m")])
            ],
        )
        settings.notify = NotifyConfig.model_validate(
            {
                "pagerduty": {"payments": {"routing_key": routing_key, "url": pd_url}},
                "opsgenie": {"ops": {"api_key": opsgenie.api_key, "url": og_url}},
                "webhooks": {
                    "audit": {"url": f"http://127.0.0.1:{hook_port}/hook", "secret": SECRET}
                },
            }
        )

    try:
        async with (
            local_endpoint(204) as (hooks, hook_port),
            running_emulator() as (emulator, url),
            running_bot(database_url, emulator, url, clock=clock, tweak=tweak) as bot,
        ):
            people(emulator)
            yield World(bot, emulator, clock, pagerduty, opsgenie, hooks)
    finally:
        await pagerduty.stop()
        await opsgenie.stop()


def firing() -> dict[str, Any]:
    alert = make_alert("DiskFull", severity="critical", instance="db-1")
    common = {"alertname": "DiskFull", "severity": "critical"}
    return make_payload([alert], group="DiskFull", commonLabels=common)


async def test_one_alert_per_incident_acknowledged_and_resolved_as_the_incident_is(
    database_url: str,
) -> None:
    async with world(database_url) as w:
        await w.bot.post_alerts(firing())
        await settle(w.bot, w.clock)
        await w.bot.post_alerts(firing())  # Alertmanager's repeat: no second trigger
        await settle(w.bot, w.clock)
        assert w.pagerduty.opened == [(ROUTING_KEY, KEY)]
        alert = w.pagerduty.alerts[(ROUTING_KEY, KEY)]
        assert alert["status"] == "triggered" and alert["triggers"] == 1
        assert alert["event"]["payload"]["severity"] == "critical"
        assert alert["event"]["payload"]["summary"] == "#1 DiskFull"
        assert w.opsgenie.opened == [KEY] and w.opsgenie.alerts[KEY]["alert"]["priority"] == "P1"
        assert any(
            t.startswith(
                ":rotating_light: Paging level 1: <@U0ALICE01> (and PagerDuty payments, "
                "Opsgenie ops, webhook audit)"
            )
            for t in w.said()
        ), w.said()

        await w.press(ids.ACKNOWLEDGE)
        assert alert["status"] == "acknowledged" and w.opsgenie.alerts[KEY]["acknowledged"]
        await w.press(ids.RESOLVE)
        assert alert["status"] == "resolved" and w.opsgenie.alerts[KEY]["status"] == "closed"
        assert [e["event_action"] for e in w.pagerduty.requests] == [
            "trigger",
            "acknowledge",
            "resolve",
        ]

        assert [hook.json()["event"] for hook in w.hooks] == ["trigger", "acknowledge", "resolve"]
        for hook in w.hooks:
            expected = hmac.new(SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
            assert hook.headers["X-Tocsin-Signature"] == f"sha256={expected}"
            assert hook.json()["dedup_key"] == KEY
            assert hook.json()["incident"]["title"] == "DiskFull"
        timeline = [e.rich.text for e in await w.bot.app.services.incidents.timeline(1)]
        assert "PagerDuty payments: acknowledge sent" in timeline


async def test_429_and_5xx_are_tried_again_until_the_trigger_is_accepted(database_url: str) -> None:
    async with world(database_url) as w:
        w.pagerduty.fail_next(429)
        w.pagerduty.fail_next(503)
        w.opsgenie.fail_next(500)
        await w.bot.post_alerts(firing())
        await settle(w.bot, w.clock)
        for _ in range(6):  # the retries' backoff, on the fake clock
            await step(w.bot, w.clock, 10)
            await settle(w.bot, w.clock)
        assert [e["event_action"] for e in w.pagerduty.requests] == ["trigger"] * 3
        assert w.pagerduty.opened == [(ROUTING_KEY, KEY)]
        assert w.opsgenie.opened == [KEY] and len(w.opsgenie.requests) == 2
        assert not [t for t in w.said() if "refused" in t]


async def test_a_400_is_named_in_the_channel_and_not_tried_again(database_url: str) -> None:
    wrong = "short-key-9a8b7c"
    async with world(database_url, routing_key=wrong) as w:
        await w.bot.post_alerts(firing())
        await settle(w.bot, w.clock)
        await step(w.bot, w.clock, 60)
        await settle(w.bot, w.clock)
        assert len(w.pagerduty.requests) == 1 and w.pagerduty.opened == []
        refused = [t for t in w.said() if t.startswith(":warning: PagerDuty payments refused")]
        assert refused == [
            ":warning: PagerDuty payments refused the trigger: 400 Event object is invalid; "
            "Length of 'routing_key' is incorrect (should be 32 characters)"
        ]
        everything = json.dumps([m.text for m in w.emulator.state.messages])
        timeline = [e.rich.text for e in await w.bot.app.services.incidents.timeline(1)]
        for where in (everything, "\n".join(timeline)):
            assert wrong not in where and w.opsgenie.api_key not in where and SECRET not in where
