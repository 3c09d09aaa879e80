"""Drills: incidents opened by a rehearsal notification (its alerts carry the `drill` label).

A drill is marked wherever an incident is shown, so nobody takes it for an outage; it counts in
no KPI; and it ends by itself, resolved by Tocsin: when `tocsin drill` has its report, or, as a
backstop, `drill_resolve_after` after it opened (or last reopened). The timer is keyed by that
moment, so a reopened drill's older timer finds nothing to do: the reopening has its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.domain.alerts import AlertGroup
from bot.domain.incidents import Incident
from bot.domain.timers import DRILL_OVER, Timer

DRILL_LABEL = "drill"
DRILL_MARK = "🧪 DRILL"  # in lists, the card, the topic and the alerts channel
DRILL_ACTOR = "tocsin (drill over)"  # who resolves a drill: the timeline, card and alerts say it


def is_drill(group: AlertGroup) -> bool:
    """True when the notification's alerts all carry the drill label."""
    return bool(group.common_labels.get(DRILL_LABEL) or group.group_labels.get(DRILL_LABEL))


def _since(incident: Incident) -> datetime:
    """When the drill's current run began: its last reopening, else its opening."""
    return incident.reopened_at or incident.opened_at


def drill_timer(incident: Incident, after: timedelta) -> Timer | None:
    """The backstop that resolves an open drill `after` its (re)opening; None for others."""
    if not incident.drill or not incident.is_open:
        return None
    since = _since(incident)
    return Timer(
        kind=DRILL_OVER,
        idem_key=f"drill_over:{incident.id}:{since.isoformat()}",
        due_at=since + after,
        incident_id=incident.id,
        payload={"since": since.isoformat()},
    )


def still_running(incident: Incident, payload: Mapping[str, Any]) -> bool:
    """True when the backstop timer's drill is open and has not been reopened since."""
    if not incident.drill or not incident.is_open:
        return False
    try:
        meant = datetime.fromisoformat(str(payload.get("since", "")))
    except ValueError:
        return False
    return meant == _since(incident)
