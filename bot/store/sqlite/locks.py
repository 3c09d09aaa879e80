"""Waiting for SQLite's write lock without holding up the event loop.

Another process may hold the lock for seconds (`tocsin db upgrade`, `tocsin digest --now`, a
backup). A writer's BEGIN IMMEDIATE waits BUSY_TIMEOUT_MS for it and fails; `wait_for_lock`
then sleeps on the event loop (webhooks and Slack requests are answered meanwhile) and tries
again, pausing longer each time, until `budget` seconds have passed: then `StoreBusy`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from bot.errors import StoreBusy

T = TypeVar("T")

LOCK_WAIT = 8.0  # seconds a writer waits for another process's lock before StoreBusy
FIRST_PAUSE = 0.005
LONGEST_PAUSE = 0.1


def is_locked(exc: BaseException) -> bool:
    """True when SQLite refused because another connection holds a lock."""
    cause = exc.orig if isinstance(exc, OperationalError) else exc
    return isinstance(cause, sqlite3.OperationalError) and (
        "locked" in str(cause) or "busy" in str(cause)
    )


async def wait_for_lock(attempt: Callable[[], Awaitable[T]], *, budget: float = LOCK_WAIT) -> T:
    """`attempt()`, tried again while SQLite says another connection holds the lock."""
    deadline = time.monotonic() + budget
    pause = FIRST_PAUSE
    while True:
        try:
            return await attempt()
        except OperationalError as exc:
            if not is_locked(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreBusy(f"the SQLite store stayed locked for {budget:g} s") from exc
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, LONGEST_PAUSE)
