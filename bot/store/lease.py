"""Leases in the store: at most one live holder per name, taken over once it expires."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.store.models import LeaseRow
from bot.store.repository import Database
from bot.store.sessions import StoreSession


class LeaseStore:
    """The `leases` table. Every change is one statement, so two processes that try at once
    cannot both win: the row's key (insert) or its condition (update) decides."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def acquire(self, name: str, holder: str, *, now: datetime, ttl: timedelta) -> bool:
        """Take the lease (or keep it) until now + ttl, unless someone else holds it live."""

        async def extend(session: StoreSession) -> bool:
            result = await session.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.name == name,
                    or_(LeaseRow.holder == holder, LeaseRow.expires_at < now),
                )
                .values(
                    holder=holder,
                    expires_at=now + ttl,
                    acquired_at=case((LeaseRow.holder == holder, LeaseRow.acquired_at), else_=now),
                )
            )
            return bool(getattr(result, "rowcount", 0))

        async def insert(session: StoreSession) -> None:
            session.add(LeaseRow(name=name, holder=holder, acquired_at=now, expires_at=now + ttl))

        if await self.db.write(extend):
            return True
        try:
            await self.db.write(insert)
        except IntegrityError:
            return False  # someone else holds it (or took it first)
        return True

    async def renew(self, name: str, holder: str, *, now: datetime, ttl: timedelta) -> bool:
        """Extend a lease this holder still holds; False when it was lost (taken over)."""

        async def work(session: StoreSession) -> Any:
            result = await session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, LeaseRow.holder == holder)
                .values(expires_at=now + ttl)
            )
            return bool(getattr(result, "rowcount", 0))

        return await self.db.write(work)

    async def release(self, name: str, holder: str) -> None:
        """Give the lease up (a clean stop), so the next holder need not wait for it to expire."""

        async def work(session: StoreSession) -> None:
            await session.execute(
                delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder)
            )

        await self.db.write(work)

    async def holder(self, name: str, *, now: datetime) -> str | None:
        """Who holds the lease now, if anyone does."""
        async with self.db.sessions() as session:
            found = await session.scalar(
                select(LeaseRow.holder).where(LeaseRow.name == name, LeaseRow.expires_at >= now)
            )
            return str(found) if found is not None else None
