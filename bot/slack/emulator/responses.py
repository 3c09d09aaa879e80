"""What happens when the bot answers through a response_url (or a slash-command ack body)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from bot.slack.emulator.methods.chat import Content, bot_message, parse_blocks, update_message
from bot.slack.emulator.params import Ctx, SlackError
from bot.slack.emulator.state import ResponsePost, ResponseUrl

MAX_USES = 5  # "usable up to 5 times within 30 minutes" (contracts 1.4)
MAX_AGE = 30 * 60.0


def open_response_url(ctx: Ctx, channel: str, user: str, message_ts: str | None) -> str:
    """Register a response_url and return its token."""
    token = secrets.token_urlsafe(18)
    ctx.state.response_urls[token] = ResponseUrl(
        token=token, channel=channel, user=user, issued_at=ctx.wall, message_ts=message_ts
    )
    return token


def _content(body: dict[str, Any]) -> Content:
    text = body.get("text")
    content = Content(
        text=text if isinstance(text, str) else None,
        blocks=parse_blocks(body.get("blocks")),
        attachments=body.get("attachments"),
        metadata=None,
    )
    if content.empty:
        raise SlackError("no_text")
    return content


def _apply(ctx: Ctx, url: ResponseUrl, body: dict[str, Any]) -> str:
    original = ctx.state.any_message(url.channel, url.message_ts) if url.message_ts else None
    if original is not None and body.get("delete_original") is True:
        ctx.state.messages.remove(original)
        return "delete_original"
    content = _content(body)
    if original is not None and body.get("replace_original") is True:
        update_message(ctx, original, content)
        return "replace_original"
    thread_ts = body.get("thread_ts") if isinstance(body.get("thread_ts"), str) else None
    msg = bot_message(ctx, url.channel, content, thread_ts)
    if body.get("response_type") == "in_channel":
        return "in_channel"
    msg.ephemeral_to = url.user
    return "ephemeral"


def apply_response(ctx: Ctx, token: str, body: Any, *, source: str) -> tuple[int, dict[str, Any]]:
    """Apply a response body, record it in `state.response_posts`; return HTTP status and JSON."""
    url = ctx.state.response_urls.get(token)
    if url is None:
        return 404, {"ok": False, "error": "invalid_token"}
    if source == "response_url":
        if ctx.wall - url.issued_at > MAX_AGE:
            return 404, {"ok": False, "error": "expired_url"}
        if url.uses >= MAX_USES:
            return 404, {"ok": False, "error": "used_url"}
        url.uses += 1
    try:
        if not isinstance(body, dict):
            raise SlackError("invalid_payload")
        effect = _apply(ctx, url, body)
    except SlackError as exc:
        _record(ctx, token, body, f"error:{exc.code}", source)
        return 400, exc.body()
    _record(ctx, token, body, effect, source)
    return 200, {"ok": True}


def _record(ctx: Ctx, token: str, body: Any, effect: str, source: str) -> None:
    kept = body if isinstance(body, dict) else {}
    ctx.state.response_posts.append(ResponsePost(token, kept, effect, source, ctx.wall))


def ack_body(text: str) -> dict[str, Any] | None:
    """Interpret a slash-command ack body: JSON message, plain text, or nothing."""
    if not text.strip():
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return {"text": text}
    return body if isinstance(body, dict) else {"text": text}
