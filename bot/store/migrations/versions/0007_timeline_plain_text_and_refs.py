"""timeline: plain text with references, instead of Slack's mrkdwn tokens

Entries were stored with Slack's tokens in their text (`<@U123>`, `<#C123|name>`,
`<!subteam^S123>`, `<https://…|label>`). Each becomes its label in plain text ("@U123",
"#name", "@S123", "label"), and the span it covers is kept in the new `refs` column, so every
surface renders it its own way. Downgrade writes the tokens back.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tokens as Tocsin wrote them (and as Slack sends them): frozen here, as of this revision.
_TOKEN = re.compile(
    r"<(@[UW][A-Z0-9]+|#C[A-Z0-9]+|!subteam\^S[A-Z0-9]+|(?:https?|mailto):[^<>|\s]+)"
    r"(?:\|([^<>]*))?>"
)

_events = sa.table(
    "timeline_events",
    sa.column("id", sa.Integer),
    sa.column("text", sa.Text),
    sa.column("refs", sa.JSON),
)


def plain_with_refs(text: str) -> tuple[str, list[dict[str, Any]]]:
    """A stored text with tokens as plain text and the references' spans."""
    out: list[str] = []
    refs: list[dict[str, Any]] = []
    at = 0
    start = 0
    for token in _TOKEN.finditer(text):
        before = text[start : token.start()]
        out.append(before)
        at += len(before)
        target, label = token.group(1), token.group(2) or ""
        if target.startswith("@"):
            kind, target, shown = "user", target[1:], "@" + (label or target[1:])
        elif target.startswith("#"):
            kind, target, shown = "channel", target[1:], "#" + (label or target[1:])
        elif target.startswith("!subteam^"):
            group = target.removeprefix("!subteam^")
            kind, target = "usergroup", group
            shown = label if label.startswith("@") else "@" + (label or group)
        else:
            kind, shown = "link", label or target
        out.append(shown)
        refs.append({"kind": kind, "target": target, "start": at, "end": at + len(shown)})
        at += len(shown)
        start = token.end()
    out.append(text[start:])
    return "".join(out), refs


def with_tokens(text: str, refs: list[dict[str, Any]]) -> str:
    """The inverse, for downgrade."""
    out: list[str] = []
    at = 0
    for ref in sorted(refs, key=lambda r: int(r["start"])):
        start, end = int(ref["start"]), int(ref["end"])
        out.append(text[at:start])
        kind, target = ref["kind"], ref["target"]
        if kind == "user":
            out.append(f"<@{target}>")
        elif kind == "channel":
            out.append(f"<#{target}>")
        elif kind == "usergroup":
            out.append(f"<!subteam^{target}>")
        else:
            out.append(f"<{target}|{text[start:end]}>")
        at = end
    out.append(text[at:])
    return "".join(out)


def upgrade() -> None:
    with op.batch_alter_table("timeline_events") as batch:
        batch.add_column(sa.Column("refs", sa.JSON(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_events.c.id, _events.c.text).where(_events.c.text.like("%<%>%"))
    ).all()
    for row_id, text in rows:
        plain, refs = plain_with_refs(text)
        if refs:
            connection.execute(
                _events.update().where(_events.c.id == row_id).values(text=plain, refs=refs)
            )


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_events.c.id, _events.c.text, _events.c.refs).where(_events.c.refs.is_not(None))
    ).all()
    for row_id, text, refs in rows:
        if refs:
            restored = with_tokens(text, list(refs))
            connection.execute(_events.update().where(_events.c.id == row_id).values(text=restored))
    with op.batch_alter_table("timeline_events") as batch:
        batch.drop_column("refs")
