"""The sandbox page's endpoints against an in-process Tocsin with no Slack token, on both stores."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.config import load_settings
from bot.config.settings import OnCallSettings
from bot.main import SANDBOX_USER, Tocsin, build_app
from bot.sandbox import routes as sandbox_routes
from bot.sandbox.inputs import typed_mentions
from bot.sandbox.people import with_sandbox_paging
from bot.sandbox.routes import SandboxDeps
from tests.harness import eventually, settled, suspended_in
from tests.realservers import free_port


@asynccontextmanager
async def sandbox_bot(database_url: str) -> AsyncIterator[tuple[str, Tocsin]]:
    settings = load_settings({"TOCSIN_DATABASE_URL": database_url, "TOCSIN_CONFIG": ""})
    port = free_port()
    app = await build_app(settings, public_url=f"http://127.0.0.1:{port}")
    assert app.slack.emulator is not None
    runner = web.AppRunner(app.web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await app.start_background()
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        # The sandbox's Slack client calls this same server: close it (and the workers using
        # it) before the server, so no call is cut off half-way and its socket left unclosed.
        await app.close()
        await runner.cleanup()


async def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    # One connection per call, closed by the server after its answer: none is left half-closed
    # when a test stops the server right after a poll.
    headers = {"Connection": "close"}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url, json=body, headers=headers) as r,
    ):
        return r.status, await r.json(content_type=None)


async def state(url: str, channel: str | None = None, since: int | None = None) -> dict[str, Any]:
    query = "&".join(
        f"{k}={v}" for k, v in (("channel", channel), ("since", since)) if v is not None
    )
    status, body = await call("GET", f"{url}/sandbox/state?{query}")
    assert status == 200
    return body


def incident_channel(data: dict[str, Any]) -> str | None:
    return next((c["id"] for c in data["channels"] if c["name"].startswith("inc-")), None)


def card_ts(data: dict[str, Any]) -> str:
    (ts,) = re.findall(r'class="msg pinned" data-ts="([0-9.]+)"', data["channel"]["messages"])
    return ts


async def test_drill_button_command_and_restart_keep_the_workspace(database_url: str) -> None:
    async with sandbox_bot(database_url) as (url, app):
        first = await state(url)
        assert [c["name"] for c in first["channels"]] == ["alerts"]
        assert first["drills"] == ["DatabaseConnectionLoss", "HighErrorRate", "WebhookFailure"]

        status, report = await call("POST", f"{url}/sandbox/drill", {"alertname": "WebhookFailure"})
        assert status == 200, report
        assert report["done"] and not report["timed_out"]
        assert (
            report["channel"].startswith("inc-") and "-webhookfailure-drill-" in report["channel"]
        )
        assert [s["name"] for s in report["steps"]][:3] == [
            "incident opened",
            "channel created",
            "card posted",
        ]
        assert report["diagnostics"] == report["expected_diagnostics"] == 3
        # The report is done once the diagnostics are in; the pin may still be on its way.
        await eventually(lambda: settled(url), what="the drill's Slack work done")

        data = await state(url, incident_channel(await state(url)))
        channel = data["channel"]
        assert channel["pin_count"] == 1 and "[DRILL]" in channel["pins"]
        assert 'data-action-id="incident_acknowledge"' in channel["messages"]

        status, answer = await call(
            "POST",
            f"{url}/sandbox/action",
            {
                "channel": channel["id"],
                "ts": card_ts(data),
                "action_id": "incident_acknowledge",
                "block_id": "incident_actions",
            },
        )
        assert status == 200 and answer["ok"], answer

        async def acknowledged() -> bool:
            shown = (await state(url, channel["id"]))["channel"]["pins"]
            return "acknowledged by" in shown

        await eventually(acknowledged, what="the card to show the acknowledgement")

        status, answer = await call(
            "POST",
            f"{url}/sandbox/command",
            {"channel": channel["id"], "text": "/incident timeline"},
        )
        assert status == 200, answer

        async def reply_shown() -> bool:
            # The command is acknowledged first; its reply follows through the response_url.
            return (
                'class="msg ephemeral"' in (await state(url, channel["id"]))["channel"]["messages"]
            )

        await eventually(reply_shown, what="the timeline, only for the sandbox user")
        messages = (await state(url, channel["id"]))["channel"]["messages"]
        assert "Only visible to you" in messages
        assert "Acknowledged by" in messages
        emulator = app.slack.emulator
        assert emulator is not None
        (ephemeral,) = [m for m in emulator.state.messages if m.ephemeral_to]
        assert ephemeral.ephemeral_to == SANDBOX_USER
        before = len(emulator.state.messages)
        # The alerts channel, the drill's, and the DM with Tocsin when the drill's page DM'd
        # the sandbox user (whether it did depends on who is on call today).
        shown = [(c["name"], c["kind"]) for c in (await state(url))["channels"]]
        assert {name for name, kind in shown if kind != "im"} == {"alerts", report["channel"]}

    async with sandbox_bot(database_url) as (url, app):
        again = await state(url)
        assert [(c["name"], c["kind"]) for c in again["channels"]] == shown
        emulator = app.slack.emulator
        assert emulator is not None
        assert len(emulator.state.messages) == before
        assert "acknowledged by" in (await state(url, channel["id"]))["channel"]["pins"]


async def test_state_long_poll_answers_when_the_workspace_changes(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_routes, "LONG_POLL", 3600.0)  # only a change can answer it
    async with sandbox_bot(database_url) as (url, _app):
        first = await state(url)
        waiting = asyncio.create_task(state(url, first["channel"]["id"], first["revision"]))
        # The poll has reached the server and waits there for a change: answered before one,
        # it would carry the first revision.
        await eventually(lambda: suspended_in(SandboxDeps.changed_after), what="the long poll held")
        assert not waiting.done()
        status, _ = await call(
            "POST", f"{url}/sandbox/command", {"channel": first["channel"]["id"], "text": "hi <b>"}
        )
        assert status == 200
        changed = await asyncio.wait_for(waiting, 30)  # a hang guard only
        assert changed["revision"] > first["revision"]
        assert "hi &lt;b&gt;" in changed["channel"]["messages"]


async def test_declare_modal_opens_validates_and_submits(database_url: str) -> None:
    async with sandbox_bot(database_url) as (url, _app):
        alerts = (await state(url))["channel"]["id"]
        status, _ = await call(
            "POST", f"{url}/sandbox/command", {"channel": alerts, "text": "/incident declare"}
        )
        assert status == 200

        async def modal_open() -> bool:
            # The command is acknowledged first; the modal opens through views.open after.
            return (await state(url))["modal"] is not None

        await eventually(modal_open, what="the declare modal")
        modal = (await state(url))["modal"]
        assert modal["title"] == "Declare an incident" and 'name="title/value"' in modal["html"]

        submit = {"view_id": modal["id"], "values": {"title/value": " ", "severity/value": "sev2"}}
        status, answer = await call("POST", f"{url}/sandbox/view/submit", submit)
        assert status == 200 and answer == {"ok": False, "errors": {"title": "Say what is wrong."}}
        assert (await state(url))["modal"] is not None

        submit["values"]["title/value"] = "Checkout is down"
        status, answer = await call("POST", f"{url}/sandbox/view/submit", submit)
        assert status == 200 and answer["ok"]
        assert (await state(url))["modal"] is None

        async def declared() -> bool:
            return incident_channel(await state(url)) is not None

        await eventually(declared, what="the declared incident's channel")


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/sandbox/command", None, "JSON object"),
        ("/sandbox/command", {"channel": "C0NOPE", "text": "/incident help"}, "no channel"),
        ("/sandbox/command", {"channel": "#alerts", "text": "/deploy now"}, "not a command"),
        ("/sandbox/command", {"channel": "#alerts", "text": 5}, "`text`"),
        ("/sandbox/action", {"channel": "#alerts", "ts": "1.0", "action_id": "x"}, "no message"),
        ("/sandbox/view/submit", {"view_id": "V0NOPE"}, "no such open modal"),
        ("/sandbox/view/close", [], "JSON object"),
        ("/sandbox/drill", {"alertname": "NoSuchAlert"}, "no playbook for"),
        ("/sandbox/drill", {"alertname": 3}, "must be a string"),
    ],
)
async def test_bad_input_gets_a_4xx_with_a_reason(
    database_url: str, path: str, body: Any, reason: str
) -> None:
    async with sandbox_bot(database_url) as (url, _app):
        if isinstance(body, dict) and body.get("channel") == "#alerts":
            body = {**body, "channel": ""}
            body["channel"] = (await state(url))["channel"]["id"]
        async with aiohttp.ClientSession() as s:
            data = b"not json" if body is None else None
            async with s.post(f"{url}{path}", data=data, json=body if data is None else None) as r:
                assert r.status == 400
                assert reason in (await r.json())["error"]
            async with s.get(f"{url}/sandbox/state?since=-1") as r:
                assert r.status == 400
            async with s.get(f"{url}/sandbox/static/../../main.py") as r:
                assert r.status == 404


async def test_the_sandbox_has_people_a_rotation_and_a_two_level_policy(database_url: str) -> None:
    async with sandbox_bot(database_url) as (url, _app):
        first = await state(url)
        assert first["you"] == SANDBOX_USER
        assert [p["name"] for p in first["people"]] == [
            "Sandbox User",
            "Ada Lovelace",
            "Grace Hopper",
            "Alan Turing",
        ]
        (rotation,) = first["paging"]["rotations"]
        assert rotation["members"] == ["Sandbox User", "Ada Lovelace", "Grace Hopper"]
        assert rotation["now"] in rotation["members"]
        (policy,) = first["paging"]["policies"]
        assert policy["default"] and policy["name"] == "sandbox"
        assert [(lv["targets"], lv["timeout"]) for lv in policy["levels"]] == [
            (["on call in primary"], "2m"),
            (["@Alan Turing"], "2m"),
        ]
        assert policy["last_resort"] == ["@Sandbox User"]


def test_a_config_that_pages_someone_keeps_its_own_paging() -> None:
    mine = load_settings({"TOCSIN_CONFIG": ""}).model_copy(
        update={"oncall": OnCallSettings(users=["U0MINE"])}
    )
    assert with_sandbox_paging(mine) is mine
    empty = with_sandbox_paging(load_settings({"TOCSIN_CONFIG": ""}))
    assert empty.escalation.default == "sandbox" and empty.oncall.users == [SANDBOX_USER]


async def test_the_page_acts_as_any_person_of_the_sandbox(database_url: str) -> None:
    async with sandbox_bot(database_url) as (url, app):
        alerts = (await state(url))["channel"]["id"]
        body = {"channel": alerts, "text": "hello from Ada", "as": "U0SANDBOX2"}
        status, _ = await call("POST", f"{url}/sandbox/command", body)
        assert status == 200
        shown = (await state(url, alerts))["channel"]["messages"]
        assert '<span class="author">Ada Lovelace</span>' in shown
        status, answer = await call("POST", f"{url}/sandbox/command", {**body, "as": "U0NOBODY"})
        assert status == 400 and "no person" in answer["error"]
        assert app.slack.emulator is not None
        assert typed_mentions("lead @ada, not @nobody", app.slack.emulator.state) == (
            "lead <@U0SANDBOX2|ada>, not @nobody"
        )


async def test_a_poll_from_before_a_restart_is_answered_at_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_routes, "LONG_POLL", 3600.0)  # only a change could answer it
    async with sandbox_bot(database_url) as (url, _app):
        first = await state(url)
        query = f"since={first['revision']}&epoch=an-earlier-start"
        status, again = await asyncio.wait_for(call("GET", f"{url}/sandbox/state?{query}"), 30)
        assert status == 200 and again["epoch"] == first["epoch"] != "an-earlier-start"


async def test_root_redirects_to_the_page_which_has_a_favicon_and_a_first_hint(
    database_url: str,
) -> None:
    async with sandbox_bot(database_url) as (url, _app), aiohttp.ClientSession() as s:
        async with s.get(f"{url}/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/sandbox"
        async with s.get(f"{url}/favicon.ico") as r:
            assert r.status == 200 and r.content_type == "image/svg+xml"
        first = await state(url)
        assert first["channel"]["name"] == "alerts"
        assert "Fire a drill: pick an alert above" in first["channel"]["hint"]
