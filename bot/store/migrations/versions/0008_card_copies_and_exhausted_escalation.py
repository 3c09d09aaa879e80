"""card copies: the DMs and the announcement that show an incident; when escalation ran out,
when the incident was last reopened

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.store.models import UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "card_copies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_card_copies_message", "card_copies", ["channel_id", "ts"], unique=True)
    op.create_index("ix_card_copies_incident_id", "card_copies", ["incident_id"])
    # ALTER TABLE in place (SQLite ≥ 3.35 and Postgres both can): a batch copy of `incidents`
    # would drop the old table, and with it, by cascade, every incident's timeline.
    op.add_column(
        "incidents", sa.Column("escalation_exhausted_at", UtcDateTime(timezone=True), nullable=True)
    )
    op.add_column("incidents", sa.Column("reopened_at", UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("incidents", "reopened_at")
    op.drop_column("incidents", "escalation_exhausted_at")
    op.drop_index("ix_card_copies_incident_id", table_name="card_copies")
    op.drop_index("ix_card_copies_message", table_name="card_copies")
    op.drop_table("card_copies")
