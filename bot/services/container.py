"""The one container of services handed to every Slack listener, built by the composition root."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.oncall import Rotation
from bot.domain.views import ALERTS_SHOWN, IncidentView
from bot.ports import IncidentStore
from bot.services.contacts import ContactTest
from bot.services.diagnostics import DiagnosticsService
from bot.services.digest import DigestScheduler
from bot.services.escalation import EscalationService
from bot.services.health import HealthService
from bot.services.incidents import IncidentService
from bot.services.oncall import OnCallService
from bot.services.permissions import Permissions, permitted
from bot.services.silences import SilenceService


class ViewReader(Protocol):
    """Reads an incident to render: `alerts_shown` of its alerts from the `alerts_from`-th."""

    async def __call__(
        self, incident_id: int, *, alerts_from: int = 0, alerts_shown: int = ALERTS_SHOWN
    ) -> IncidentView | None: ...


@dataclass
class Services:
    """What command and action handlers may use."""

    db: IncidentStore  # units of work that span services (in_transaction)
    incidents: IncidentService
    escalation: EscalationService
    silences: SilenceService
    permissions: Permissions
    rotations: Mapping[str, Rotation]
    oncall: OnCallService
    now: Callable[[], datetime]
    alerts_channel: str | None
    wake_outbox: Callable[[], None]
    incident_view: ViewReader
    diagnostics: DiagnosticsService
    wake_timers: Callable[[], None]
    health: HealthService
    digests: DigestScheduler | None = None
    contacts: ContactTest | None = None  # /oncall test

    async def permits(self, action: str, user: str, incident_id: int) -> bool:
        """Check a permission; a refusal is logged (the person is told by the caller)."""
        return await permitted(self.permissions, action, user, incident_id)
