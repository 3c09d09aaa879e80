"""Who may resolve, escalate and silence: user ids and user groups from config."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bot.domain.text import Rich, join, phrase, usergroup, who
from bot.domain.text import user as user_ref
from bot.services.incidents import IncidentService

GroupMembers = Callable[[str], Awaitable[list[str]]]
CACHE_SECONDS = 60.0


class Permissions:
    """Checks an action against its allow list; an empty list lets anyone in the channel act."""

    def __init__(self, rules: Mapping[str, Sequence[str]], group_members: GroupMembers) -> None:
        self.rules = {action: list(ids) for action, ids in rules.items()}
        self.group_members = group_members
        self._cache: dict[str, tuple[float, list[str]]] = {}

    async def allowed(self, action: str, user: str) -> bool:
        """True when `user` may perform `action`."""
        allow = self.rules.get(action) or []
        if not allow or user in allow:
            return True
        for group in (ref for ref in allow if ref.startswith("S")):
            if user in await self._members(group):
                return True
        return False

    def describe(self, action: str) -> Rich:
        """Who may do it, for the refusal message."""
        allow = self.rules.get(action) or []
        people = [usergroup(r) if r.startswith("S") else user_ref(r) for r in allow]
        return join(people) if people else Rich("anyone")

    async def _members(self, group: str) -> list[str]:
        cached = self._cache.get(group)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        members = await self.group_members(group)
        self._cache[group] = (time.monotonic(), members)
        return members


async def permitted(
    permissions: Permissions, incidents: IncidentService, action: str, user: str, incident_id: int
) -> bool:
    """Check a permission; a refusal goes on the incident's timeline."""
    if await permissions.allowed(action, user):
        return True
    await incidents.record(
        incident_id,
        actor=user,
        kind="refused",
        text=phrase(f"{action} refused for ", who(user), ": not permitted"),
    )
    return False
