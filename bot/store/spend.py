"""The Slack calls of the current rate window, kept in the store: Slack counts an app's calls
once, whichever process made them, so a new sender starts from what the window already holds."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from bot.store.models import SlackCallRow
from bot.store.repository import Database
from bot.store.sessions import StoreSession

# Rows older than this are no one's business (Slack's windows are a minute); every so many
# calls the sender deletes them.
KEEP = timedelta(minutes=2)
PRUNE_EVERY = 200


class SpendStore:
    """The `slack_calls` table: one row per call, written before the call leaves."""

    def __init__(self, db: Database, *, keep: timedelta = KEEP) -> None:
        self.db = db
        self.keep = keep
        self._until_prune = 0

    async def record(self, method: str, at: datetime) -> None:
        """Write a call of `method` down (and now and then forget the old ones)."""
        prune = self._until_prune <= 0
        self._until_prune = PRUNE_EVERY if prune else self._until_prune - 1

        async def work(session: StoreSession) -> None:
            session.add(SlackCallRow(method=method, sent_at=at))
            if prune:
                await session.execute(
                    delete(SlackCallRow).where(SlackCallRow.sent_at < at - self.keep)
                )

        await self.db.write(work)

    async def since(self, at: datetime) -> list[tuple[str, datetime]]:
        """Every call made since `at` (by any process), oldest first."""
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(SlackCallRow.method, SlackCallRow.sent_at)
                .where(SlackCallRow.sent_at >= at)
                .order_by(SlackCallRow.sent_at)
            )
            return [(str(row.method), row.sent_at) for row in rows]
