"""Storm reads (bot.domain.storms): how many alert groups were new lately, the storm still
open, and the groups a storm holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from bot.domain.alerts import AlertStatus
from bot.domain.incidents import Incident, IncidentStatus, Severity
from bot.domain.storms import STORM_KEY_PREFIX, StormMember, StormWeather
from bot.store.models import AlertRow, IncidentRow
from bot.store.sessions import StoreSession

_IS_STORM = IncidentRow.key.startswith(STORM_KEY_PREFIX, autoescape=True)


async def storm_weather(
    session: StoreSession, since: datetime, incident_of: Callable[[Any], Incident]
) -> tuple[StormWeather, int]:
    """The weather since `since` (new alert groups, the open storm and its last join), and how
    many storms there have been; `incident_of` maps an incidents row."""
    new_groups = await session.scalar(
        select(func.count())
        .select_from(IncidentRow)
        .where(IncidentRow.opened_at >= since, ~_IS_STORM)
    )
    storms = await session.scalar(select(func.count()).select_from(IncidentRow).where(_IS_STORM))
    row = await session.scalar(
        select(IncidentRow)
        .where(_IS_STORM, IncidentRow.status != IncidentStatus.RESOLVED.value)
        .order_by(IncidentRow.id.desc())
        .limit(1)
    )
    if row is None:
        return StormWeather(int(new_groups or 0)), int(storms or 0)
    last = await session.scalar(
        select(func.max(IncidentRow.opened_at)).where(IncidentRow.storm_id == row.id)
    )
    weather = StormWeather(int(new_groups or 0), incident_of(row), last)
    return weather, int(storms or 0)


async def storm_members(session: StoreSession, storm_id: int) -> list[StormMember]:
    """The alert groups `storm_id` holds, with their alerts counted."""
    firing = func.sum(case((AlertRow.status == AlertStatus.FIRING.value, 1), else_=0))
    resolved = func.sum(case((AlertRow.status == AlertStatus.RESOLVED.value, 1), else_=0))
    counts = (
        select(AlertRow.incident_id, firing.label("firing"), resolved.label("resolved"))
        .group_by(AlertRow.incident_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            IncidentRow.id,
            IncidentRow.title,
            IncidentRow.labels,
            IncidentRow.severity,
            IncidentRow.status,
            IncidentRow.opened_at,
            counts.c.firing,
            counts.c.resolved,
        )
        .outerjoin(counts, counts.c.incident_id == IncidentRow.id)
        .where(IncidentRow.storm_id == storm_id)
        .order_by(IncidentRow.opened_at, IncidentRow.id)
    )
    return [
        StormMember(
            incident_id=r.id,
            title=r.title,
            labels=r.labels or {},
            severity=Severity(r.severity),
            status=IncidentStatus(r.status),
            firing=int(r.firing or 0),
            resolved=int(r.resolved or 0),
            joined_at=r.opened_at,
        )
        for r in rows
    ]
