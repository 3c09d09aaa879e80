"""Workspace state of the Slack emulator, as plain dataclasses that snapshot to JSON-able dicts."""

from __future__ import annotations

import base64
import copy
import secrets
import string
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

ID_ALPHABET = string.ascii_uppercase + string.digits


@dataclass
class Channel:
    """A public or private channel."""

    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_archived: bool = False
    members: list[str] = field(default_factory=list)
    topic: str = ""
    topic_creator: str = ""
    topic_last_set: int = 0
    purpose: str = ""
    purpose_creator: str = ""
    purpose_last_set: int = 0
    previous_names: list[str] = field(default_factory=list)
    is_im: bool = False
    im_user: str = ""
    is_general: bool = False  # the workspace's #general: it cannot be archived


@dataclass
class Message:
    """A message; `ephemeral_to` is set for ephemeral messages (visible to that user only)."""

    channel: str
    ts: str
    user: str
    text: str = ""
    blocks: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None
    bot_id: str | None = None
    subtype: str | None = None
    thread_ts: str | None = None
    files: list[str] = field(default_factory=list)
    ephemeral_to: str | None = None
    edited_ts: str | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pin:
    """A pinned message."""

    channel: str
    ts: str
    created: int
    created_by: str


@dataclass
class User:
    """A workspace member (human or bot)."""

    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False
    tz: str = "UTC"
    deleted: bool = False


@dataclass
class Usergroup:
    """A user group (`@handle`)."""

    id: str
    handle: str
    users: list[str] = field(default_factory=list)


@dataclass
class StoredFile:
    """A file uploaded through files.getUploadURLExternal + upload URL + completeUploadExternal."""

    id: str
    name: str
    length: int
    user: str
    created: int
    title: str = ""
    content_b64: str = ""
    uploaded: bool = False
    completed: bool = False
    channels: list[str] = field(default_factory=list)

    def content(self) -> bytes:
        """Return the uploaded bytes."""
        return base64.b64decode(self.content_b64)


@dataclass
class View:
    """A modal opened with views.open."""

    id: str
    user: str
    view: dict[str, Any]
    hash: str


@dataclass
class Trigger:
    """A trigger_id handed to the bot with a command or an action."""

    trigger_id: str
    user: str
    issued_at: float
    used: bool = False


@dataclass
class ResponseUrl:
    """A response_url handed to the bot; `message_ts` is the message an action came from."""

    token: str
    channel: str
    user: str
    issued_at: float
    message_ts: str | None = None
    uses: int = 0


@dataclass
class ResponsePost:
    """What the bot sent to a response_url (or in a slash-command ack body) and its effect."""

    token: str
    body: dict[str, Any]
    effect: str
    source: str
    at: float


_DICT_FIELDS: dict[str, type[Any]] = {
    "channels": Channel,
    "users": User,
    "usergroups": Usergroup,
    "files": StoredFile,
    "views": View,
    "triggers": Trigger,
    "response_urls": ResponseUrl,
}
_LIST_FIELDS: dict[str, type[Any]] = {
    "messages": Message,
    "pins": Pin,
    "response_posts": ResponsePost,
}


@dataclass
class EmulatorState:
    """Everything the emulated workspace holds; `to_dict`/`from_dict` snapshot and restore it."""

    team_id: str = "T0EMULATOR"
    team_domain: str = "tocsin-emulator"
    team_name: str = "Tocsin Emulator"
    bot_user_id: str = "U0TOCSINBOT"
    bot_name: str = "tocsin"
    bot_id: str = "B0TOCSINBOT"
    app_id: str = "A0TOCSINAPP"
    channels: dict[str, Channel] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)
    users: dict[str, User] = field(default_factory=dict)
    usergroups: dict[str, Usergroup] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    response_urls: dict[str, ResponseUrl] = field(default_factory=dict)
    response_posts: list[ResponsePost] = field(default_factory=list)
    last_ts_us: int = 0
    # A workspace preference that keeps apps from archiving channels (`restricted_action`).
    archiving_restricted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a deep, JSON-serialisable copy of the state."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmulatorState:
        """Rebuild a state from `to_dict()` output."""
        raw = copy.deepcopy(data)
        for name, item_cls in _DICT_FIELDS.items():
            raw[name] = {key: item_cls(**item) for key, item in raw.get(name, {}).items()}
        for name, item_cls in _LIST_FIELDS.items():
            raw[name] = [item_cls(**item) for item in raw.get(name, [])]
        return cls(**raw)

    def next_ts(self, wall: float) -> str:
        """Return a strictly increasing message timestamp ("%.6f") not before `wall`."""
        self.last_ts_us = max(self.last_ts_us + 1, int(wall * 1_000_000))
        return format_ts(self.last_ts_us)

    def channel(self, ref: str | None) -> Channel | None:
        """Find a channel by id, name or #name."""
        if not ref:
            return None
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def message(self, channel: str, ts: str) -> Message | None:
        """Find a non-ephemeral message of a channel by ts."""
        for msg in self.messages:
            if msg.channel == channel and msg.ts == ts and msg.ephemeral_to is None:
                return msg
        return None

    def any_message(self, channel: str, ts: str) -> Message | None:
        """Find a message of a channel by ts, ephemeral ones included."""
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def channel_messages(self, channel: str) -> list[Message]:
        """Return the non-ephemeral messages of a channel, oldest first."""
        return [m for m in self.messages if m.channel == channel and m.ephemeral_to is None]


def new_id(prefix: str, taken: dict[str, Any], length: int = 10) -> str:
    """Return a Slack-style id (prefix + uppercase alnum) not among `taken`."""
    while True:
        candidate = prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(length))
        if candidate not in taken:
            return candidate


def format_ts(micros: int) -> str:
    """Format integer microseconds as a Slack ts string."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def ts_micros(ts: str) -> int | None:
    """Parse a Slack ts (or any decimal seconds string) into microseconds; None if invalid."""
    try:
        return int(Decimal(ts) * 1_000_000)
    except (InvalidOperation, ValueError, OverflowError):
        return None
