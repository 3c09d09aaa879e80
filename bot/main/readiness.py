"""What /readyz checks: the store and its schema, the outbox (sent by one replica, the lease's
holder: which one, and how far behind it is), the timers. /metrics says the same of the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.loops.ownership import Ownership
from bot.observability.metrics import Metrics
from bot.slack.outbox import OutboxWorker
from bot.store import schema
from bot.store.repository import Database
from bot.store.timers import TimerStore

UNREACHABLE = "store unreachable"
# A store that does not answer (a network partition, a failover in progress) is unreachable
# after this long: /readyz answers in time for the probe that asks it.
ASK_FOR = 5.0
T = TypeVar("T")


def outbox_state(
    worker: OutboxWorker, ownership: Ownership, now: Callable[[], datetime], metrics: Metrics
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """The outbox as any replica sees it (who sends, how deep, how late), also set in `metrics`."""

    async def state() -> dict[str, Any]:
        holder = await _ask(ownership.current_holder())
        depth = await _ask(worker.store.depth())
        late = await _ask(_late(worker, now()))
        metrics.outbox_lease_held.set(1 if ownership.holding else 0)
        metrics.outbox_lease_holder.clear()
        if holder is not None:
            metrics.outbox_lease_holder.labels(holder).set(1)
        if depth is not None:
            metrics.outbox_depth.set(depth)
        if late is not None:
            metrics.outbox_oldest_due.set(late)
        return {
            # Jobs given up (Slack down past outbox.give_up_after, or refusing them) are
            # reported, not made a reason to stop taking webhooks: a replica that cannot post
            # still stores. One replica sends (the lease's holder); the others stand by, ready.
            "ok": worker.alive or not ownership.holding,
            "sends": ownership.holding,
            "holder": holder,
            "this_replica": ownership.holder,
            "depth": depth,
            "oldest_due_seconds": late,
            "failed_24h": await _ask(worker.store.failed_since(now() - timedelta(hours=24))),
        }

    return state


def readiness_check(
    db: Database,
    outbox: Callable[[], Awaitable[dict[str, Any]]],
    timers: TimerStore,
    now: Callable[[], datetime],
) -> Any:
    """What /readyz reports: the store and its schema, the outbox, the timers."""

    async def check() -> dict[str, Any]:
        report: dict[str, Any] = {}
        try:
            async with asyncio.timeout(ASK_FOR):
                current = await schema.current_revision(db.engine)
            head = schema.head_revision()
            report["store"] = {"ok": True}
            # A newer schema (the first step of a rolling upgrade) keeps an older replica
            # ready until it is replaced: migrations add, and it still serves.
            newer = current != head and schema.is_newer(current)
            report["schema"] = {
                "ok": current == head or newer,
                "current": current,
                "head": head,
                "newer": newer,
            }
        except Exception:  # the store is down: say so, without the DSN or the password
            report["store"] = {"ok": False, "error": UNREACHABLE}
        report["outbox"] = await outbox()
        try:
            async with asyncio.timeout(ASK_FOR):
                report["timers"] = {"ok": True, "due": await timers.overdue(now())}
        except Exception:
            report["timers"] = {"ok": False, "error": UNREACHABLE}
        return report

    return check


async def _late(worker: OutboxWorker, now: datetime) -> float:
    """Seconds the longest-waiting due job has waited; 0 when none waits."""
    oldest = await worker.store.oldest_due(now)
    return round(max((now - oldest).total_seconds(), 0.0), 3) if oldest is not None else 0.0


async def _ask(question: Awaitable[T]) -> T | None:
    """The store's answer, or None when it cannot be asked (it is down, or does not answer
    within ASK_FOR)."""
    try:
        async with asyncio.timeout(ASK_FOR):
            return await question
    except Exception:
        return None
