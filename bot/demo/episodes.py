"""The episodes the demo world follows: the incidents Tocsin holds, drills included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.demo.world import Episode
from bot.ports import IncidentStore, IncidentTransaction

DAYS = 8  # as far back as the digest looks
LIMIT = 200


class StoredEpisodes:
    """Reads the recent incidents of the store as episodes: the alert's name and labels, when
    its alerts began, and when it was resolved."""

    def __init__(self, store: IncidentStore, now: Callable[[], datetime]) -> None:
        self.store = store
        self.now = now
        self._known: dict[int, tuple[dict[str, str], datetime]] = {}

    async def __call__(self) -> list[Episode]:
        """The episodes of the last days, newest first."""
        return await self.store.run(self._read)

    async def _read(self, tx: IncidentTransaction) -> list[Episode]:
        since = self.now() - timedelta(days=DAYS)
        found = []
        for incident in await tx.recent_incidents(resolved=None, since=since, limit=LIMIT):
            if incident.id not in self._known:  # labels and start do not change afterwards
                group, common = await tx.incident_labels(incident.id)
                started = await tx.alerts_started_at(incident.id) or incident.opened_at
                self._known[incident.id] = ({**common, **group}, started)
            labels, started = self._known[incident.id]
            alertname = labels.get("alertname") or incident.playbook or ""
            end = incident.resolved_at.timestamp() if incident.resolved_at else None
            found.append(Episode(alertname, labels, started.timestamp(), end))
        return found
