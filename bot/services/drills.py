"""Ending drills: resolved by Tocsin when `tocsin drill` has its report, or by the backstop
timer when nobody ended them; once, however often asked."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.domain.drills import DRILL_ACTOR, still_running
from bot.domain.incidents import Action, Incident
from bot.domain.timers import DueTimer
from bot.errors import InvalidTransition
from bot.ports import IncidentTransaction
from bot.services.incidents import IncidentService, in_transaction
from bot.services.state_changes import state_changed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DrillEnd:
    """The drill as it is now, and whether this call resolved it (False: it already was)."""

    incident: Incident
    resolved_now: bool


class DrillService:
    """Resolves drill incidents, as any resolve: timeline, card, topic, alerts channel."""

    def __init__(self, *, incidents: IncidentService) -> None:
        self.incidents = incidents

    async def end(self, incident_id: int) -> DrillEnd | None:
        """Resolve the drill now (its report is done); None when no drill has this id."""

        async def work(tx: IncidentTransaction) -> DrillEnd | None:
            incident = await tx.get_incident(incident_id)
            if incident is None or not incident.drill:
                return None
            return await self._resolve(tx, incident)

        return await in_transaction(self.incidents.store, work)

    async def fire(self, tx: IncidentTransaction, timer: DueTimer) -> None:
        """The backstop: resolve the drill unless it ended, or was reopened, since."""
        incident = await tx.get_incident(timer.incident_id or 0)
        if incident is None or not still_running(incident, timer.payload):
            log.info("drill backstop of incident %s: nothing to do", timer.incident_id)
            return
        await self._resolve(tx, incident)

    async def _resolve(self, tx: IncidentTransaction, incident: Incident) -> DrillEnd:
        if not incident.is_open:
            return DrillEnd(incident, resolved_now=False)
        done = await self.incidents.apply(tx, incident, Action.RESOLVE, actor=DRILL_ACTOR)
        if isinstance(done, InvalidTransition):  # not reached: an open incident can resolve
            return DrillEnd(incident, resolved_now=False)
        state_changed(incident.id, incident.status, done.incident.status, actor=DRILL_ACTOR)
        return DrillEnd(done.incident, resolved_now=True)
