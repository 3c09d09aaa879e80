"""On-call: who is on call now and next per rotation, and overrides people take."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.domain.oncall import Override, Rotation, Shift, current_and_next
from bot.errors import UserError
from bot.ports import IncidentStore, IncidentTransaction
from bot.services.incidents import in_transaction

Row = tuple[str, Shift | None, Shift | None]


class OnCallService:
    """Reads the rotations with their overrides; records an override."""

    def __init__(
        self,
        *,
        store: IncidentStore,
        rotations: Mapping[str, Rotation],
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.rotations = rotations
        self.now = now

    async def now_and_next(self) -> list[Row]:
        """(rotation, current shift, next shift) for every rotation."""
        now = self.now()
        rows = []
        for rotation in self.rotations.values():
            overrides = await in_transaction(self.store, _overrides_of(rotation.name, now))
            current, upcoming = current_and_next(rotation, now, overrides)
            rows.append((rotation.name, current, upcoming))
        return rows

    def rotation(self, name: str | None) -> str:
        """The rotation named, or the only one there is; a UserError that lists them."""
        names = list(self.rotations)
        if name is None:
            if len(names) == 1:
                return names[0]
            raise UserError(f"Name the rotation: one of {', '.join(names) or 'none configured'}.")
        if name not in self.rotations:
            raise UserError(
                f"No rotation `{name}`. Rotations: {', '.join(names) or 'none configured'}."
            )
        return name

    async def override(self, rotation: str, user: str, duration: timedelta, *, by: str) -> Override:
        """`user` takes `rotation` from now for `duration` (OverflowError if too long)."""
        now = self.now()
        entry = Override(rotation=rotation, user=user, starts_at=now, ends_at=now + duration)
        await in_transaction(self.store, lambda tx: tx.add_override(entry, by=by, at=now))
        return entry


def _overrides_of(
    rotation: str, now: datetime
) -> Callable[[IncidentTransaction], Coroutine[Any, Any, list[Override]]]:
    async def read(tx: IncidentTransaction) -> list[Override]:
        return await tx.overrides(rotation, now)

    return read
