"""A storm that stopped gathering (bot.domain.storms): its channel is told, and offered to split
out the groups still firing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.domain.durations import lasted
from bot.domain.outbox import JobKind, OutboxJob
from bot.domain.storms import JOINED, SPLIT_OFFERED, StormRule
from bot.domain.timers import DueTimer
from bot.ports import IncidentTransaction

log = logging.getLogger(__name__)


class StormCalm:
    """Fires the STORM_CALM timers: each group that joined a storm set one, `within` later."""

    def __init__(self, rule: StormRule, now: Callable[[], datetime]) -> None:
        self.rule = rule
        self.now = now

    async def fire(self, tx: IncidentTransaction, timer: DueTimer) -> None:
        """Unless a group joined after the one that set this timer (its own timer looks then),
        tell the storm's channel it calmed, with a button to split each group still open."""
        storm = await tx.get_incident(timer.incident_id or 0)
        if storm is None or not storm.is_open:
            return
        joined_at = timer.due_at - self.rule.within
        if await tx.count_events(storm.id, JOINED, joined_at):
            return  # a later join's timer looks then; only the last one reads the groups
        groups = await tx.storm_members(storm.id)
        still = [g for g in groups if g.is_firing]
        calm = lasted(joined_at, timer.due_at)
        text = f"The storm has calmed: no new alert group for {calm}. " + (
            f"{len(still)} of its {len(groups)} groups still fire: split out the ones that "
            "need their own channel (the buttons, or `/incident split <number>`)."
            if still
            else f"None of its {len(groups)} groups still fires."
        )
        offered = [[g.incident_id, g.title] for g in still[:SPLIT_OFFERED]]
        job = OutboxJob(
            kind=JobKind.POST_NOTE,
            idem_key=f"note:{storm.id}:calm-{joined_at.isoformat()}",
            incident_id=storm.id,
            payload={"text": text, "split": offered},
        )
        await tx.enqueue([job], at=self.now())
        log.info("storm incident %s calmed; %d groups still fire", storm.id, len(still))
