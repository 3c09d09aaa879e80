"""Durable deadlines as the domain asks for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ESCALATE = "escalate"
DIAGNOSTICS = "diagnostics"
ARCHIVE = "archive"
DRILL_OVER = "drill_over"


@dataclass(frozen=True)
class Timer:
    """Something to do at `due_at`; `idem_key` makes scheduling it twice harmless."""

    kind: str
    idem_key: str
    due_at: datetime
    incident_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DueTimer:
    """A claimed timer, ready to fire."""

    id: int
    kind: str
    incident_id: int | None
    due_at: datetime
    payload: dict[str, Any]


def diagnostics_timer(incident_id: int, *, due: datetime, reason: str) -> Timer:
    """Run the incident's playbook at `due` (now, usually), durably."""
    return Timer(
        kind=DIAGNOSTICS,
        idem_key=f"diagnostics:{incident_id}:{reason}",
        due_at=due,
        incident_id=incident_id,
    )
