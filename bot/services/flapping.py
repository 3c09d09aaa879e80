"""The end of flapping (bot.domain.flapping): a group calm for the whole window stops flapping,
and its next re-fire pages and announces again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from bot.domain.durations import lasted
from bot.domain.flapping import REFIRED, FlapRule
from bot.domain.incidents import TimelineEvent
from bot.domain.outbox import card_update_job
from bot.domain.timers import DueTimer
from bot.ports import IncidentTransaction

log = logging.getLogger(__name__)


class FlapWatch:
    """Fires the FLAP_OVER timers: each re-fire of a flapping group set one, `within` later."""

    def __init__(self, rule: FlapRule, now: Callable[[], datetime]) -> None:
        self.rule = rule
        self.now = now

    async def fire(self, tx: IncidentTransaction, timer: DueTimer) -> None:
        """Stop flapping, unless the group fired again after the re-fire that set this timer
        (that re-fire's own timer looks again)."""
        incident = await tx.get_incident(timer.incident_id or 0)
        if incident is None or incident.flapping_since is None:
            return
        refired_at = timer.due_at - self.rule.within
        if await tx.count_events(incident.id, REFIRED, refired_at):
            return
        now = self.now()
        await tx.save_incident(replace(incident, flapping_since=None), at=now)
        calm = lasted(refired_at, timer.due_at)
        text = f"No longer flapping: calm for {calm}. A re-fire pages and is announced again."
        await tx.add_events(incident.id, [TimelineEvent("flapping_over", "tocsin", now, text)])
        await tx.enqueue([card_update_job(incident.id)], at=now)
        log.info("incident %s: no longer flapping", incident.id, extra={"incident": incident.id})
