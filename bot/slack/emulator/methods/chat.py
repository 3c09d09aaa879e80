"""chat.* and pins.* methods of the Slack emulator."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.slack.emulator.blocks import fill_ids, validate_blocks
from bot.slack.emulator.methods.conversations import Handler, member_channel, visible_channel
from bot.slack.emulator.params import Ctx, Params, SlackError, missing
from bot.slack.emulator.render import permalink
from bot.slack.emulator.state import Message, Pin

MAX_TEXT = 40_000


@dataclass
class Content:
    """Validated text/blocks/attachments/metadata of a message (None = not given)."""

    text: str | None
    blocks: list[dict[str, Any]] | None
    attachments: list[Any] | None
    metadata: dict[str, Any] | None
    warnings: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when there is nothing to show."""
        return not self.text and not self.blocks and not self.attachments


EVENT_TYPE = re.compile(r"[A-Za-z0-9_-]+")
Scalar = (str, int, float, bool)


def _flat(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, Scalar) for v in value.values())


def _payload_value(value: Any) -> bool:
    """A value of the published event_payload types: a string, number or boolean, a flat
    object of those, or a list of such objects (node SDK MessageMetadata)."""
    if isinstance(value, Scalar) or _flat(value):
        return True
    return isinstance(value, list) and all(_flat(item) for item in value)


def parse_metadata(raw: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """Validate message metadata {event_type, event_payload}; a schema Slack does not accept
    (an event_type with other characters, a value outside the published types) is ignored,
    with the warning `invalid_metadata_schema` (DOCS message-metadata)."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict) or not isinstance(raw.get("event_type"), str):
        raise SlackError("invalid_metadata_format")
    payload = raw.get("event_payload", {})
    if not isinstance(payload, dict):
        raise SlackError("invalid_metadata_format")
    if not EVENT_TYPE.fullmatch(raw["event_type"]) or not all(
        _payload_value(v) for v in payload.values()
    ):
        return None, ["invalid_metadata_schema"]
    return {"event_type": raw["event_type"], "event_payload": payload}, []


def parse_blocks(raw: Any) -> list[dict[str, Any]] | None:
    """Validate blocks (contracts 1.8) and fill missing block_id/action_id."""
    if raw is None:
        return None
    errors = validate_blocks(raw)
    if errors:
        raise SlackError("invalid_blocks", messages=errors)
    return fill_ids(raw)


def parse_content(p: Params, *, need_text: bool = True) -> Content:
    """Read text/blocks/attachments/metadata: no_text, msg_too_long, invalid_blocks(_format)."""
    metadata, warnings = parse_metadata(p.get_json("metadata", "invalid_metadata_format"))
    content = Content(
        text=p.get_str("text"),
        blocks=None,
        attachments=p.get_json("attachments", "invalid_attachments"),
        metadata=metadata,
        warnings=warnings,
    )
    raw_blocks = p.get_json("blocks", "invalid_blocks_format")
    if need_text and content.empty and not raw_blocks:
        raise SlackError("no_text")
    if content.text and len(content.text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    content.blocks = parse_blocks(raw_blocks)
    return content


def bot_message(ctx: Ctx, channel: str, content: Content, thread_ts: str | None) -> Message:
    """Create and store a message posted by the bot."""
    msg = Message(
        channel=channel,
        ts=ctx.state.next_ts(ctx.wall),
        user=ctx.state.bot_user_id,
        text=content.text or "",
        blocks=content.blocks,
        metadata=content.metadata,
        bot_id=ctx.state.bot_id,
        thread_ts=thread_ts,
    )
    if content.attachments is not None:
        msg.extra["attachments"] = content.attachments
    ctx.state.messages.append(msg)
    return msg


def post_message(ctx: Ctx, p: Params) -> dict[str, Any]:
    """chat.postMessage"""
    ch = member_channel(ctx, p.get_str("channel"), by_name=True)
    content = parse_content(p)
    msg = bot_message(ctx, ch.id, content, p.get_str("thread_ts") or None)
    if msg.thread_ts and p.get_bool("reply_broadcast"):
        msg.extra["reply_broadcast"] = True
    answer = {"channel": ch.id, "ts": msg.ts, "message": ctx.render.message(msg)}
    if content.warnings:
        answer["warning"] = ",".join(content.warnings)
        answer["response_metadata"] = {"warnings": content.warnings}
    return answer


def post_ephemeral(ctx: Ctx, p: Params) -> dict[str, Any]:
    """chat.postEphemeral (visible to `user` only, never in history)"""
    ch = member_channel(ctx, p.get_str("channel"), by_name=True)
    user = p.get_str("user")
    if not user:
        raise missing("user")
    if user not in ctx.state.users:
        raise SlackError("user_not_found")
    if user not in ch.members:
        raise SlackError("user_not_in_channel")
    msg = bot_message(ctx, ch.id, parse_content(p), p.get_str("thread_ts") or None)
    msg.ephemeral_to = user
    return {"message_ts": msg.ts}


def update_message(ctx: Ctx, msg: Message, content: Content) -> None:
    """Apply an edit the way chat.update does (absent fields keep their value)."""
    msg.edits.append({"text": msg.text, "blocks": msg.blocks, "ts": msg.edited_ts})
    msg.edited_ts = ctx.state.next_ts(ctx.wall)
    if content.text is not None:
        msg.text = content.text
    if content.blocks is not None:
        msg.blocks = content.blocks or None
    if content.attachments is not None:
        msg.extra["attachments"] = content.attachments
    if content.metadata is not None:
        msg.metadata = content.metadata


def update(ctx: Ctx, p: Params) -> dict[str, Any]:
    """chat.update (keeps the ts; records the previous version in `edits`)"""
    ch = visible_channel(ctx, p.get_str("channel"))
    ts = p.get_str("ts")
    if not ts:
        raise missing("ts")
    msg = ctx.state.message(ch.id, ts)
    if msg is None:
        raise SlackError("message_not_found")
    if msg.user != ctx.state.bot_user_id:
        raise SlackError("cant_update_message")
    if ch.is_archived:
        raise SlackError("is_archived")
    update_message(ctx, msg, parse_content(p))
    return {"channel": ch.id, "ts": msg.ts, "text": msg.text, "message": ctx.render.message(msg)}


def get_permalink(ctx: Ctx, p: Params) -> dict[str, Any]:
    """chat.getPermalink"""
    ch = visible_channel(ctx, p.get_str("channel"))
    ts = p.get_str("message_ts")
    if not ts:
        raise missing("message_ts")
    msg = ctx.state.message(ch.id, ts)
    if msg is None:
        raise SlackError("message_not_found")
    link = permalink(ch.id, ts)
    if msg.thread_ts and msg.thread_ts != ts:
        link += f"?thread_ts={msg.thread_ts}&cid={ch.id}"
    return {"channel": ch.id, "permalink": link}


def _pin_target(ctx: Ctx, p: Params) -> tuple[str, str]:
    ch = member_channel(ctx, p.get_str("channel"), allow_archived=True)
    ts = p.get_str("timestamp")
    if not ts:
        raise SlackError("no_item_specified")
    if ctx.state.message(ch.id, ts) is None:
        raise SlackError("message_not_found")
    return ch.id, ts


def pins_add(ctx: Ctx, p: Params) -> dict[str, Any]:
    """pins.add"""
    channel, ts = _pin_target(ctx, p)
    if any(pin.channel == channel and pin.ts == ts for pin in ctx.state.pins):
        raise SlackError("already_pinned")
    bot = ctx.state.bot_user_id
    ctx.state.pins.append(Pin(channel=channel, ts=ts, created=int(ctx.wall), created_by=bot))
    return {}


def pins_remove(ctx: Ctx, p: Params) -> dict[str, Any]:
    """pins.remove"""
    channel, ts = _pin_target(ctx, p)
    kept = [pin for pin in ctx.state.pins if (pin.channel, pin.ts) != (channel, ts)]
    if len(kept) == len(ctx.state.pins):
        raise SlackError("no_pin")
    ctx.state.pins = kept
    return {}


def pins_list(ctx: Ctx, p: Params) -> dict[str, Any]:
    """pins.list"""
    ch = visible_channel(ctx, p.get_str("channel"))
    items = []
    for pin in (pin for pin in ctx.state.pins if pin.channel == ch.id):
        msg = ctx.state.message(ch.id, pin.ts)
        if msg is not None:
            items.append(
                {
                    "type": "message",
                    "created": pin.created,
                    "created_by": pin.created_by,
                    "channel": ch.id,
                    "message": ctx.render.message(msg),
                }
            )
    return {"items": items}


METHODS: dict[str, Handler] = {
    "chat.getPermalink": get_permalink,
    "chat.postEphemeral": post_ephemeral,
    "chat.postMessage": post_message,
    "chat.update": update,
    "pins.add": pins_add,
    "pins.list": pins_list,
    "pins.remove": pins_remove,
}
