"""Which background loops died for good, for /healthz.

Each loop recovers from a failing pass by itself (bot.loops.backoff). One that still ends while
the process serves (an error escaped its recovery, it was cancelled, or it returned) will never
run again in this process: that is logged at ERROR and /healthz answers 503 naming it, so a
supervisor (systemd, Kubernetes) restarts Tocsin. Loops stopped on purpose (the outbox lease
handed over, shutdown) are let go first and are not counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.loops.backoff import describe

log = logging.getLogger(__name__)


class LoopWatch:
    """Starts background loops as tasks and notes each one that ends unasked."""

    def __init__(self) -> None:
        self.dead: dict[str, str] = {}  # loop name -> how it ended
        self._watched: set[asyncio.Task[None]] = set()

    def start(self, name: str, loop: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `loop` as a task named `name`, watched until `let_go`."""
        task = asyncio.create_task(loop, name=name)
        self._watched.add(task)
        task.add_done_callback(self._ended)
        return task

    def let_go(self, *tasks: asyncio.Task[None]) -> None:
        """These tasks are being stopped on purpose: their end is not a death."""
        self._watched.difference_update(tasks)

    def let_all_go(self) -> None:
        """Shutting down: every watched task may end."""
        self._watched.clear()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task not in self._watched:
            return
        self._watched.discard(task)
        if task.cancelled():
            how = "cancelled"
        elif (error := task.exception()) is not None:
            how = f"crashed: {describe(error)}"
        else:
            how = "returned"
        self.dead[task.get_name()] = how
        log.error(
            "background loop %s ended while serving (%s); it will not run again in this "
            "process, /healthz fails until Tocsin is restarted",
            task.get_name(),
            how,
            exc_info=None if task.cancelled() else task.exception(),
            extra={"loop": task.get_name()},
        )
