"""HTTP routes of the sandbox page: the page, its state (long-polled), and what the user does.

Everything the user does goes to the bot the way Slack sends it: the emulator signs the slash
commands, button clicks and modal submissions, and the bot verifies them as usual.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from aiohttp import web

from bot.domain.playbooks import Playbook
from bot.drills.alerts import drill_playbooks
from bot.drills.client import DrillFailed, pick_playbook, run_drill
from bot.sandbox.view import Viewer, page_state
from bot.slack.emulator import SlackEmulator
from bot.slack.emulator.outbound import EmulatorReply
from bot.web.answers import problem

LONG_POLL = 20.0
STATIC = {"sandbox.js": "text/javascript", "sandbox.css": "text/css"}
MAX_TEXT = 4000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadInput(Exception):
    """A request the sandbox cannot act on; the text says why."""


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
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.emulator.watch(self._wake)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed_after(self, revision: int, wait: float) -> None:
        """Return once the workspace's revision is past `revision`, or after `wait` seconds."""
        if self.emulator.revision != revision:
            return
        with_timeout = asyncio.wait_for(self._changed.wait(), wait)
        try:
            await with_timeout
        except TimeoutError:
            return


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadInput(f"`{name}` must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise BadInput(f"`{name}` is longer than {MAX_TEXT} characters")
    return value


def _reply(reply: EmulatorReply) -> web.Response:
    if reply.status != 200:
        return problem(502, f"the bot answered HTTP {reply.status}: {reply.body[:200]}")
    timed_out = " (Slack would have shown a timeout)" if reply.timed_out else ""
    return web.json_response(
        {"ok": True, "elapsed": round(reply.elapsed, 3), "note": timed_out.strip()}
    )


class SandboxRoutes:
    """The handlers, over one emulator and its sandbox user."""

    def __init__(self, deps: SandboxDeps) -> None:
        self.deps = deps
        self.viewer = Viewer(user=deps.user, api_path=deps.api_path)

    @property
    def state(self) -> Any:
        return self.deps.emulator.state

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
        """GET /sandbox/state?channel=C…&since=N: waits for a change past N, then answers."""
        since = request.query.get("since")
        if since is not None:
            if not since.isdigit():
                raise BadInput("`since` must be a revision number")
            await self.deps.changed_after(int(since), LONG_POLL)
        channel = request.query.get("channel") or None
        revision = self.deps.emulator.revision
        data = page_state(self.state, self.viewer, channel, revision)
        data["drills"] = sorted(drill_playbooks(self.deps.playbooks))
        return web.json_response(data)

    def _channel(self, body: dict[str, Any]) -> str:
        channel_id = _text(body, "channel")
        if channel_id not in self.state.channels:
            raise BadInput(f"no channel {channel_id}")
        return channel_id

    async def command(self, request: web.Request) -> web.Response:
        """POST /sandbox/command {channel, text}: a slash command, or a plain message."""
        body = await _body(request)
        channel_id = self._channel(body)
        text = _text(body, "text").strip()
        if not text.startswith("/"):
            escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            self.deps.emulator.post_user_message(channel_id, self.deps.user, escaped)
            return web.json_response({"ok": True})
        command, _, args = text.partition(" ")
        if command not in self.deps.commands:
            known = ", ".join(self.deps.commands)
            raise BadInput(f"{command} is not a command of this app; try {known}")
        reply = await self.deps.emulator.send_slash_command(
            self.deps.bot_url, command, args.strip(), user_id=self.deps.user, channel_id=channel_id
        )
        return _reply(reply)

    async def action(self, request: web.Request) -> web.Response:
        """POST /sandbox/action {channel, ts, action_id, block_id}: click a message's button."""
        body = await _body(request)
        channel_id = self._channel(body)
        ts, action_id = _text(body, "ts"), _text(body, "action_id")
        block_id = _text(body, "block_id", required=False)
        msg = self.state.any_message(channel_id, ts)
        if msg is None or msg.ephemeral_to not in (None, self.deps.user):
            raise BadInput(f"no message {ts} in {channel_id}")
        button = _find_button(msg.blocks or [], block_id, action_id)
        if button is None:
            raise BadInput(f"message {ts} has no button {action_id}")
        reply = await self.deps.emulator.send_block_action(
            self.deps.bot_url,
            action_id=action_id,
            value=str(button.get("value", "")),
            user_id=self.deps.user,
            channel_id=channel_id,
            message_ts=ts,
            block_id=block_id,
        )
        return _reply(reply)

    def _view(self, body: dict[str, Any]) -> Any:
        view = self.state.views.get(_text(body, "view_id"))
        if view is None or view.user != self.deps.user:
            raise BadInput("no such open modal")
        return view

    async def submit(self, request: web.Request) -> web.Response:
        """POST /sandbox/view/submit {view_id, values: {"block/action": "value"}}"""
        body = await _body(request)
        view = self._view(body)
        raw = body.get("values", {})
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise BadInput("`values` must map input names to strings")
        values = _view_values(view.view.get("blocks", []), raw)
        reply, errors = await self.deps.emulator.send_view_submission(
            self.deps.bot_url, view.id, values
        )
        if reply.status != 200:
            return _reply(reply)
        return web.json_response({"ok": errors is None, "errors": errors or {}})

    async def close(self, request: web.Request) -> web.Response:
        """POST /sandbox/view/close {view_id}"""
        self.deps.emulator.close_view(self._view(await _body(request)).id)
        return web.json_response({"ok": True})

    async def drill(self, request: web.Request) -> web.Response:
        """POST /sandbox/drill {alertname?}: fire a drill through the webhook, report the steps.
        The drill stays open for the person to try the card's buttons; `drill_resolve_after`
        ends it."""
        body = await _body(request)
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


def _find_button(blocks: list[Any], block_id: str, action_id: str) -> dict[str, Any] | None:
    for block in blocks:
        if not isinstance(block, dict) or block.get("block_id") != block_id:
            continue
        for el in [*block.get("elements", []), block.get("accessory")]:
            if isinstance(el, dict) and el.get("action_id") == action_id:
                return el
    return None


def _view_values(blocks: list[Any], raw: dict[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Input values in the shape of view.state.values, typed by each input's element."""
    values: dict[str, dict[str, dict[str, Any]]] = {}
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") != "input":
            continue
        el = block.get("element") or {}
        block_id, action_id = str(block.get("block_id", "")), str(el.get("action_id", ""))
        given = raw.get(f"{block_id}/{action_id}")
        if el.get("type") == "static_select":
            options = [o for o in el.get("options", []) if isinstance(o, dict)]
            chosen = next((o for o in options if o.get("value") == given), None)
            entry: dict[str, Any] = {"type": "static_select", "selected_option": chosen}
        else:
            entry = {"type": str(el.get("type", "plain_text_input")), "value": given}
        values.setdefault(block_id, {})[action_id] = entry
    return values


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

    app.router.add_get("/sandbox", guarded(routes.page))
    app.router.add_get("/sandbox/static/{name}", guarded(routes.static))
    app.router.add_get("/sandbox/state", guarded(routes.workspace))
    app.router.add_post("/sandbox/command", guarded(routes.command))
    app.router.add_post("/sandbox/action", guarded(routes.action))
    app.router.add_post("/sandbox/view/submit", guarded(routes.submit))
    app.router.add_post("/sandbox/view/close", guarded(routes.close))
    app.router.add_post("/sandbox/drill", guarded(routes.drill))
