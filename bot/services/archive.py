"""Archiving the channels of resolved incidents: the timer's work, in the timer's transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.domain.archive import archive_job, closing_summary, still_due
from bot.domain.timers import DueTimer
from bot.ports import IncidentTransaction

log = logging.getLogger(__name__)


class ChannelArchiver:
    """Queues a resolved incident's closing summary and archive when its time has come."""

    def __init__(self, *, now: Callable[[], datetime]) -> None:
        self.now = now

    async def fire(self, tx: IncidentTransaction, timer: DueTimer) -> None:
        """Queue the archive, unless the incident was reopened since (or has no channel)."""
        incident = await tx.get_incident(timer.incident_id or 0)
        if incident is None or not still_due(incident, timer.payload):
            log.info("archive of incident %s: nothing to do", timer.incident_id)
            return
        summary = closing_summary(incident, await tx.timeline(incident.id))
        await tx.enqueue([archive_job(incident, summary)], at=self.now())
