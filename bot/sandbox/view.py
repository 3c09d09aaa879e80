"""What the sandbox page shows, built from the emulator's state for one user and one channel."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.sandbox.blocks import blocks
from bot.sandbox.mrkdwn import plain, to_html
from bot.slack.emulator.state import Channel, EmulatorState, Message

MAX_MESSAGES = 300  # the newest; a long drill history stays fast to render
ALERTS_HINT = "Fire a drill: pick an alert above, or run <code>tocsin drill</code>."
EMPTY_HINT = "No messages yet."


@dataclass(frozen=True)
class Viewer:
    """Who looks at the workspace, and where the emulator serves files."""

    user: str
    api_path: str  # "/sandbox/api/"
    hint_in: str | None = None  # the alerts channel, where an empty history says what to do

    def names(self, state: EmulatorState) -> Any:
        """A function naming a user or a channel by its id."""
        return _names(state)

    def file_url(self, file_id: str) -> str:
        """Where the page downloads an uploaded file."""
        return f"{self.api_path}files/{html.escape(file_id)}"


def _names(state: EmulatorState) -> Any:
    def name(ref: str) -> str:
        user = state.users.get(ref)
        if user is not None:
            return user.real_name or user.name
        channel = state.channels.get(ref)
        return channel.name if channel is not None else ref

    return name


def people(state: EmulatorState) -> list[dict[str, str]]:
    """The workspace's people, for the page's pickers: id, handle, name."""
    return [
        {"id": u.id, "handle": u.name, "name": u.real_name or u.name}
        for u in state.users.values()
        if not u.is_bot and not u.deleted
    ]


def visible_channels(state: EmulatorState, user: str) -> list[Channel]:
    """Channels the user can see: public ones, and private ones and DMs they are in."""
    shown = [
        c
        for c in state.channels.values()
        if (not c.is_private or user in c.members) and (not c.is_im or c.im_user == user)
    ]
    return sorted(shown, key=lambda c: (c.is_im, c.is_archived, c.name))


def channel_list(state: EmulatorState, user: str) -> list[dict[str, Any]]:
    """The sidebar: id, shown name, and how many messages each channel has."""
    counts: dict[str, int] = {}
    for msg in state.messages:
        if msg.ephemeral_to in (None, user):
            counts[msg.channel] = counts.get(msg.channel, 0) + 1
    return [
        {
            "id": c.id,
            "name": state.bot_name if c.is_im else c.name,
            "kind": "im" if c.is_im else ("private" if c.is_private else "public"),
            "archived": c.is_archived,
            "member": user in c.members,
            "messages": counts.get(c.id, 0),
        }
        for c in visible_channels(state, user)
    ]


def _time(ts: str) -> str:
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%H:%M:%S")
    except (ValueError, OverflowError):
        return ""


def _files(msg: Message, state: EmulatorState, viewer: Viewer) -> str:
    out = []
    for file_id in msg.files:
        stored = state.files.get(file_id)
        if stored is None:
            continue
        url = viewer.file_url(file_id)
        title = plain(stored.title or stored.name)
        if stored.name.lower().endswith((".png", ".jpg", ".jpeg", ".gif")):
            out.append(
                f'<figure class="file"><figcaption>{title}</figcaption>'
                f'<img src="{url}" alt="{title}" loading="lazy"></figure>'
            )
        else:
            out.append(f'<a class="file" href="{url}">{title}</a>')
    return "".join(out)


def render_message(
    msg: Message, state: EmulatorState, viewer: Viewer, *, pinned: bool = False
) -> str:
    """One message as HTML (system lines, bot messages with blocks, files, ephemeral marks)."""
    names = _names(state)
    ts = html.escape(msg.ts)
    if msg.subtype in ("channel_join", "channel_topic", "channel_purpose"):
        who = html.escape(names(msg.user))
        text = to_html(msg.text, names)
        return f'<div class="msg system" data-ts="{ts}"><b>{who}</b> {text}</div>'
    author = state.users.get(msg.user)
    is_bot = bool(msg.bot_id) or bool(author and author.is_bot)
    name = html.escape(names(msg.user))
    tag = '<span class="tag">APP</span>' if is_bot else ""
    body = blocks(msg.blocks, names, viewer.file_url) if msg.blocks else to_html(msg.text, names)
    classes = ["msg"]
    notes = []
    if msg.ephemeral_to is not None:
        classes.append("ephemeral")
        notes.append("Only visible to you")
    if pinned:
        classes.append("pinned")
        notes.append("📌 Pinned")
    if msg.thread_ts and msg.thread_ts != msg.ts:
        notes.append("↳ reply in thread")
    if msg.edited_ts:
        notes.append("(edited)")
    note = f'<div class="note">{" · ".join(notes)}</div>' if notes else ""
    return (
        f'<div class="{" ".join(classes)}" data-ts="{ts}">{note}'
        f'<div class="head"><span class="author">{name}</span>{tag}'
        f'<span class="time">{_time(msg.ts)}</span></div>'
        f'<div class="body">{body}</div>{_files(msg, state, viewer)}</div>'
    )


def _modal(state: EmulatorState, viewer: Viewer) -> dict[str, Any] | None:
    mine = [v for v in state.views.values() if v.user == viewer.user]
    if not mine:
        return None
    view = mine[-1]
    names = _names(state)
    title = view.view.get("title")
    submit = view.view.get("submit")
    close = view.view.get("close")
    return {
        "id": view.id,
        "title": plain(title["text"]) if isinstance(title, dict) else "",
        "submit": plain(submit["text"]) if isinstance(submit, dict) else "",
        "close": plain(close["text"]) if isinstance(close, dict) else "Close",
        "html": blocks(view.view.get("blocks"), names, viewer.file_url),
    }


def page_state(
    state: EmulatorState, viewer: Viewer, channel_id: str | None, revision: int
) -> dict[str, Any]:
    """Everything the page shows for one channel (the first visible one if none is given)."""
    channels = channel_list(state, viewer.user)
    ids = [c["id"] for c in channels]
    if channel_id not in ids:
        channel_id = ids[0] if ids else None
    out: dict[str, Any] = {"revision": revision, "channels": channels, "channel": None}
    out["modal"] = _modal(state, viewer)
    if channel_id is None:
        return out
    channel = state.channels[channel_id]
    pins = {p.ts for p in state.pins if p.channel == channel_id}
    shown = [
        m
        for m in state.messages
        if m.channel == channel_id and m.ephemeral_to in (None, viewer.user)
    ][-MAX_MESSAGES:]
    pinned = [m for m in shown if m.ts in pins and m.ephemeral_to is None]
    out["channel"] = {
        "id": channel.id,
        "name": state.bot_name if channel.is_im else channel.name,
        "topic": to_html(channel.topic, _names(state)),
        "member": viewer.user in channel.members,
        "messages": "".join(render_message(m, state, viewer, pinned=m.ts in pins) for m in shown),
        "pins": "".join(render_message(m, state, viewer) for m in pinned),
        "pin_count": len(pins),
        "hint": "" if shown else (ALERTS_HINT if channel.id == viewer.hint_in else EMPTY_HINT),
    }
    return out
