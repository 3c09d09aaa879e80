"""HTTP routes of the sandbox page: the page, its state (long-polled), and what the user does.

Everything the user does goes to the bot the way Slack sends it: the emulator signs the slash
commands, button clicks and modal submissions, and the bot verifies them as usual.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from aiohttp import web

from bot.domain.playbooks import Playbook
from bot.drills.alerts import drill_playbooks
from bot.drills.client import DrillFailed, pick_playbook, run_drill
from bot.sandbox.inputs import (
    BadInput,
    find_button,
    json_body,
    person,
    text_field,
    typed_mentions,
    view_values,
)
from bot.sandbox.paging import PagingConfig
from bot.sandbox.view import Viewer, page_state, people
from bot.slack.emulator import SlackEmulator
from bot.slack.emulator.outbound import EmulatorReply
from bot.web.answers import problem

LONG_POLL = 20.0
STATIC = {
    "sandbox.js": "text/javascript",
    "sandbox.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class SandboxDeps:
    """What the page's routes need, built by the composition root."""

    emulator: SlackEmulator
    user: str
    api_path: str
    bot_url: str  # where the emulator sends Slack's requests (…/slack/events)
    self_url: str  # this Tocsin, for drills fired from the page
    playbooks: Sequence[Playbook]
    commands: Sequence[str]
    webhook_token: str | None
    now: Callable[[], datetime]
    paging: PagingConfig | None = None
    alerts_channel: str | None = None
    # A new one every start: a page that saw another knows its revision counts for nothing.
    epoch: str = field(default_factory=lambda: secrets.token_hex(8))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.emulator.watch(self._wake)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed_after(self, revision: int, wait: float, epoch: str | None = None) -> None:
        """Return once the workspace's revision is past `revision`, or after `wait` seconds;
        at once when `revision` was counted by another start (`epoch`)."""
        if self.emulator.revision != revision or epoch not in (None, self.epoch):
            return
        with_timeout = asyncio.wait_for(self._changed.wait(), wait)
        try:
            await with_timeout
        except TimeoutError:
            return


def _reply(reply: EmulatorReply) -> web.Response:
    if reply.status != 200:
        return problem(502, f"the bot answered HTTP {reply.status}: {reply.body[:200]}")
    timed_out = " (Slack would have shown a timeout)" if reply.timed_out else ""
    return web.json_response(
        {"ok": True, "elapsed": round(reply.elapsed, 3), "note": timed_out.strip()}
    )


class SandboxRoutes:
    """The handlers, over one emulator; the page acts as any person of it (`as`)."""

    def __init__(self, deps: SandboxDeps) -> None:
        self.deps = deps

    @property
    def state(self) -> Any:
        return self.deps.emulator.state

    def _as(self, given: object) -> str:
        return person(self.state, given, self.deps.user)

    async def page(self, _request: web.Request) -> web.Response:
        """GET /sandbox"""
        text = resources.files("bot.sandbox").joinpath("static/index.html").read_text()
        return web.Response(text=text, content_type="text/html", charset="utf-8")

    async def static(self, request: web.Request) -> web.Response:
        """GET /sandbox/static/{name}"""
        name = request.match_info["name"]
        if name not in STATIC:
            return problem(404, f"no file {name!r}")
        text = resources.files("bot.sandbox").joinpath(f"static/{name}").read_text()
        return web.Response(text=text, content_type=STATIC[name], charset="utf-8")

    async def workspace(self, request: web.Request) -> web.Response:
        """GET /sandbox/state?channel=C…&since=N&epoch=E&as=U…: waits for a change past N (of
        this start, E), then answers what that person sees."""
        user = self._as(request.query.get("as"))
        since = request.query.get("since")
        if since is not None:
            if not since.isdigit():
                raise BadInput("`since` must be a revision number")
            await self.deps.changed_after(int(since), LONG_POLL, request.query.get("epoch"))
        channel = request.query.get("channel") or None
        revision = self.deps.emulator.revision
        viewer = Viewer(user=user, api_path=self.deps.api_path, hint_in=self.deps.alerts_channel)
        data = page_state(self.state, viewer, channel, revision)
        data["epoch"] = self.deps.epoch
        data["you"] = user
        data["people"] = people(self.state)
        data["drills"] = sorted(drill_playbooks(self.deps.playbooks))
        if self.deps.paging is not None:
            data["paging"] = await self.deps.paging.describe(viewer.names(self.state))
        return web.json_response(data)

    def _channel(self, body: dict[str, Any]) -> str:
        channel_id = text_field(body, "channel")
        if channel_id not in self.state.channels:
            raise BadInput(f"no channel {channel_id}")
        return channel_id

    async def command(self, request: web.Request) -> web.Response:
        """POST /sandbox/command {channel, text}: a slash command, or a plain message."""
        body = await json_body(request)
        user = self._as(body.get("as"))
        channel_id = self._channel(body)
        text = text_field(body, "text").strip()
        if not text.startswith("/"):
            escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            self.deps.emulator.post_user_message(channel_id, user, escaped)
            return web.json_response({"ok": True})
        command, _, args = text.partition(" ")
        if command not in self.deps.commands:
            known = ", ".join(self.deps.commands)
            raise BadInput(f"{command} is not a command of this app; try {known}")
        reply = await self.deps.emulator.send_slash_command(
            self.deps.bot_url,
            command,
            typed_mentions(args.strip(), self.state),
            user_id=user,
            channel_id=channel_id,
        )
        return _reply(reply)

    async def action(self, request: web.Request) -> web.Response:
        """POST /sandbox/action {channel, ts, action_id, block_id}: click a message's button."""
        body = await json_body(request)
        user = self._as(body.get("as"))
        channel_id = self._channel(body)
        ts, action_id = text_field(body, "ts"), text_field(body, "action_id")
        block_id = text_field(body, "block_id", required=False)
        msg = self.state.any_message(channel_id, ts)
        if msg is None or msg.ephemeral_to not in (None, user):
            raise BadInput(f"no message {ts} in {channel_id}")
        button = find_button(msg.blocks or [], block_id, action_id)
        if button is None:
            raise BadInput(f"message {ts} has no button {action_id}")
        reply = await self.deps.emulator.send_block_action(
            self.deps.bot_url,
            action_id=action_id,
            value=str(button.get("value", "")),
            user_id=user,
            channel_id=channel_id,
            message_ts=ts,
            block_id=block_id,
        )
        return _reply(reply)

    def _view(self, body: dict[str, Any]) -> Any:
        view = self.state.views.get(text_field(body, "view_id"))
        if view is None or view.user != self._as(body.get("as")):
            raise BadInput("no such open modal")
        return view

    async def submit(self, request: web.Request) -> web.Response:
        """POST /sandbox/view/submit {view_id, values: {"block/action": "value"}}"""
        body = await json_body(request)
        view = self._view(body)
        raw = body.get("values", {})
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise BadInput("`values` must map input names to strings")
        values = view_values(view.view.get("blocks", []), raw)
        reply, errors = await self.deps.emulator.send_view_submission(
            self.deps.bot_url, view.id, values
        )
        if reply.status != 200:
            return _reply(reply)
        return web.json_response({"ok": errors is None, "errors": errors or {}})

    async def close(self, request: web.Request) -> web.Response:
        """POST /sandbox/view/close {view_id}"""
        self.deps.emulator.close_view(self._view(await json_body(request)).id)
        return web.json_response({"ok": True})

    async def drill(self, request: web.Request) -> web.Response:
        """POST /sandbox/drill {alertname?}: fire a drill through the webhook, report the steps.
        The drill stays open for the person to try the card's buttons; `drill_resolve_after`
        ends it."""
        body = await json_body(request)
        name = body.get("alertname") or None
        if name is not None and not isinstance(name, str):
            raise BadInput("`alertname` must be a string")
        try:
            playbook = pick_playbook(self.deps.playbooks, name)
        except DrillFailed as exc:
            raise BadInput(str(exc)) from None
        try:
            outcome = await run_drill(
                self.deps.self_url,
                playbook,
                token=self.deps.webhook_token,
                now=self.deps.now,
                resolve=False,
            )
        except DrillFailed as exc:
            return problem(502, str(exc))
        return web.json_response({"ok": True, **outcome.to_dict()})


async def root(_request: web.Request) -> web.Response:
    """GET /: the sandbox is all there is to see."""
    raise web.HTTPFound("/sandbox")


async def favicon(_request: web.Request) -> web.Response:
    """GET /favicon.ico (browsers ask for it whatever the page links)."""
    svg = resources.files("bot.sandbox").joinpath("static/favicon.svg").read_text()
    return web.Response(text=svg, content_type="image/svg+xml", charset="utf-8")


def add_sandbox_routes(app: web.Application, deps: SandboxDeps) -> None:
    """Serve the page at /sandbox on `app` (4xx with a reason for bad input, never a 500)."""
    routes = SandboxRoutes(deps)

    def guarded(handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except BadInput as exc:
                return problem(400, str(exc))

        return run

    app.router.add_get("/", root)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/sandbox", guarded(routes.page))
    app.router.add_get("/sandbox/static/{name}", guarded(routes.static))
    app.router.add_get("/sandbox/state", guarded(routes.workspace))
    app.router.add_post("/sandbox/command", guarded(routes.command))
    app.router.add_post("/sandbox/action", guarded(routes.action))
    app.router.add_post("/sandbox/view/submit", guarded(routes.submit))
    app.router.add_post("/sandbox/view/close", guarded(routes.close))
    app.router.add_post("/sandbox/drill", guarded(routes.drill))
