"""On-call: who is on call now and next per rotation, and overrides people take."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from bot.domain.escalation import Policy, rotations_paged
from bot.domain.incidents import IncidentStatus
from bot.domain.oncall import Override, Rotation, Shift, current_and_next
from bot.domain.views import IncidentView, OnCallNow
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
        policies: Mapping[str, Policy] | None = None,
    ) -> None:
        self.store = store
        self.rotations = rotations
        self.now = now
        self.policies = policies or {}

    async def on_card(self, view: IncidentView) -> IncidentView:
        """The view with who is on call now in the rotations its incident's policy pages (an
        open incident's: a resolved one needs nobody)."""
        incident = view.incident
        policy = self.policies.get(incident.escalation_policy or "")
        if policy is None or incident.status is IncidentStatus.RESOLVED:
            return view
        names = [name for name in rotations_paged(policy) if name in self.rotations]
        if not names:
            return view
        on_call = [
            OnCallNow(name, shift.user, shift.ends_at) if shift else OnCallNow(name, None)
            for name, shift, _ in await self._shifts(names, self.now())
        ]
        return replace(view, on_call=tuple(on_call))

    async def now_and_next(self) -> list[Row]:
        """(rotation, current shift, next shift) for every rotation."""
        return await self._shifts(list(self.rotations), self.now())

    async def _shifts(self, names: list[str], now: datetime) -> list[Row]:
        """(rotation, current shift, next shift) of the rotations named, their overrides read in
        one transaction."""

        async def read(tx: IncidentTransaction) -> list[list[Override]]:
            return [await tx.overrides(name, now) for name in names]

        overrides = await in_transaction(self.store, read)
        return [
            (name, *current_and_next(self.rotations[name], now, taken))
            for name, taken in zip(names, overrides, strict=True)
        ]

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
