"""The timers table: due timers are claimed with a lease, fired in one transaction, never twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from bot.domain.timers import DueTimer
from bot.store.models import TimerRow
from bot.store.repository import Database
from bot.store.sessions import StoreSession

LEASE = timedelta(seconds=30)
LONG_LEASE = timedelta(minutes=5)  # slow timer work: a playbook's steps time out well before


class TimerStore:
    """Durable deadlines."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def due(self, now: datetime, limit: int = 50) -> list[DueTimer]:
        """Pending timers whose time has come, and claimed ones whose lease ran out."""
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(TimerRow)
                .where(
                    or_(
                        (TimerRow.state == "pending") & (TimerRow.due_at <= now),
                        (TimerRow.state == "firing") & (TimerRow.lease_until < now),
                    )
                )
                .order_by(TimerRow.due_at, TimerRow.id)
                .limit(limit)
            )
            return [
                DueTimer(r.id, r.kind, r.incident_id, r.due_at, dict(r.payload or {})) for r in rows
            ]

    async def claim(self, timer: DueTimer, now: datetime, *, long: bool = False) -> bool:
        """Take a timer; False when another process has it."""
        lease = LONG_LEASE if long else LEASE

        async def work(session: StoreSession) -> Any:
            result = await session.execute(
                update(TimerRow)
                .where(
                    TimerRow.id == timer.id,
                    or_(
                        TimerRow.state == "pending",
                        (TimerRow.state == "firing") & (TimerRow.lease_until < now),
                    ),
                )
                .values(state="firing", lease_until=now + lease)
            )
            return bool(getattr(result, "rowcount", 0) == 1)

        return await self.db.write(work)

    async def overdue(self, now: datetime) -> int:
        """Timers due but not yet fired (waiting or running)."""
        async with self.db.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(TimerRow)
                .where(
                    or_(
                        (TimerRow.state == "pending") & (TimerRow.due_at <= now),
                        TimerRow.state == "firing",
                    )
                )
            )
            return int(count or 0)

    async def next_due(self, *, after: datetime) -> datetime | None:
        """When the earliest pending timer due after `after` is due."""
        async with self.db.sessions() as session:
            found: Any = await session.scalar(
                select(TimerRow.due_at)
                .where(TimerRow.state == "pending", TimerRow.due_at > after)
                .order_by(TimerRow.due_at)
                .limit(1)
            )
            return found  # type: ignore[no-any-return]
