"""drill incidents: whether a drill's notification opened the incident (lists mark it, KPIs
leave it out); incidents opened by earlier drills are found by their `drill` label

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INCIDENTS = sa.table(
    "incidents",
    sa.column("id", sa.Integer()),
    sa.column("labels", sa.JSON()),
    sa.column("group_labels", sa.JSON()),
    sa.column("drill", sa.Boolean()),
)


def upgrade() -> None:
    # ALTER TABLE in place, as 0008 does: a batch copy of `incidents` would cascade-delete.
    op.add_column(
        "incidents",
        sa.Column("drill", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(_INCIDENTS.c.id, _INCIDENTS.c.labels, _INCIDENTS.c.group_labels))
    drills = [
        row.id
        for row in rows
        if (row.labels or {}).get("drill") or (row.group_labels or {}).get("drill")
    ]
    for start in range(0, len(drills), 500):
        chunk = drills[start : start + 500]
        bind.execute(
            sa.update(_INCIDENTS).where(_INCIDENTS.c.id.in_(chunk)).values(drill=sa.true())
        )


def downgrade() -> None:
    op.drop_column("incidents", "drill")
