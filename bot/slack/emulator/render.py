"""Render emulator state objects into the JSON shapes of the Slack Web API."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.slack.emulator.state import Channel, EmulatorState, Message, StoredFile, User

PERMALINK_BASE = "https://emulator.slack.local"


def _setting(value: str, creator: str, last_set: int) -> dict[str, Any]:
    return {"value": value, "creator": creator, "last_set": last_set}


def tz_offset(tz: str) -> int:
    """Return the current UTC offset of a tz name in seconds (0 if unknown)."""
    try:
        offset = datetime.now(UTC).astimezone(ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset else 0


def permalink(channel: str, ts: str) -> str:
    """Return the emulator permalink of a message."""
    return f"{PERMALINK_BASE}/archives/{channel}/p{ts.replace('.', '')}"


@dataclass
class Renderer:
    """Turns dataclasses into API JSON; `base_url` is where file downloads are served."""

    state: EmulatorState
    base_url: str

    def channel(self, ch: Channel) -> dict[str, Any]:
        """Return a conversation object (shape of conversations.create)."""
        return {
            "id": ch.id,
            "name": ch.name,
            "is_channel": not ch.is_im,
            "is_group": False,
            "is_im": ch.is_im,
            **({"user": ch.im_user} if ch.is_im else {}),
            "is_mpim": False,
            "is_private": ch.is_private,
            "created": ch.created,
            "is_archived": ch.is_archived,
            "is_general": ch.is_general,
            "unlinked": 0,
            "name_normalized": ch.name,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "pending_shared": [],
            "is_pending_ext_shared": False,
            "is_member": self.state.bot_user_id in ch.members,
            "creator": ch.creator,
            "last_read": "0000000000.000000",
            "latest": None,
            "unread_count": 0,
            "unread_count_display": 0,
            "topic": _setting(ch.topic, ch.topic_creator, ch.topic_last_set),
            "purpose": _setting(ch.purpose, ch.purpose_creator, ch.purpose_last_set),
            "previous_names": list(ch.previous_names),
            "priority": 0,
        }

    def message(self, msg: Message, *, include_metadata: bool = False) -> dict[str, Any]:
        """Return a message object (metadata only when asked, like include_all_metadata)."""
        out: dict[str, Any] = {"type": "message", "ts": msg.ts, "user": msg.user, "text": msg.text}
        if msg.bot_id:
            out.update(bot_id=msg.bot_id, app_id=self.state.app_id, username=self.state.bot_name)
        subtype = msg.subtype or ("bot_message" if msg.bot_id else None)
        if subtype:
            out["subtype"] = subtype
        out["team"] = self.state.team_id
        if msg.blocks is not None:
            out["blocks"] = msg.blocks
        if msg.edited_ts:
            out["edited"] = {"user": msg.user, "ts": msg.edited_ts}
        if msg.files:
            out["files"] = [self.file(self.state.files[f]) for f in msg.files]
        out.update(self._thread_fields(msg))
        out.update(msg.extra)
        if include_metadata and msg.metadata:
            out["metadata"] = msg.metadata
        return out

    def _thread_fields(self, msg: Message) -> dict[str, Any]:
        if msg.thread_ts and msg.thread_ts != msg.ts:
            parent = self.state.message(msg.channel, msg.thread_ts)
            return {"thread_ts": msg.thread_ts, "parent_user_id": parent.user if parent else ""}
        replies = [
            m
            for m in self.state.channel_messages(msg.channel)
            if m.thread_ts == msg.ts and m.ts != msg.ts
        ]
        if not replies:
            return {}
        return {
            "thread_ts": msg.ts,
            "reply_count": len(replies),
            "reply_users": sorted({m.user for m in replies}),
            "latest_reply": replies[-1].ts,
        }

    def user(self, user: User) -> dict[str, Any]:
        """Return a user object (shape of users.info)."""
        profile = {
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.name,
            "display_name_normalized": user.name,
            "team": self.state.team_id,
        }
        return {
            "id": user.id,
            "team_id": self.state.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.real_name,
            "tz": user.tz,
            "tz_offset": tz_offset(user.tz),
            "is_admin": False,
            "is_owner": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "profile": profile,
        }

    def file(self, f: StoredFile) -> dict[str, Any]:
        """Return a file object."""
        mimetype = mimetypes.guess_type(f.name)[0] or "application/octet-stream"
        return {
            "id": f.id,
            "created": f.created,
            "timestamp": f.created,
            "name": f.name,
            "title": f.title or f.name,
            "mimetype": mimetype,
            "filetype": f.name.rsplit(".", 1)[-1] if "." in f.name else "binary",
            "user": f.user,
            "size": len(f.content()),
            "is_public": any(not self._private(c) for c in f.channels),
            "url_private": f"{self.base_url}files/{f.id}",
            "permalink": f"{PERMALINK_BASE}/files/{f.user}/{f.id}/{f.name}",
            "channels": list(f.channels),
        }

    def _private(self, channel_id: str) -> bool:
        ch = self.state.channels.get(channel_id)
        return ch is None or ch.is_private
