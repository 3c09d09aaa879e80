"""The sandbox workspace's snapshot: one JSON document per sandbox, replaced on every save."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from bot.store.models import SandboxSnapshotRow
from bot.store.repository import Database
from bot.store.sessions import StoreSession

DEFAULT = "default"


class SandboxStore:
    """Loads and saves the emulated workspace in the bot's own store."""

    def __init__(self, db: Database, name: str = DEFAULT) -> None:
        self.db = db
        self.name = name

    async def load(self) -> dict[str, Any] | None:
        """The last saved workspace, or None when there is none (or it is unreadable)."""
        async with self.db.sessions() as session:
            text = await session.scalar(
                select(SandboxSnapshotRow.state).where(SandboxSnapshotRow.name == self.name)
            )
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def save(self, state: dict[str, Any], *, revision: int, at: datetime) -> None:
        """Replace the saved workspace."""
        text = json.dumps(state, separators=(",", ":"))

        async def work(session: StoreSession) -> None:
            result = await session.execute(
                update(SandboxSnapshotRow)
                .where(SandboxSnapshotRow.name == self.name)
                .values(state=text, revision=revision, saved_at=at)
            )
            if getattr(result, "rowcount", 0) == 0:
                session.add(
                    SandboxSnapshotRow(name=self.name, state=text, revision=revision, saved_at=at)
                )

        await self.db.write(work)
