"""Requests the emulator sends to the bot the way Slack does: signed (contracts 1.1-1.3)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from bot.slack.emulator.state import EmulatorState, Message, View

ACK_TIMEOUT = 3.0  # Slack shows a timeout error if the bot has not answered by then
SEND_TIMEOUT = 30.0
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
VERIFICATION_TOKEN = "emulator-verification-token"  # noqa: S105 - legacy field, not a secret


def sign_request(signing_secret: str, timestamp: int, body: bytes) -> str:
    """Return the X-Slack-Signature of a request: "v0=" + hex HMAC-SHA256 of "v0:ts:body"."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


@dataclass
class EmulatorReply:
    """The bot's HTTP answer to a request sent by the emulator."""

    status: int
    body: str
    elapsed: float

    @property
    def timed_out(self) -> bool:
        """True when Slack would have shown a timeout (no answer within 3 s)."""
        return self.elapsed > ACK_TIMEOUT


def new_trigger_id() -> str:
    """Return a trigger_id shaped like Slack's ("398738663015.47445629121.803a0bc8...")."""
    digits = "".join(secrets.choice("0123456789") for _ in range(23))
    return f"{digits[:12]}.{digits[12:]}.{secrets.token_hex(16)}"


def _user_name(state: EmulatorState, user_id: str) -> str:
    user = state.users.get(user_id)
    return user.name if user else user_id


def _channel_name(state: EmulatorState, channel_id: str) -> str:
    channel = state.channels.get(channel_id)
    return channel.name if channel else channel_id


def slash_command_body(
    state: EmulatorState,
    command: str,
    text: str,
    *,
    user_id: str,
    channel_id: str,
    response_url: str,
    trigger_id: str,
) -> bytes:
    """Return the form body of a slash command, fields in Slack's order (contracts 1.2).

    `text` is what the person typed, with mentions and links as the Slack client turns them
    into tokens (`<@U123|dana>`); like Slack, every other `&`, `<` and `>` is sent escaped.
    """
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": state.team_id,
        "team_domain": state.team_domain,
        "channel_id": channel_id,
        "channel_name": _channel_name(state, channel_id),
        "user_id": user_id,
        "user_name": _user_name(state, user_id),
        "command": command,
        "text": typed_text(text),
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode()


# Tokens the Slack client makes of what a person types: mentions of users, channels and
# groups, special mentions and links. Slack sends them as they are, and the rest escaped.
_TOKEN = re.compile(
    r"<(?:[@#][UWC][A-Z0-9]+|![a-z]+(?:\^S[A-Z0-9]+)?|(?:https?|mailto):[^<>|\s]+)(?:\|[^<>]*)?>"
)


def typed_text(text: str) -> str:
    """What a person typed as Slack sends it: `&`, `<`, `>` escaped outside the client's tokens."""
    parts: list[str] = []
    start = 0
    for token in _TOKEN.finditer(text):
        parts += [_escape(text[start : token.start()]), token.group(0)]
        start = token.end()
    parts.append(_escape(text[start:]))
    return "".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _find_element(msg: Message | None, action_id: str, block_id: str) -> dict[str, Any]:
    for block in (msg.blocks or []) if msg else []:
        candidates = [*block.get("elements", []), block.get("accessory"), block.get("element")]
        for el in candidates:
            if not isinstance(el, dict):
                continue
            if el.get("action_id") == action_id and block.get("block_id") == block_id:
                return el
    return {"type": "button", "text": {"type": "plain_text", "text": "Button", "emoji": True}}


@dataclass(frozen=True)
class Click:
    """A button click by `user_id` on the message `message_ts` of `channel_id`."""

    action_id: str
    value: str
    user_id: str
    channel_id: str
    message_ts: str
    block_id: str


def _user(state: EmulatorState, user_id: str) -> dict[str, Any]:
    name = _user_name(state, user_id)
    return {"id": user_id, "username": name, "name": name, "team_id": state.team_id}


def _action(msg: Message | None, click: Click, action_ts: str) -> dict[str, Any]:
    el = _find_element(msg, click.action_id, click.block_id)
    return {
        "action_id": click.action_id,
        "block_id": click.block_id,
        "text": el.get("text"),
        "value": click.value,
        "type": el.get("type", "button"),
        "action_ts": action_ts,
    }


def block_action_payload(
    state: EmulatorState,
    msg: Message | None,
    click: Click,
    *,
    response_url: str,
    trigger_id: str,
    action_ts: str,
) -> dict[str, Any]:
    """Return a block_actions payload with the fields of contracts 1.3."""
    container = {
        "type": "message",
        "message_ts": click.message_ts,
        "channel_id": click.channel_id,
        "is_ephemeral": bool(msg and msg.ephemeral_to),
    }
    return {
        "type": "block_actions",
        "user": _user(state, click.user_id),
        "api_app_id": state.app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": state.team_id, "domain": state.team_domain},
        "channel": {"id": click.channel_id, "name": _channel_name(state, click.channel_id)},
        "response_url": response_url,
        "actions": [_action(msg, click, action_ts)],
    }


def block_action_body(payload: dict[str, Any]) -> bytes:
    """Encode an interactivity payload as Slack sends it: payload=<url-encoded JSON>."""
    return ("payload=" + quote(json.dumps(payload))).encode()


async def post_signed(url: str, body: bytes, *, secret: str, timestamp: int) -> EmulatorReply:
    """POST a form body to the bot with Slack's signature headers; time the answer."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": sign_request(secret, timestamp, body),
        "User-Agent": USER_AGENT,
    }
    start = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=SEND_TIMEOUT)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, data=body, headers=headers) as resp,
    ):
        text = await resp.text()
    return EmulatorReply(status=resp.status, body=text, elapsed=time.perf_counter() - start)


def view_submission_payload(
    state: EmulatorState,
    view: View,
    values: dict[str, dict[str, dict[str, Any]]],
    *,
    trigger_id: str,
) -> dict[str, Any]:
    """Return a view_submission payload: the modal as stored, with the user's input values."""
    body = view.view
    return {
        "type": "view_submission",
        "team": {"id": state.team_id, "domain": state.team_domain},
        "user": _user(state, view.user),
        "api_app_id": state.app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": {
            "id": view.id,
            "team_id": state.team_id,
            "type": body.get("type", "modal"),
            "callback_id": body.get("callback_id", ""),
            "private_metadata": body.get("private_metadata", ""),
            "blocks": body.get("blocks", []),
            "title": body.get("title"),
            "hash": view.hash,
            "state": {"values": values},
            "app_id": state.app_id,
            "bot_id": state.bot_id,
        },
        "response_urls": [],
    }


def _view_ack(text: str, action: str) -> dict[str, Any] | None:
    """A view_submission ack's body when it has `response_action: action`, else None."""
    try:
        body = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("response_action") == action else None


def view_ack_update(text: str) -> dict[str, Any] | None:
    """The view a view_submission ack replaces the modal with ({"response_action": "update",
    "view": …}), else None."""
    body = _view_ack(text, "update")
    view = body.get("view") if body is not None else None
    return view if isinstance(view, dict) else None


def view_ack_errors(text: str) -> dict[str, str] | None:
    """The field errors of a view_submission ack ({"response_action": "errors"}), else None."""
    body = _view_ack(text, "errors")
    if body is None:
        return None
    errors = body.get("errors")
    return {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {}
