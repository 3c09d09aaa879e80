"""Text with references: what the timeline stores, free of any surface's markup.

A timeline entry is plain text (as a person reads it in a terminal) plus the spans of it that
refer to something: a user, a user group, a channel, a link. Each surface renders the spans its
own way (Slack: `<@U123>`; a terminal: the text as it is). `phrase()` builds one from pieces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class RefKind(StrEnum):
    """What a span of text refers to."""

    USER = "user"
    USERGROUP = "usergroup"
    CHANNEL = "channel"
    LINK = "link"
    EVERYONE = "everyone"  # everyone in the channel the text is posted in


@dataclass(frozen=True)
class Ref:
    """The span text[start:end] refers to `target` (a user id, a group id, a channel id, a URL)."""

    kind: RefKind
    target: str
    start: int
    end: int

    def to_data(self) -> dict[str, Any]:
        """JSON-able form, as stored."""
        return {
            "kind": self.kind.value,
            "target": self.target,
            "start": self.start,
            "end": self.end,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Ref:
        """The stored form read back."""
        return cls(RefKind(data["kind"]), str(data["target"]), int(data["start"]), int(data["end"]))


class Rich(str):
    """Plain text and the references in it. It is the plain text (a `str`: what a terminal
    shows, what comparisons and f-strings see) with `refs` beside it."""

    refs: tuple[Ref, ...]

    def __new__(cls, text: str = "", refs: Iterable[Ref] = ()) -> Rich:
        made = super().__new__(cls, text)
        made.refs = tuple(refs)
        return made

    @property
    def text(self) -> str:
        """The plain text."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Rich({self.text!r}, {self.refs!r})"

    def spans(self) -> Iterable[tuple[str, Ref | None]]:
        """The text cut into pieces, each plain (None) or a reference."""
        text = self.text
        at = 0
        for ref in sorted(self.refs, key=lambda r: r.start):
            if ref.start > at:
                yield text[at : ref.start], None
            yield text[ref.start : ref.end], ref
            at = ref.end
        if at < len(text):
            yield text[at:], None

    def clipped(self, limit: int) -> Rich:
        """At most `limit` characters, with an ellipsis when cut; a reference cut through is
        dropped (its label stays as text)."""
        if len(self) <= limit:
            return self
        return Rich(self.text[: limit - 1] + "…", (r for r in self.refs if r.end <= limit - 1))

    def refs_data(self) -> list[dict[str, Any]]:
        """The references in their stored form."""
        return [r.to_data() for r in self.refs]


def rich(text: str) -> Rich:
    """Any text as Rich (a plain string has no references)."""
    return text if isinstance(text, Rich) else Rich(text)


Piece = str | Rich


def phrase(*pieces: Piece) -> Rich:
    """Pieces of text and references, joined."""
    text: list[str] = []
    refs: list[Ref] = []
    at = 0
    for piece in pieces:
        if isinstance(piece, Rich):
            refs += [Ref(r.kind, r.target, r.start + at, r.end + at) for r in piece.refs]
        text.append(str.__str__(piece))
        at += len(piece)
    return Rich("".join(text), tuple(refs))


def join(pieces: Sequence[Piece], separator: str = ", ") -> Rich:
    """Pieces with `separator` between them."""
    parts: list[Piece] = []
    for i, piece in enumerate(pieces):
        if i:
            parts.append(separator)
        parts.append(piece)
    return phrase(*parts)


def ref(kind: RefKind, target: str, label: str) -> Rich:
    """A reference shown as `label`."""
    return Rich(label, (Ref(kind, target, 0, len(label)),))


_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


def user(user_id: str) -> Rich:
    """A person, by Slack user id."""
    return ref(RefKind.USER, user_id, f"@{user_id}")


def usergroup(group_id: str) -> Rich:
    """A user group, by id."""
    return ref(RefKind.USERGROUP, group_id, f"@{group_id}")


def everyone() -> Rich:
    """Everyone in the channel the text is posted in (Slack notifies them all)."""
    return ref(RefKind.EVERYONE, "channel", "@channel")


def who(actor: str) -> Piece:
    """How text names an actor: a reference for a person, the name for a system."""
    return user(actor) if _USER_ID.fullmatch(actor) else actor


def refs_from_data(data: Iterable[Mapping[str, Any]]) -> tuple[Ref, ...]:
    """Stored references read back."""
    return tuple(Ref.from_data(d) for d in data)
