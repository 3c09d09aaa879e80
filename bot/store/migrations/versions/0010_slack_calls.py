"""slack_calls: the Slack calls of the current rate window, so a new sender knows the app's spend

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.store.models import UtcDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("sent_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_slack_calls_sent_at", "slack_calls", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_slack_calls_sent_at", table_name="slack_calls")
    op.drop_table("slack_calls")
