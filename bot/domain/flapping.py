"""Flapping: an alert group that resolves and fires again, over and over.

Each re-fire of a resolved incident reopens it, restarts its escalation and announces it
again: a flapping rule would page all night. Once a group fires again `FlapRule.refires` times
within `FlapRule.within`, its incident is marked flapping (`Incident.flapping_since`): while it
flaps, a re-fire reopens the same incident quietly (no page, no announcement), and its card
shows the flap count and its recent state changes. It stops flapping once `within` passes with
no re-fire (a durable timer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.alerts import AlertGroup, AlertsOnRecord, AlertStatus
from bot.domain.timers import Timer

FLAP_OVER = "flap_over"
REFIRED = "alerts_refired"  # the timeline kind of alerts that fire again (bot.domain.intake)
RESOLVED_KINDS = ("alerts_resolved",)
HISTORY_SHOWN = 12


@dataclass(frozen=True)
class FlapRule:
    """`refires` re-fires within `within` make a group flapping (config `flapping:`)."""

    refires: int
    within: timedelta


def refires(record: AlertsOnRecord, group: AlertGroup) -> bool:
    """True when the notification fires again an alert the incident holds as resolved."""
    for alert in group.alerts:
        known = record.named.get(alert.fingerprint)
        if (
            alert.status is AlertStatus.FIRING
            and known is not None
            and known.status is AlertStatus.RESOLVED
        ):
            return True
    return False


def starts_flapping(rule: FlapRule | None, refires_before: int | None) -> bool:
    """True when this re-fire, after `refires_before` others within the window, makes it flap."""
    return rule is not None and refires_before is not None and refires_before + 1 >= rule.refires


def flap_over_timer(incident_id: int, refired_at: datetime, rule: FlapRule) -> Timer:
    """Look, `rule.within` after this re-fire, whether the group is still flapping."""
    return Timer(
        kind=FLAP_OVER,
        idem_key=f"{FLAP_OVER}:{incident_id}:{refired_at.isoformat()}",
        due_at=refired_at + rule.within,
        incident_id=incident_id,
    )


def still_flapping(last_refire: datetime | None, now: datetime, rule: FlapRule) -> bool:
    """True while a re-fire happened within the window before `now`."""
    return last_refire is not None and now - last_refire < rule.within


@dataclass(frozen=True)
class FlapHistory:
    """What a flapping card shows: re-fires within the window, and the recent state changes
    (True: fired again, False: every alert resolved), oldest first."""

    refires: int
    changes: Sequence[tuple[datetime, bool]]

    @property
    def strip(self) -> str:
        """The recent state changes as a line: ▲ fired again, ▼ resolved, with the time."""
        shown = self.changes[-HISTORY_SHOWN:]
        return " ".join(f"{'▲' if fired else '▼'}{at:%H:%M}" for at, fired in shown)
