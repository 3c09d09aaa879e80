"""What one page's notifications of one person came to: still to come (a pending job or a
later step's timer), delivered by some method, or failed by every method tried."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.domain.contacts import CONTACT_STEP, Reach, rule_page
from bot.domain.outbox import JobKind
from bot.store.models import OutboxJobRow, TimelineEventRow, TimerRow
from bot.store.sessions import StoreSession

# The jobs that notify a person of a page: through a method beyond Slack, or the Slack DM.
NOTIFYING = (JobKind.CONTACT.value, JobKind.OPEN_DM.value, JobKind.POST_DM.value)
REACHED = ("contact_sent", "contact_unknown", "dm_sent")  # "unknown": sent before a restart
FAILED = ("contact_failed", "dm_failed")


async def reach_of(session: StoreSession, incident_id: int, user: str, page: str) -> Reach:
    """Whether `user` was reached for `page` of the incident, may still be, or was not: the
    reasons of each method that failed, in the order they failed."""
    J, T, E = OutboxJobRow, TimerRow, TimelineEventRow
    jobs = await session.execute(
        select(J.payload).where(
            J.incident_id == incident_id,
            J.kind.in_(NOTIFYING),
            J.state.in_(("pending", "running")),
        )
    )
    timers = await session.execute(
        select(T.payload).where(
            T.incident_id == incident_id,
            T.kind == CONTACT_STEP,
            T.state.in_(("pending", "firing")),
        )
    )
    pending = any(_of(row.payload, user, page) for row in [*jobs, *timers])
    events = await session.execute(
        select(E.kind, E.data)
        .where(E.incident_id == incident_id, E.kind.in_((*REACHED, *FAILED)))
        .order_by(E.at, E.id)
    )
    reached, failures = False, []
    for row in events:
        data = row.data or {}
        if not _of(data, user, page):
            continue
        if row.kind in REACHED:
            reached = True
        else:
            failures.append(str(data.get("failure") or row.kind))
    return Reach(pending=pending, reached=reached, failures=tuple(failures))


def _of(payload: dict[str, Any] | None, user: str, page: str) -> bool:
    """Whether a job's payload (or an event's data) is about `user`, for `page`."""
    data = payload or {}
    return data.get("user") == user and rule_page(data) == page
