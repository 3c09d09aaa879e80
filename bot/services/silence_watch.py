"""While Tocsin's silence of an incident lasts, ask Alertmanager which of its alerts still fire.

Alertmanager holds back the resolution of a silenced alert until the silence ends; without
asking, the card would say "1 firing" long after the alert resolved. Each check is a durable
timer (`bot.domain.silences`): claimed in the store by one process, run again after a crash,
and arming the next check until the silence ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.domain.alerts import Alert
from bot.domain.silences import Watch, held_back, hidden, next_check, watching
from bot.domain.timers import DueTimer
from bot.errors import IntegrationError, StoreConflict
from bot.ports import AlertSource, IncidentStore, IncidentTransaction
from bot.services.alerts import AlertIntake

log = logging.getLogger(__name__)


class SilenceWatch:
    """The check a silence's timer runs: resolutions Alertmanager holds back reach the card."""

    def __init__(
        self,
        *,
        store: IncidentStore,
        source: AlertSource,
        intake: AlertIntake,
        now: Callable[[], datetime],
        every: timedelta,
    ) -> None:
        self.store = store
        self.source = source
        self.intake = intake
        self.now = now
        self.every = every

    async def fire(self, timer: DueTimer) -> None:
        """One check; then the next, unless the silence is over. Alertmanager out of reach,
        or a store conflict, leaves the card as it is until the next check."""
        watch = Watch.of(timer.incident_id or 0, timer.payload)
        incident = await self.store.run(lambda tx: tx.get_incident(watch.incident_id))
        if not watching(incident, watch, self.now()):
            return
        try:
            listed = await self.source.alerts(watch.matchers)
            await self.store.run(lambda tx: self._apply(tx, watch, listed))
        except IntegrationError as exc:
            log.warning(
                "incident %s: could not ask Alertmanager which silenced alerts still fire (%s);"
                " asking again in %s",
                watch.incident_id,
                exc,
                self.every,
            )
        except StoreConflict:
            log.info("incident %s changed during the silence check", watch.incident_id)
        await self.store.run(lambda tx: self._rearm(tx, watch, timer))

    async def _apply(self, tx: IncidentTransaction, watch: Watch, listed: list[Alert]) -> None:
        now = self.now()
        incident = await tx.get_incident(watch.incident_id)
        if incident is None or not watching(incident, watch, now):
            return
        firing = await tx.firing_alerts(incident.id)
        log.debug(
            "incident %s: Alertmanager holds %d alert(s) matching its silence",
            incident.id,
            len(listed),
        )
        group = held_back(incident, firing, listed, watch.matchers, now=now)
        if group is not None and await self.intake.observed(tx, incident, group, now=now):
            log.info(
                "incident %s: %d silenced alert(s) resolved in Alertmanager",
                incident.id,
                len(group.alerts),
            )

    async def _rearm(self, tx: IncidentTransaction, watch: Watch, timer: DueTimer) -> None:
        now = self.now()
        incident = await tx.get_incident(watch.incident_id)
        if not watching(incident, watch, now):
            return
        if not hidden(await tx.firing_alerts(watch.incident_id), watch.matchers):
            return  # nothing the silence hides still fires: nothing left to hold back
        await tx.schedule(next_check(watch, now=now, every=self.every, after=timer.id), at=now)
