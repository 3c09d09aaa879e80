"""Who may resolve, escalate and silence: user ids and user groups from config."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bot.domain.text import Rich, join, usergroup
from bot.domain.text import user as user_ref

GroupMembers = Callable[[str], Awaitable[list[str]]]
CACHE_SECONDS = 60.0


log = logging.getLogger(__name__)


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


async def permitted(permissions: Permissions, action: str, user: str, incident_id: int) -> bool:
    """Check a permission; a refusal is told to the person and logged, not put on the
    incident's timeline (which records what happened)."""
    if await permissions.allowed(action, user):
        return True
    log.info("incident %s: %s refused for %s: not permitted", incident_id, action, user)
    return False
