"""conversations.* methods of the Slack emulator."""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from bot.slack.emulator.params import Ctx, Params, SlackError, missing
from bot.slack.emulator.state import Channel, Message, new_id, ts_micros

T = TypeVar("T")
Handler = Callable[[Ctx, Params], dict[str, Any]]
NAME_RE = re.compile(r"[a-z0-9_-]+")
TOPIC_MAX = 250


def channel_name_error(name: str) -> str | None:
    """Return the conversations.create error code for a name, or None if it is valid."""
    if not name:
        return "invalid_name_required"
    if len(name) > 80:
        return "invalid_name_maxlength"
    if all(c in string.punctuation for c in name):
        return "invalid_name_punctuation"
    if not NAME_RE.fullmatch(name):
        return "invalid_name_specials"
    return None


def visible_channel(ctx: Ctx, ref: str | None, *, by_name: bool = False) -> Channel:
    """Find a channel the bot can see (private ones only as a member) or raise channel_not_found.

    Channel arguments are IDs (REF); only chat.postMessage and chat.postEphemeral also take a
    name (`by_name`).
    """
    ch = ctx.state.channel(ref) if by_name else ctx.state.channels.get(ref or "")
    if ch is None or (ch.is_private and ctx.state.bot_user_id not in ch.members):
        raise SlackError("channel_not_found")
    return ch


def member_channel(
    ctx: Ctx, ref: str | None, *, allow_archived: bool = False, by_name: bool = False
) -> Channel:
    """Find a channel the bot is a member of: channel_not_found / is_archived / not_in_channel."""
    ch = visible_channel(ctx, ref, by_name=by_name)
    if ch.is_archived and not allow_archived:
        raise SlackError("is_archived")
    if ctx.state.bot_user_id not in ch.members:
        raise SlackError("not_in_channel")
    return ch


def paginate(
    items: Sequence[T], key: Callable[[T], str], p: Params, default: int
) -> tuple[list[T], str]:
    """Cut a page of `limit` items starting at `cursor`; return it with the next cursor ("")."""
    limit = max(1, min(p.get_int("limit", default), 1000))
    start = 0
    cursor = p.get_str("cursor")
    if cursor:
        try:
            start_key = base64.b64decode(cursor, validate=True).decode().removeprefix("next:")
        except (binascii.Error, UnicodeDecodeError):
            raise SlackError("invalid_cursor") from None
        keys = [key(item) for item in items]
        if start_key not in keys:
            raise SlackError("invalid_cursor")
        start = keys.index(start_key)
    page = list(items[start : start + limit])
    rest = items[start + limit :]
    nxt = base64.b64encode(f"next:{key(rest[0])}".encode()).decode() if rest else ""
    return page, nxt


def system_message(ctx: Ctx, ch: Channel, user: str, subtype: str, text: str) -> Message:
    """Append a channel event message (channel_join, channel_topic, ...)."""
    ts = ctx.state.next_ts(ctx.wall)
    msg = Message(channel=ch.id, ts=ts, user=user, text=text, subtype=subtype)
    ctx.state.messages.append(msg)
    return msg


def create(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.create"""
    name = p.get_str("name") or ""
    error = channel_name_error(name)
    if error:
        raise SlackError(error)
    if any(name in (c.name, *c.previous_names) for c in ctx.state.channels.values()):
        raise SlackError("name_taken")
    bot = ctx.state.bot_user_id
    ch = Channel(
        id=new_id("C", ctx.state.channels),
        name=name,
        created=int(ctx.wall),
        creator=bot,
        is_private=p.get_bool("is_private"),
        members=[bot],
    )
    ctx.state.channels[ch.id] = ch
    return {"channel": ctx.render.channel(ch)}


def open_(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.open: the direct message channel with one user (made on first use)."""
    ids = [u.strip() for u in (p.get_str("users") or "").split(",") if u.strip()]
    if not ids:
        raise SlackError("users_list_not_supplied")
    if len(ids) > 1:
        raise SlackError("not_supported")  # group DMs are not emulated
    user = ids[0]
    if user not in ctx.state.users:
        raise SlackError("user_not_found")
    if ctx.state.users[user].deleted:
        raise SlackError("user_disabled")
    for ch in ctx.state.channels.values():
        if ch.is_im and ch.im_user == user:
            return {"channel": {"id": ch.id}, "already_open": True}
    bot = ctx.state.bot_user_id
    ch = Channel(
        id=new_id("D", ctx.state.channels),
        name=user,
        created=int(ctx.wall),
        creator=bot,
        is_private=True,
        members=[bot, user],
        is_im=True,
        im_user=user,
    )
    ctx.state.channels[ch.id] = ch
    return {"channel": {"id": ch.id}}


def _invite_error(ctx: Ctx, ch: Channel, user: str) -> str | None:
    """Why one user cannot be invited into `ch`, or None."""
    if user == ctx.state.bot_user_id:
        return "cant_invite_self"
    found = ctx.state.users.get(user)
    if found is None:
        return "user_not_found"
    if found.deleted:
        return "cant_invite"  # a deactivated account
    if user in ch.members:
        return "already_in_channel"
    return None


def invite(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.invite: all or nothing, unless `force` (contracts semantics.md)."""
    ch = member_channel(ctx, p.get_str("channel"))
    ids = list(dict.fromkeys(u.strip() for u in (p.get_str("users") or "").split(",") if u.strip()))
    if not ids:
        raise SlackError("no_user")
    errors = [
        {"user": user, "ok": False, "error": error}
        for user in ids
        if (error := _invite_error(ctx, ch, user)) is not None
    ]
    failed = {e["user"] for e in errors}
    valid = [user for user in ids if user not in failed]
    if errors and (not p.get_bool("force") or not valid):
        raise SlackError(str(errors[0]["error"]), extra={"errors": errors})
    for user in valid:
        ch.members.append(user)
        system_message(ctx, ch, user, "channel_join", f"<@{user}> has joined the channel")
    answer: dict[str, Any] = {"channel": ctx.render.channel(ch)}
    if errors:
        answer["errors"] = errors
    return answer


def _set_text(ctx: Ctx, p: Params, field: str) -> dict[str, Any]:
    ch = member_channel(ctx, p.get_str("channel"))
    value = p.get_str(field) or ""
    if len(value) > TOPIC_MAX:
        raise SlackError("too_long")
    bot = ctx.state.bot_user_id
    setattr(ch, field, value)
    setattr(ch, f"{field}_creator", bot)
    setattr(ch, f"{field}_last_set", int(ctx.wall))
    msg = system_message(ctx, ch, bot, f"channel_{field}", f"set the channel {field}: {value}")
    msg.extra[field] = value
    return {"channel": ctx.render.channel(ch)}


def set_topic(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.setTopic"""
    return _set_text(ctx, p, "topic")


def set_purpose(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.setPurpose"""
    return _set_text(ctx, p, "purpose")


def join(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.join"""
    ch = visible_channel(ctx, p.get_str("channel"))
    bot = ctx.state.bot_user_id
    if ch.is_archived:
        raise SlackError("is_archived")
    if bot in ch.members:
        warning = "already_in_channel"
        return {
            "channel": ctx.render.channel(ch),
            "warning": warning,
            "response_metadata": {"warnings": [warning]},
        }
    ch.members.append(bot)
    system_message(ctx, ch, bot, "channel_join", f"<@{bot}> has joined the channel")
    return {"channel": ctx.render.channel(ch)}


def archive(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.archive: `{"ok": true}`; the channel says who archived it (a
    `channel_archive` message) and takes no more posts (contracts semantics.md)."""
    ch = visible_channel(ctx, p.get_str("channel"))
    if ch.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if ch.is_general:
        raise SlackError("cant_archive_general")
    if ch.is_archived:
        raise SlackError("already_archived")
    if ctx.state.bot_user_id not in ch.members:
        raise SlackError("not_in_channel")
    if ctx.state.archiving_restricted:
        raise SlackError("restricted_action")
    bot = ctx.state.bot_user_id
    system_message(ctx, ch, bot, "channel_archive", f"<@{bot}> archived the channel")
    ch.is_archived = True
    return {}


def info(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.info"""
    return {"channel": ctx.render.channel(visible_channel(ctx, p.get_str("channel")))}


def list_(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.list"""
    types = (p.get_str("types") or "public_channel").split(",")
    exclude_archived = p.get_bool("exclude_archived")
    bot = ctx.state.bot_user_id
    chans = [
        c
        for c in ctx.state.channels.values()
        if not c.is_im
        and ("private_channel" if c.is_private else "public_channel") in types
        and (bot in c.members or not c.is_private)
        and not (exclude_archived and c.is_archived)
    ]
    page, nxt = paginate(chans, lambda c: c.id, p, 100)
    return {
        "channels": [ctx.render.channel(c) for c in page],
        "response_metadata": {"next_cursor": nxt},
    }


Bounds = tuple[int, int | None, bool]


def _bounds(p: Params) -> Bounds:
    oldest = ts_micros(p.get_str("oldest") or "0")
    if oldest is None:
        raise SlackError("invalid_ts_oldest")
    latest_raw = p.get_str("latest")
    latest = ts_micros(latest_raw) if latest_raw else None
    if latest_raw and latest is None:
        raise SlackError("invalid_ts_latest")
    return oldest, latest, p.get_bool("inclusive")


def _in_range(ts: str, bounds: Bounds) -> bool:
    oldest, latest, inclusive = bounds
    value = ts_micros(ts) or 0
    above = value >= oldest if inclusive else value > oldest
    below = latest is None or (value <= latest if inclusive else value < latest)
    return above and below


def _in_history(msg: Message) -> bool:
    return msg.thread_ts in (None, msg.ts) or bool(msg.extra.get("reply_broadcast"))


def history(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.history (newest first; metadata only with include_all_metadata)"""
    ch = member_channel(ctx, p.get_str("channel"), allow_archived=True)
    bounds = _bounds(p)
    msgs = [
        m for m in ctx.state.channel_messages(ch.id) if _in_history(m) and _in_range(m.ts, bounds)
    ]
    msgs.reverse()
    page, nxt = paginate(msgs, lambda m: m.ts, p, 100)
    with_meta = p.get_bool("include_all_metadata")
    return {
        "messages": [ctx.render.message(m, include_metadata=with_meta) for m in page],
        "has_more": bool(nxt),
        "pin_count": sum(1 for pin in ctx.state.pins if pin.channel == ch.id),
        "response_metadata": {"next_cursor": nxt},
    }


def replies(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.replies (parent first, then replies oldest first)"""
    ch = member_channel(ctx, p.get_str("channel"), allow_archived=True)
    ts = p.get_str("ts")
    if not ts:
        raise missing("ts")
    if ctx.state.message(ch.id, ts) is None:
        raise SlackError("thread_not_found")
    thread = [m for m in ctx.state.channel_messages(ch.id) if ts in (m.ts, m.thread_ts)]
    bounds = _bounds(p)
    thread = [m for m in thread if _in_range(m.ts, bounds)]
    page, nxt = paginate(thread, lambda m: m.ts, p, 1000)
    with_meta = p.get_bool("include_all_metadata")
    return {
        "messages": [ctx.render.message(m, include_metadata=with_meta) for m in page],
        "has_more": bool(nxt),
        "response_metadata": {"next_cursor": nxt},
    }


def members(ctx: Ctx, p: Params) -> dict[str, Any]:
    """conversations.members"""
    ch = visible_channel(ctx, p.get_str("channel"))
    page, nxt = paginate(ch.members, lambda u: u, p, 100)
    return {"members": page, "response_metadata": {"next_cursor": nxt}}


METHODS: dict[str, Handler] = {
    "conversations.archive": archive,
    "conversations.create": create,
    "conversations.history": history,
    "conversations.info": info,
    "conversations.invite": invite,
    "conversations.join": join,
    "conversations.open": open_,
    "conversations.list": list_,
    "conversations.members": members,
    "conversations.replies": replies,
    "conversations.setPurpose": set_purpose,
    "conversations.setTopic": set_topic,
}
