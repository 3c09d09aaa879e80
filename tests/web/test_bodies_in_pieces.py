"""Bodies as real networks deliver them: in many TCP segments with pauses, chunked with no
Content-Length, and close to the size limit. Every route that reads a body takes them whole;
only a body over the limit is refused (413), and every refusal is logged with its reason."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.config import Settings
from bot.slack.emulator import sign_request
from bot.store.models import AlertRow, IncidentRow
from tests.builders import contract_payload, make_alert, make_payload
from tests.harness import SIGNING_SECRET, RunningBot, running_bot, running_emulator
from tests.rawhttp import pieces, send_raw

TOKEN = "hook-token-123"
SENTRY_SECRET = "whsec"
JSON = {"Content-Type": "application/json"}
BEARER = {**JSON, "Authorization": f"Bearer {TOKEN}"}


def with_sentry(settings: Settings) -> None:
    settings.sentry_webhook_secret = SecretStr(SENTRY_SECRET)


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[RunningBot]:
    async with (
        running_emulator() as (emulator, url),
        running_bot(
            database_url, emulator, url, tweak=with_sentry, TOCSIN_WEBHOOK_TOKEN=TOKEN
        ) as running,
    ):
        yield running


def storm_body(alerts: int) -> bytes:
    """One Alertmanager notification carrying `alerts` firing alerts of one group."""
    body = make_payload(
        [
            make_alert(service="api", instance=f"10.0.{i // 250}.{i % 250}:9100")
            for i in range(alerts)
        ]
    )
    return json.dumps(body).encode()


def big_sentry_body(size: int) -> bytes:
    """A Sentry issue-alert webhook padded with breadcrumbs to about `size` bytes."""
    payload: dict[str, Any] = copy.deepcopy(contract_payload("sentry-event-alert.json"))
    crumb = {"category": "http", "message": "GET /api/checkout 500 " + "x" * 200, "level": "error"}
    count = size // (len(json.dumps(crumb)) + 2)
    payload["data"]["event"]["breadcrumbs"] = {"values": [crumb] * count}
    return json.dumps(payload).encode()


def sentry_headers(body: bytes) -> dict[str, str]:
    signature = hmac.new(SENTRY_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        **JSON,
        "Sentry-Hook-Resource": "event_alert",
        "Sentry-Hook-Timestamp": "1566248777",
        "Sentry-Hook-Signature": signature,
    }


async def count(bot: RunningBot, model: type) -> int:
    async with bot.app.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_900kb_notification_in_pieces_is_accepted(bot: RunningBot, chunked: bool) -> None:
    body = storm_body(2550)
    assert 880_000 < len(body) < bot.app.settings.webhook_max_bytes
    answer = await send_raw(
        f"{bot.url}/webhooks/alertmanager", pieces(body, 12), headers=BEARER, chunked=chunked
    )
    assert answer.status == 200, answer.body[:300]
    assert answer.json()["decision"] == "open"
    assert await count(bot, AlertRow) == 2550


async def test_a_slow_sender_trickling_a_small_notification_is_accepted(bot: RunningBot) -> None:
    body = json.dumps(contract_payload("alertmanager-0.25-captured-1-firing.json")).encode()
    answer = await send_raw(
        f"{bot.url}/webhooks/alertmanager", pieces(body, 40), headers=BEARER, pause=0.02
    )
    assert (answer.status, answer.json()["decision"]) == (200, "open")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_600kb_sentry_alert_in_pieces_keeps_its_signature(
    bot: RunningBot, chunked: bool
) -> None:
    body = big_sentry_body(600_000)
    assert len(body) > 590_000
    answer = await send_raw(
        f"{bot.url}/webhooks/sentry",
        pieces(body, 10),
        headers=sentry_headers(body),
        chunked=chunked,
    )
    assert answer.status == 200, answer.body[:300]
    assert answer.json()["decision"] == "open"
    assert await count(bot, IncidentRow) == 1


async def test_a_slash_command_in_pieces_is_verified_and_answered(bot: RunningBot) -> None:
    form = urlencode(
        {
            "command": "/incident",
            "text": "help",
            "user_id": "U0DANA001",
            "channel_id": "C0GENERAL1",
            "team_id": "T0EMULATOR",
            "response_url": f"{bot.emulator.base_url}response/none",
            "trigger_id": "1.2.3",
        }
    ).encode()
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": sign_request(SIGNING_SECRET, stamp, form),
    }
    for chunked in (False, True):
        answer = await send_raw(
            f"{bot.url}/slack/events", pieces(form, 5), headers=headers, chunked=chunked
        )
        assert answer.status == 200, answer.body


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("route", ["alertmanager", "sentry"])
async def test_a_body_over_the_limit_is_still_413_and_logged(
    bot: RunningBot, chunked: bool, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    limit = bot.app.settings.webhook_max_bytes
    body = b'{"pad": "' + b"x" * limit + b'"}'
    headers = BEARER if route == "alertmanager" else sentry_headers(body)
    with caplog.at_level(logging.WARNING):
        answer = await send_raw(
            f"{bot.url}/webhooks/{route}", pieces(body, 8), headers=headers, chunked=chunked
        )
    assert answer.status == 413
    assert f"larger than {limit} bytes" in answer.json()["error"]
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any(route in line and "larger than" in line for line in refusals), refusals
    assert await count(bot, IncidentRow) == 0


async def test_every_refusal_is_logged_with_its_reason(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        bad_json = await send_raw(
            f"{bot.url}/webhooks/alertmanager", [b"{not json"], headers=BEARER
        )
        no_token = await send_raw(f"{bot.url}/webhooks/alertmanager", [b"{}"], headers=JSON)
        bad_sig = await send_raw(
            f"{bot.url}/webhooks/sentry",
            [b"{}"],
            headers={**JSON, "Sentry-Hook-Signature": "0" * 64},
        )
    assert (bad_json.status, no_token.status, bad_sig.status) == (400, 401, 401)
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any("alertmanager" in line and "not valid JSON" in line for line in lines), lines
    assert any("alertmanager" in line and "bearer token" in line for line in lines), lines
    assert any("sentry" in line and "Sentry-Hook-Signature" in line for line in lines), lines
    assert all(TOKEN not in line and SENTRY_SECRET not in line for line in lines)
