"""The one container of services handed to every Slack listener, built by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.domain.oncall import Rotation
from bot.domain.views import IncidentView
from bot.services.diagnostics import DiagnosticsService
from bot.services.digest import DigestScheduler
from bot.services.escalation import EscalationService
from bot.services.incidents import IncidentService
from bot.services.permissions import Permissions
from bot.services.silences import SilenceService
from bot.store.repository import Database


@dataclass
class Services:
    """What command and action handlers may use."""

    db: Database
    incidents: IncidentService
    escalation: EscalationService
    silences: SilenceService
    permissions: Permissions
    rotations: Mapping[str, Rotation]
    now: Callable[[], datetime]
    alerts_channel: str | None
    wake_outbox: Callable[[], None]
    incident_view: Callable[[int], Awaitable[IncidentView | None]]
    diagnostics: DiagnosticsService
    wake_timers: Callable[[], None]
    digests: DigestScheduler | None = None
