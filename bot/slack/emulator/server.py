"""Slack Web API emulator: an aiohttp server that `AsyncWebClient(base_url=...)` talks to unchanged.

It keeps the workspace in one `EmulatorState`, enforces Slack's argument errors, Block Kit limits
and (optionally) rate limits, records every call, and can send signed slash commands and block
actions to the bot like Slack does. See contracts section 1 for the facts it encodes.
"""

from __future__ import annotations

import asyncio
import base64
import mimetypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, web

from bot.slack.emulator.limits import (
    DEFAULT_BURST,
    RateLimit,
    RateLimiter,
)
from bot.slack.emulator.methods.chat import METHODS as CHAT_METHODS
from bot.slack.emulator.methods.conversations import METHODS as CONVERSATION_METHODS
from bot.slack.emulator.methods.conversations import Handler
from bot.slack.emulator.methods.misc import METHODS as MISC_METHODS
from bot.slack.emulator.outbound import (
    Click,
    EmulatorReply,
    block_action_body,
    block_action_payload,
    new_trigger_id,
    post_signed,
    slash_command_body,
    view_ack_errors,
    view_ack_update,
    view_submission_payload,
)
from bot.slack.emulator.params import Ctx, Params, SlackError, read_params
from bot.slack.emulator.responses import ack_body, apply_response, open_response_url
from bot.slack.emulator.socket_mode import SocketHub
from bot.slack.emulator.state import (
    Channel,
    EmulatorState,
    Message,
    Trigger,
    User,
    Usergroup,
    new_id,
)

METHODS: dict[str, Handler] = {**CONVERSATION_METHODS, **CHAT_METHODS, **MISC_METHODS}
DUMMY_BASE = "http://emulator.invalid/api/"  # used for response_url/upload_url when not started
MAX_BODY = 64 * 1024 * 1024
# Methods that only read: a call to them leaves the workspace as it was.
READ_ONLY = frozenset(
    {
        "auth.test",
        "chat.getPermalink",
        "conversations.history",
        "conversations.info",
        "conversations.list",
        "conversations.members",
        "conversations.replies",
        "pins.list",
        "usergroups.users.list",
        "users.info",
    }
)
Answer = tuple[int, dict[str, Any], dict[str, str]]


@dataclass
class RecordedCall:
    """One Web API call as the emulator saw it (errors and 429s included)."""

    method: str
    params: dict[str, Any]
    status: int
    response: dict[str, Any]
    at: float


class SlackEmulator:
    """An emulated Slack workspace serving the Web API subset the bot uses."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-emulator",  # noqa: S107 - emulator credential, not a secret
        app_token: str = "xapp-emulator",  # noqa: S107 - Socket Mode's app-level token
        signing_secret: str = "emulator-signing-secret",  # noqa: S107
        rate_limits: dict[str, RateLimit] | None = None,
        latency: float | dict[str, float] = 0.0,
        per_channel_post_limit: float | None = None,
        per_channel_burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
        state: EmulatorState | None = None,
    ) -> None:
        self.state = state if state is not None else EmulatorState()
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.calls: list[RecordedCall] = []
        self.violations: list[RecordedCall] = []
        self._in_flight: dict[str, int] = {}
        self.base_url: str | None = None
        self._request_base: str | None = None  # learnt from API calls when mounted elsewhere
        self._latency = latency
        self._clock = clock
        self._limiter = RateLimiter(
            rate_limits or {}, per_channel_post_limit, per_channel_burst, clock
        )
        self._runner: web.AppRunner | None = None
        self.revision = 0  # bumped on every change of the workspace
        self._watchers: list[Callable[[], None]] = []
        self._trouble: tuple[int, dict[str, str]] | None = None  # outage(): every call's answer
        self._lost: dict[str, int] = {}  # lose_answers(): calls done, then answered 503
        self.sockets = SocketHub(app_id=self.state.app_id)
        if self.state.bot_user_id not in self.state.users:
            self.add_user(self.state.bot_user_id, self.state.bot_name, is_bot=True)

    @property
    def bot_user_id(self) -> str:
        """The bot's user id ("U0TOCSINBOT" by default)."""
        return self.state.bot_user_id

    @property
    def team_id(self) -> str:
        """The workspace id ("T0EMULATOR" by default)."""
        return self.state.team_id

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Return the recorded calls of one method."""
        return [call for call in self.calls if call.method == method]

    def in_flight(self, method: str) -> int:
        """How many calls of `method` are being answered right now."""
        return self._in_flight.get(method, 0)

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback` after every change of the workspace (a page, a saver)."""
        self._watchers.append(callback)

    def changed(self) -> None:
        """Note a change of the workspace: bump `revision` and tell the watchers."""
        self.revision += 1
        for callback in self._watchers:
            callback()

    def outage(self, status: int | None, *, retry_after: int = 30) -> None:
        """Answer every Web API call with `status` until called with None: 503 (Slack down,
        `service_unavailable`) or 429 (`ratelimited`, with `Retry-After`). Nothing changes in
        the workspace meanwhile."""
        if status is None:
            self._trouble = None
        else:
            headers = {"Retry-After": str(retry_after)} if status == 429 else {}
            self._trouble = (status, headers)

    def lose_answers(self, method: str, count: int = 1) -> None:
        """Do the next `count` calls of `method`, then answer them 503 as if the answer was
        lost on its way (an uncertain call: the caller cannot tell it was done)."""
        self._lost[method] = self._lost.get(method, 0) + count

    def set_rate_limit(self, method: str, limit: RateLimit | None) -> None:
        """Set or remove (None) the rate limit of a method."""
        self._limiter.set(method, limit)

    # --- workspace set-up -------------------------------------------------------------------

    def add_user(
        self, user_id: str, name: str, *, real_name: str = "", is_bot: bool = False, tz: str = "UTC"
    ) -> None:
        """Add (or replace) a workspace member."""
        self.state.users[user_id] = User(user_id, name, real_name, is_bot, tz)

    def deactivate_user(self, user_id: str) -> None:
        """Deactivate a member (someone who left): invites and DMs to them fail."""
        self.state.users[user_id].deleted = True
        self.changed()

    def add_usergroup(self, group_id: str, handle: str, users: list[str]) -> None:
        """Add (or replace) a user group."""
        self.state.usergroups[group_id] = Usergroup(group_id, handle, list(users))

    def add_channel(
        self,
        name: str,
        *,
        members: list[str] | None = None,
        is_private: bool = False,
        is_general: bool = False,
    ) -> str:
        """Create a channel as a human would (the bot is a member only if listed); return its id."""
        channel_id = new_id("C", self.state.channels)
        creator = (members or ["USLACKBOT"])[0]
        self.state.channels[channel_id] = Channel(
            channel_id,
            name,
            int(time.time()),
            creator,
            is_private,
            members=list(members or []),
            is_general=is_general,
        )
        self.changed()
        return channel_id

    def restrict_archiving(self, restricted: bool = True) -> None:
        """Set the workspace preference that refuses apps' conversations.archive."""
        self.state.archiving_restricted = restricted

    def post_user_message(self, channel_id: str, user_id: str, text: str) -> str:
        """Post a message as a human user; return its ts."""
        ts = self.state.next_ts(time.time())
        self.state.messages.append(Message(channel=channel_id, ts=ts, user=user_id, text=text))
        self.changed()
        return ts

    def new_trigger_id(self, user_id: str) -> str:
        """Issue a trigger_id for `user_id` (valid for views.open during 3 s)."""
        trigger_id = new_trigger_id()
        self.state.triggers[trigger_id] = Trigger(trigger_id, user_id, self._clock())
        return trigger_id

    # --- server ----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """Return the aiohttp app (routes "/{method}" plus response/upload/download routes)."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/response/{token}", self._on_response_url)
        app.router.add_post("/upload/{file_id}", self._on_upload)
        app.router.add_get("/files/{file_id}", self._on_download)
        app.router.add_get("/socket/{ticket}", self.sockets.serve)
        app.router.add_route("POST", "/{method}", self._on_api)
        app.router.add_route("GET", "/{method}", self._on_api)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the app under /api/ and return the base url "http://host:port/api/"."""
        root = web.Application(client_max_size=MAX_BODY)
        root.add_subapp("/api/", self.make_app())
        self._runner = web.AppRunner(root)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_port = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound_port}/api/"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving."""
        await self.sockets.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self.base_url = self._request_base = None

    def _public_base(self) -> str:
        return self.base_url or self._request_base or DUMMY_BASE

    def _ctx(self, base_url: str | None = None) -> Ctx:
        base = base_url or self._public_base()
        return Ctx(state=self.state, now=self._clock(), wall=time.time(), base_url=base)

    def _latency_for(self, method: str) -> float:
        if isinstance(self._latency, dict):
            return self._latency.get(method, 0.0)
        return self._latency

    def _channel_key(self, params: dict[str, Any]) -> str | None:
        ref = params.get("channel")
        if not isinstance(ref, str) or not ref:
            return None
        channel = self.state.channel(ref)
        return channel.id if channel else ref

    async def _on_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        arrived = self._clock()
        try:
            params, token = await read_params(request)
            error: SlackError | None = None
        except SlackError as exc:
            params, token, error = {}, None, exc
        channel = self._channel_key(params)
        violated = self._limiter.is_blocked(method, channel, arrived)
        self._in_flight[method] = self._in_flight.get(method, 0) + 1
        try:
            # Like Slack, the call completes even if the caller hangs up meanwhile.
            await asyncio.shield(asyncio.sleep(self._latency_for(method)))
        finally:
            self._in_flight[method] -= 1
        base = str(request.url.with_query(None))[: -len(method)]
        self._request_base = self._request_base or base
        status, body, headers = self._answer(method, params, token, error, channel, base)
        if status == 200 and self._lost.get(method):
            self._lost[method] -= 1
            self.changed()  # it was done
            status, body, headers = 503, {"ok": False, "error": "service_unavailable"}, {}
        call = RecordedCall(method, params, status, body, arrived)
        self.calls.append(call)
        if violated:
            self.violations.append(call)
        if status == 200 and method not in READ_ONLY:
            self.changed()
        return web.json_response(body, status=status, headers=headers)

    def _authenticate(self, token: str | None) -> None:
        if not token:
            raise SlackError("not_authed")
        if token == self.app_token:
            raise SlackError("not_allowed_token_type")  # an app-level token opens sockets only
        if token != self.bot_token:
            raise SlackError("invalid_auth")

    def _open_connection(self, token: str | None, base: str) -> Answer:
        """apps.connections.open: with the app-level token only (REF errors)."""
        if not token:
            return 200, {"ok": False, "error": "missing_args"}, {}
        if token == self.bot_token:
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        if token != self.app_token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        return 200, self.sockets.open_url(base), {}

    def _answer(
        self,
        method: str,
        params: dict[str, Any],
        token: str | None,
        error: SlackError | None,
        channel: str | None,
        base: str,
    ) -> Answer:
        if method == "apps.connections.open":
            return self._open_connection(token, base)
        if method not in METHODS:
            return 404, {"ok": False, "error": "unknown_method"}, {}
        if self._trouble is not None:
            status, headers = self._trouble
            code = "ratelimited" if status == 429 else "service_unavailable"
            return status, {"ok": False, "error": code}, headers
        try:
            if error is not None:
                raise error
            self._authenticate(token)
            retry = self._limiter.acquire(method, channel)
            if retry is not None:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry)}
            result = METHODS[method](self._ctx(base), Params(params))
        except SlackError as exc:
            return exc.status, exc.body(), {}
        return 200, {"ok": True, **result}, {}

    async def _on_response_url(self, request: web.Request) -> web.Response:
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        token = request.match_info["token"]
        status, answer = apply_response(self._ctx(), token, body, source="response_url")
        self.changed()
        return web.json_response(answer, status=status)

    async def _on_upload(self, request: web.Request) -> web.Response:
        stored = self.state.files.get(request.match_info["file_id"])
        if stored is None or stored.completed:
            return web.Response(status=404, text="file_not_found")
        data = await _upload_bytes(request)
        stored.content_b64 = base64.b64encode(data).decode()
        stored.uploaded = True
        self.changed()
        return web.Response(text=f"OK - {len(data)}")

    async def _on_download(self, request: web.Request) -> web.Response:
        stored = self.state.files.get(request.match_info["file_id"])
        if stored is None or not stored.uploaded:
            return web.Response(status=404, text="file_not_found")
        ctype = mimetypes.guess_type(stored.name)[0] or "application/octet-stream"
        return web.Response(body=stored.content(), content_type=ctype)

    # --- Slack -> bot -----------------------------------------------------------------------

    async def send_slash_command(
        self,
        bot_url: str,
        command: str,
        text: str,
        *,
        user_id: str,
        channel_id: str,
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> EmulatorReply:
        """Send a signed slash command to the bot; a JSON/text ack body is shown like Slack."""
        token = open_response_url(self._ctx(), channel_id, user_id, None)
        body = slash_command_body(
            self.state,
            command,
            text,
            user_id=user_id,
            channel_id=channel_id,
            response_url=self._response_url(token),
            trigger_id=self.new_trigger_id(user_id),
        )
        if self.sockets.connections:
            form = {key: value for key, value in parse_qsl(body.decode())}
            reply = await self.sockets.deliver(
                "slash_commands", form, accepts_response_payload=True
            )
        else:
            reply = await self._send(bot_url, body, timestamp, signing_secret)
        ack = ack_body(reply.body) if reply.status == 200 else None
        if ack is not None:
            apply_response(self._ctx(), token, ack, source="ack")
            self.changed()
        return reply

    async def send_block_action(
        self,
        bot_url: str,
        *,
        action_id: str,
        value: str,
        user_id: str,
        channel_id: str,
        message_ts: str,
        block_id: str = "actions",
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> EmulatorReply:
        """Send a signed block_actions payload (a button click on `message_ts`) to the bot."""
        click = Click(action_id, value, user_id, channel_id, message_ts, block_id)
        ctx = self._ctx()
        msg = self.state.any_message(channel_id, message_ts)
        token = open_response_url(ctx, channel_id, user_id, message_ts)
        payload = block_action_payload(
            self.state,
            msg,
            click,
            response_url=self._response_url(token),
            trigger_id=self.new_trigger_id(user_id),
            action_ts=f"{ctx.wall:.6f}",
        )
        if msg is not None and msg.ephemeral_to is None:
            payload["message"] = ctx.render.message(msg)  # real Slack sends the message too
        if self.sockets.connections:
            return await self.sockets.deliver(
                "interactive", payload, accepts_response_payload=False
            )
        return await self._send(bot_url, block_action_body(payload), timestamp, signing_secret)

    async def send_view_submission(
        self,
        bot_url: str,
        view_id: str,
        values: dict[str, dict[str, dict[str, Any]]],
        *,
        signing_secret: str | None = None,
    ) -> tuple[EmulatorReply, dict[str, str] | None]:
        """Submit an open modal; it closes unless the bot answers with field errors (returned)
        or with `response_action: update` (the modal then shows the bot's new view)."""
        view = self.state.views.get(view_id)
        if view is None:
            raise KeyError(view_id)
        payload = view_submission_payload(
            self.state, view, values, trigger_id=self.new_trigger_id(view.user)
        )
        if self.sockets.connections:
            reply = await self.sockets.deliver(
                "interactive", payload, accepts_response_payload=True
            )
        else:
            reply = await self._send(bot_url, block_action_body(payload), None, signing_secret)
        errors = view_ack_errors(reply.body) if reply.status == 200 else None
        replacement = view_ack_update(reply.body) if reply.status == 200 else None
        if replacement is not None:
            view.view = replacement
            view.hash = f"{int(time.time())}.{new_trigger_id()[-8:]}"
            self.changed()
        elif reply.status == 200 and errors is None:
            self.close_view(view_id)
        return reply, errors

    def close_view(self, view_id: str) -> None:
        """Close a modal (its Cancel button, or after a submission the bot accepted)."""
        if self.state.views.pop(view_id, None) is not None:
            self.changed()

    def _response_url(self, token: str) -> str:
        return f"{self._public_base()}response/{token}"

    async def _send(
        self, url: str, body: bytes, timestamp: int | None, signing_secret: str | None
    ) -> EmulatorReply:
        """POST a request to the bot's URL, signed (an app without Socket Mode connections)."""
        ts = timestamp if timestamp is not None else int(time.time())
        secret = signing_secret if signing_secret is not None else self.signing_secret
        return await post_signed(url, body, secret=secret, timestamp=ts)


async def _upload_bytes(request: web.Request) -> bytes:
    """Read an upload body: raw bytes, or the first part of a multipart form."""
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        part = await reader.next()
        if isinstance(part, BodyPartReader):
            return bytes(await part.read(decode=False))
        return b""
    return await request.read()
