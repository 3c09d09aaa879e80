"""POST /webhooks/sentry against a running Tocsin and the Slack emulator (contracts 4.1)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.config import SHIPPED_PLAYBOOKS, Settings
from bot.domain.incidents import IncidentStatus, Severity
from bot.store.models import AlertRow, IncidentRow, WebhookReceiptRow
from tests.builders import contract_payload
from tests.harness import RunningBot, eventually, running_bot, running_emulator

SECRET = "whsec"
ISSUE_ID = "1170820242"


def with_secret(settings: Settings) -> None:
    settings.sentry_webhook_secret = SecretStr(SECRET)


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[RunningBot]:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=with_secret) as running,
    ):
        yield running


@pytest.fixture
async def unconfigured(database_url: str) -> AsyncIterator[RunningBot]:
    """A bot with no SENTRY_WEBHOOK_SECRET."""
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as running,
    ):
        yield running


@pytest.fixture
async def front_end_playbook(database_url: str, tmp_path: Path) -> AsyncIterator[RunningBot]:
    """A bot whose playbooks add one for Sentry project front-end that never auto-resolves."""
    folder = tmp_path / "playbooks"
    shutil.copytree(SHIPPED_PLAYBOOKS, folder, ignore=shutil.ignore_patterns("rules", "*.md"))
    (folder / "front-end.yml").write_text(
        "# Front-end errors need a human to confirm the fix.\n"
        "name: FrontEnd\n"
        "match:\n"
        "  sentry_project: front-end\n"
        "severity: sev1\n"
        "runbook: https://runbooks.example.com/front-end\n"
        "auto_resolve: false\n"
    )

    def tweak(settings: Settings) -> None:
        with_secret(settings)
        settings.playbooks_dir = folder

    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=tweak) as running,
    ):
        yield running


def sign(body: bytes, secret: str = SECRET) -> str:
    """Sentry's Sentry-Hook-Signature: lowercase hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, indent=2).encode()


async def post_sentry(
    bot: RunningBot,
    body: bytes,
    *,
    resource: str | None = "issue",
    signature: str | None = "sign",
) -> tuple[int, Any]:
    """POST raw bytes as Sentry does; `signature="sign"` signs them with the right secret."""
    headers = {
        "Content-Type": "application/json",
        "Request-ID": "8b1a3f1c0d2e4c5f9a7b6c5d4e3f2a1b",
        "Sentry-Hook-Timestamp": "1566248777",
    }
    if resource is not None:
        headers["Sentry-Hook-Resource"] = resource
    if signature == "sign":
        headers["Sentry-Hook-Signature"] = sign(body)
    elif signature is not None:
        headers["Sentry-Hook-Signature"] = signature
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{bot.url}/webhooks/sentry", data=body, headers=headers) as response,
    ):
        try:
            answer = await response.json(content_type=None)
        except ValueError:
            answer = await response.text()
        return response.status, answer


async def rows(bot: RunningBot, model: type) -> int:
    async with bot.app.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def incident_channels(bot: RunningBot) -> list[dict[str, Any]]:
    return [
        c.response["channel"]
        for c in bot.emulator.calls_to("conversations.create")
        if c.response.get("ok") and c.response["channel"]["name"].startswith("inc-")
    ]


def issue_payload(action: str = "created", *, issue_id: str = ISSUE_ID) -> dict[str, Any]:
    payload = copy.deepcopy(contract_payload("sentry-issue-created.json"))
    payload["action"] = action
    payload["data"]["issue"]["id"] = issue_id
    if action == "resolved":
        payload["data"]["issue"]["status"] = "resolved"
        payload["data"]["issue"]["statusDetails"] = {"inRelease": None}
    return payload


def metric_payload(action: str) -> dict[str, Any]:
    payload = copy.deepcopy(contract_payload("sentry-metric-alert.json"))
    payload["action"] = action
    if action != "resolved":
        payload["data"]["description_title"] = "Critical: Too many errors"
        payload["data"]["metric_alert"]["status"] = 20
    return payload


async def wait_for_card(bot: RunningBot, incident_id: int) -> str:
    """Wait until the incident's card is pinned; return its ts."""
    incident = await bot.app.services.incidents.get(incident_id)

    async def pinned() -> bool:
        nonlocal incident
        incident = await bot.app.services.incidents.get(incident_id)
        return incident.card_ts is not None and any(
            c.params.get("timestamp") == incident.card_ts for c in bot.emulator.calls_to("pins.add")
        )

    await eventually(pinned, what=f"card of incident #{incident_id} pinned")
    assert incident.card_ts is not None
    return incident.card_ts


async def wait_for_resolved_card(bot: RunningBot, card_ts: str) -> None:
    def resolved() -> bool:
        return any(
            c.params.get("ts") == card_ts and "*Status*\\nresolved" in json.dumps(c.params)
            for c in bot.emulator.calls_to("chat.update")
        )

    await eventually(resolved, what="the card updated to resolved")


async def test_signed_issue_opens_one_incident_and_resolves_with_sentry(bot: RunningBot) -> None:
    created = encode(issue_payload("created"))
    code, answer = await post_sentry(bot, created)
    assert (code, answer["ok"], answer["decision"]) == (200, True, "open")
    incident_id = answer["incident"]
    card_ts = await wait_for_card(bot, incident_id)
    channels = incident_channels(bot)
    assert len(channels) == 1
    assert channels[0]["name"].startswith("inc-")
    incident = await bot.app.services.incidents.get(incident_id)
    assert incident.channel_id == channels[0]["id"]
    assert incident.status is IncidentStatus.TRIGGERED
    assert incident.key.startswith("sentry:")

    # Sentry (or a proxy) delivering the same body again changes nothing.
    code, answer = await post_sentry(bot, created)
    assert (code, answer["decision"]) == (200, "duplicate")
    assert await rows(bot, IncidentRow) == 1
    assert await rows(bot, WebhookReceiptRow) == 1

    code, answer = await post_sentry(bot, encode(issue_payload("resolved")))
    assert (code, answer["decision"], answer["incident"]) == (200, "update", incident_id)
    resolved = await bot.app.services.incidents.get(incident_id)
    assert resolved.status is IncidentStatus.RESOLVED
    assert resolved.resolved_at is not None
    timeline = await bot.app.services.incidents.timeline(incident_id)
    assert [(e.kind, e.actor) for e in timeline if e.kind == "resolve"] == [("resolve", "tocsin")]
    await wait_for_resolved_card(bot, card_ts)
    assert len(incident_channels(bot)) == 1
    assert await rows(bot, IncidentRow) == 1


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(sign(b"", "whsec"), id="signature-of-empty-body"),
        pytest.param(sign(encode(issue_payload()), "not-the-secret"), id="forged"),
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param(sign(encode(issue_payload("resolved"))), id="other-body"),
        pytest.param("sha256=" + sign(encode(issue_payload())), id="prefixed"),
    ],
)
async def test_bad_signatures_get_401_and_write_nothing(
    bot: RunningBot, signature: str | None
) -> None:
    code, answer = await post_sentry(bot, encode(issue_payload()), signature=signature)
    assert code == 401
    assert "Sentry-Hook-Signature" in answer["error"]
    for model in (IncidentRow, WebhookReceiptRow, AlertRow):
        assert await rows(bot, model) == 0
    assert incident_channels(bot) == []


async def test_without_a_configured_secret_everything_is_refused(unconfigured: RunningBot) -> None:
    body = encode(issue_payload())
    for signature in (sign(body), sign(body, ""), None):
        code, _ = await post_sentry(unconfigured, body, signature=signature)
        assert code == 401
    for model in (IncidentRow, WebhookReceiptRow, AlertRow):
        assert await rows(unconfigured, model) == 0


@pytest.mark.parametrize(
    ("body", "resource", "reason"),
    [
        pytest.param(b'{"action": "created", "data": ', "issue", "not valid JSON", id="truncated"),
        pytest.param(b"\xff\xfe not utf-8", "issue", "not valid JSON", id="binary"),
        pytest.param(b"[1, 2, 3]", "issue", "JSON object", id="array"),
        pytest.param(b'{"action": "created"}', "issue", "data", id="no-data"),
        pytest.param(
            b'{"action": "created", "data": {"issue": {"id": "1"}}}',
            "issue",
            "data.issue",
            id="thin",
        ),
        pytest.param(encode(issue_payload()), None, "Sentry-Hook-Resource", id="no-resource"),
    ],
)
async def test_malformed_but_signed_bodies_get_400_with_a_reason(
    bot: RunningBot, body: bytes, resource: str | None, reason: str
) -> None:
    code, answer = await post_sentry(bot, body, resource=resource)
    assert code == 400
    assert reason in answer["error"]
    assert "Traceback" not in json.dumps(answer)
    for model in (IncidentRow, WebhookReceiptRow, AlertRow):
        assert await rows(bot, model) == 0


async def test_installation_and_other_resources_are_acknowledged_and_ignored(
    bot: RunningBot,
) -> None:
    installation = {
        "action": "created",
        "installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"},
        "data": {"installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"}},
        "actor": {"type": "user", "id": "1", "name": "Ada"},
    }
    code, answer = await post_sentry(bot, encode(installation), resource="installation")
    assert (code, answer) == (200, {"ok": True, "decision": "ignored"})
    # An issue being assigned is not a new problem either.
    code, answer = await post_sentry(bot, encode(issue_payload("assigned")))
    assert (code, answer["decision"]) == (200, "ignored")
    assert await rows(bot, IncidentRow) == 0
    assert incident_channels(bot) == []


async def test_metric_alert_critical_opens_and_resolved_resolves(bot: RunningBot) -> None:
    code, answer = await post_sentry(
        bot, encode(metric_payload("critical")), resource="metric_alert"
    )
    assert (code, answer["decision"]) == (200, "open")
    incident_id = answer["incident"]
    card_ts = await wait_for_card(bot, incident_id)
    opened = await bot.app.services.incidents.get(incident_id)
    assert opened.status is IncidentStatus.TRIGGERED
    assert "Too many errors" in opened.title

    code, answer = await post_sentry(
        bot, encode(metric_payload("resolved")), resource="metric_alert"
    )
    assert (code, answer["decision"], answer["incident"]) == (200, "update", incident_id)
    resolved = await bot.app.services.incidents.get(incident_id)
    assert resolved.status is IncidentStatus.RESOLVED
    await wait_for_resolved_card(bot, card_ts)
    assert len(incident_channels(bot)) == 1


async def test_event_alert_opens_the_incident_of_its_issue(bot: RunningBot) -> None:
    event = contract_payload("sentry-event-alert.json")
    issue_id = event["data"]["event"]["issue_id"]
    code, answer = await post_sentry(bot, encode(event), resource="event_alert")
    assert (code, answer["decision"]) == (200, "open")
    incident_id = answer["incident"]
    await wait_for_card(bot, incident_id)
    incident = await bot.app.services.incidents.get(incident_id)
    assert incident.key.startswith("sentry:") and issue_id in incident.key

    # The issue webhook of the same issue (same project) joins that incident.
    code, answer = await post_sentry(bot, encode(issue_payload("created", issue_id=issue_id)))
    assert (code, answer["decision"], answer["incident"]) == (200, "update", incident_id)
    assert await rows(bot, IncidentRow) == 1
    assert len(incident_channels(bot)) == 1


async def test_timeline_credits_sentry_for_what_sentry_sent(bot: RunningBot) -> None:
    code, answer = await post_sentry(bot, encode(issue_payload("created")))
    assert code == 200
    events = await bot.app.services.incidents.timeline(answer["incident"])
    opened = next(e for e in events if e.kind == "opened")
    assert opened.actor == "sentry"
    assert all(e.actor != "alertmanager" for e in events)


async def test_a_sentry_project_playbook_applies_and_can_keep_the_incident_open(
    front_end_playbook: RunningBot,
) -> None:
    bot = front_end_playbook
    code, answer = await post_sentry(bot, encode(issue_payload("created")))
    assert (code, answer["decision"]) == (200, "open")
    incident_id = answer["incident"]
    incident = await bot.app.services.incidents.get(incident_id)
    assert (incident.playbook, incident.severity) == ("FrontEnd", Severity.SEV1)
    assert incident.runbook == "https://runbooks.example.com/front-end"
    assert incident.auto_resolve is False
    await wait_for_card(bot, incident_id)

    code, answer = await post_sentry(bot, encode(issue_payload("resolved")))
    assert (code, answer["decision"]) == (200, "update")
    still = await bot.app.services.incidents.get(incident_id)
    assert still.status is IncidentStatus.TRIGGERED
    kinds = [e.kind for e in await bot.app.services.incidents.timeline(incident_id)]
    assert "alerts_resolved" in kinds and "resolve" not in kinds


async def test_a_regressed_issue_reopens_its_incident_in_the_same_channel(bot: RunningBot) -> None:
    code, answer = await post_sentry(bot, encode(issue_payload("created")))
    incident_id = answer["incident"]
    await wait_for_card(bot, incident_id)
    await post_sentry(bot, encode(issue_payload("resolved")))
    assert (await bot.app.services.incidents.get(incident_id)).status is IncidentStatus.RESOLVED

    regressed = issue_payload("unresolved")
    regressed["data"]["issue"]["substatus"] = "regressed"
    code, answer = await post_sentry(bot, encode(regressed))
    assert (code, answer["decision"], answer["incident"]) == (200, "reopen", incident_id)
    assert (await bot.app.services.incidents.get(incident_id)).status is IncidentStatus.TRIGGERED
    assert len(incident_channels(bot)) == 1


async def test_two_issues_of_one_project_are_two_incidents(bot: RunningBot) -> None:
    first = await post_sentry(bot, encode(issue_payload("created", issue_id="101")))
    second = await post_sentry(bot, encode(issue_payload("created", issue_id="102")))
    assert first[1]["decision"] == second[1]["decision"] == "open"
    assert first[1]["incident"] != second[1]["incident"]
    await eventually(lambda: len(incident_channels(bot)) == 2, what="two incident channels")
