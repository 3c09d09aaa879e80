"""What /readyz checks: the store and its schema, the outbox (sent by one process, the lease's
holder), the timers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.loops.ownership import Ownership
from bot.slack.outbox import OutboxWorker
from bot.store import schema
from bot.store.repository import Database
from bot.store.timers import TimerStore

UNREACHABLE = "store unreachable"
# A store that does not answer (a network partition, a failover in progress) is unreachable
# after this long: /readyz answers in time for the probe that asks it.
ASK_FOR = 5.0


def readiness_check(
    db: Database,
    worker: OutboxWorker,
    timers: TimerStore,
    now: Callable[[], datetime],
    ownership: Ownership,
) -> Any:
    """What /readyz reports: the store and its schema, the outbox, the timers."""

    async def check() -> dict[str, Any]:
        report: dict[str, Any] = {}
        try:
            async with asyncio.timeout(ASK_FOR):
                current = await schema.current_revision(db.engine)
            head = schema.head_revision()
            report["store"] = {"ok": True}
            report["schema"] = {"ok": current == head, "current": current, "head": head}
        except Exception:  # the store is down: say so, without the DSN or the password
            report["store"] = {"ok": False, "error": UNREACHABLE}
        # Jobs given up (Slack down past outbox.give_up_after, or refusing them) are reported,
        # not made a reason to stop taking webhooks: a replica that cannot post still stores.
        # One process sends to Slack (the lease's holder); the others stand by, ready all the same.
        report["outbox"] = {
            "ok": worker.alive or not ownership.holding,
            "sends": ownership.holding,
            "depth": await _depth(worker),
            "failed_24h": await _failed(worker, now() - timedelta(hours=24)),
        }
        try:
            async with asyncio.timeout(ASK_FOR):
                report["timers"] = {"ok": True, "due": await timers.overdue(now())}
        except Exception:
            report["timers"] = {"ok": False, "error": UNREACHABLE}
        return report

    return check


async def _depth(worker: OutboxWorker) -> int | None:
    try:
        async with asyncio.timeout(ASK_FOR):
            return await worker.store.depth()
    except Exception:
        return None


async def _failed(worker: OutboxWorker, since: datetime) -> int | None:
    try:
        async with asyncio.timeout(ASK_FOR):
            return await worker.store.failed_since(since)
    except Exception:
        return None
