"""What a silence hides, and how Tocsin keeps the card true while it lasts.

Alertmanager does not notify the resolution of a silenced alert until the silence ends, so
while Tocsin's silence of an incident lasts a timer asks Alertmanager every so often which of
the silenced alerts still fire (`check_timer`). An alert the incident holds as firing that
Alertmanager no longer has firing resolved meanwhile: `held_back()` turns those into a
notification of resolved alerts, which intake applies like any other. The check stops once the
incident is unsilenced, the silence has ended, the incident is resolved, or nothing the silence
hides still fires.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.domain.alerts import Alert, AlertGroup, AlertStatus, fingerprint_of
from bot.domain.incidents import Incident, IncidentStatus
from bot.domain.timers import Timer

SILENCE_CHECK = "silence_check"  # the timer kind
SOURCE = "alertmanager"  # only Alertmanager's alerts can be silenced


@dataclass(frozen=True)
class Watch:
    """One silence of one incident, as its check timers carry it."""

    incident_id: int
    silence_id: str
    matchers: Mapping[str, str]  # the silence's matchers: every label equal

    def payload(self) -> dict[str, Any]:
        """The timer's payload."""
        return {"silence_id": self.silence_id, "matchers": dict(self.matchers)}

    @classmethod
    def of(cls, incident_id: int, payload: Mapping[str, Any]) -> Watch:
        """The watch a timer's payload describes."""
        matchers = payload.get("matchers") or {}
        return cls(incident_id, str(payload.get("silence_id", "")), dict(matchers))


def check_timer(watch: Watch, *, due: datetime, after: int | None = None) -> Timer:
    """The next check of a silence: the first one (`after` None), or the one after the check
    timer `after` (so a check that runs twice, after a crash, arms its successor once)."""
    return Timer(
        kind=SILENCE_CHECK,
        idem_key=f"{SILENCE_CHECK}:{watch.incident_id}:{watch.silence_id}:{after or 'first'}",
        due_at=due,
        incident_id=watch.incident_id,
        payload=watch.payload(),
    )


def next_check(watch: Watch, *, now: datetime, every: timedelta, after: int) -> Timer:
    """The check `every` after this one."""
    return check_timer(watch, due=now + every, after=after)


def watching(incident: Incident | None, watch: Watch, now: datetime) -> bool:
    """True while the silence is the incident's, has not ended, and the incident is not
    resolved."""
    return (
        incident is not None
        and incident.key.startswith(f"{SOURCE}:")
        and incident.silence_id == watch.silence_id
        and incident.silenced_until is not None
        and incident.silenced_until > now
        and incident.status is not IncidentStatus.RESOLVED
    )


def silenced(alert: Alert, matchers: Mapping[str, str]) -> bool:
    """True when the silence's matchers (every label equal) match the alert."""
    return all(alert.labels.get(name) == value for name, value in matchers.items())


def hidden(firing: Sequence[Alert], matchers: Mapping[str, str]) -> list[Alert]:
    """The incident's firing alerts the silence hides (others are notified as usual)."""
    return [a for a in firing if silenced(a, matchers)]


def held_back(
    incident: Incident,
    firing: Sequence[Alert],
    listed: Sequence[Alert],
    matchers: Mapping[str, str],
    *,
    now: datetime,
) -> AlertGroup | None:
    """The resolutions the silence held back, as the notification Alertmanager would send once
    it ended: the incident's firing, silenced alerts that Alertmanager (`listed`: its alerts
    matching the silence) no longer has firing. None when every one of them still fires.

    Alertmanager's own fingerprint is compared, and the labels' (what Tocsin keys an alert by
    when a sender gives none)."""
    still = set()
    for alert in listed:
        if alert.status is AlertStatus.FIRING and (alert.ends_at is None or alert.ends_at > now):
            still |= {alert.fingerprint, fingerprint_of(alert.labels)}
    ended = {a.fingerprint: a.ends_at for a in listed if a.ends_at is not None}
    resolved = [
        replace(a, status=AlertStatus.RESOLVED, ends_at=min(ended.get(a.fingerprint) or now, now))
        for a in hidden(firing, matchers)
        if a.fingerprint not in still
    ]
    if not resolved:
        return None
    receiver, group_key = _receiver_and_group(incident.key)
    return AlertGroup(
        source=SOURCE,
        receiver=receiver,
        group_key=group_key,
        status=AlertStatus.RESOLVED,
        alerts=tuple(resolved),
    )


def _receiver_and_group(key: str) -> tuple[str, str]:
    """The receiver and group key an Alertmanager incident's key was made of."""
    _, receiver, group_key = [*key.split(":", 2), "", ""][:3]
    return receiver, group_key
