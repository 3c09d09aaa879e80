"""storms and flapping: the storm incident an alert group's incident was folded into
(bot.domain.storms), an index on when incidents opened (how many groups were new in the storm
window), and since when an incident's alert group flaps (bot.domain.flapping)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.store.models import UtcDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ALTER TABLE in place, as 0008 does: a batch copy of `incidents` would cascade-delete.
    op.add_column("incidents", sa.Column("storm_id", sa.Integer(), nullable=True))
    op.create_index("ix_incidents_storm_id", "incidents", ["storm_id"])
    op.create_index("ix_incidents_opened_at", "incidents", ["opened_at"])
    op.add_column(
        "incidents", sa.Column("flapping_since", UtcDateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("incidents", "flapping_since")
    op.drop_index("ix_incidents_opened_at", table_name="incidents")
    op.drop_index("ix_incidents_storm_id", table_name="incidents")
    op.drop_column("incidents", "storm_id")
