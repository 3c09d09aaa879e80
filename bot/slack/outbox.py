"""The outbox worker: drains Slack jobs concurrently, within rate limits, surviving restarts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bot.domain.outbox import JobKind
from bot.metrics import Metrics
from bot.slack.caller import RetryLater, SlackError
from bot.slack.jobs import FIRST_METHOD, Handler, JobContext, JobFailed, Rename
from bot.slack.ratelimit import RateLimiter
from bot.slack.workspace_jobs import WORKSPACE_HANDLERS, WorkspaceHandler
from bot.store.outbox import Job, OutboxStore
from bot.wakeup import Wakeup

log = logging.getLogger(__name__)
BACKOFF_CAP = 300.0
# Commits wake the worker; it looks at the queue at most this often for them (bot.wakeup).
FILL_GAP = 0.02
DEPTH_EVERY = 1.0


class OutboxWorker:
    """Runs due outbox jobs, at most `concurrency` at a time, never ahead of the rate limiter."""

    def __init__(
        self,
        *,
        store: OutboxStore,
        context: JobContext,
        handlers: Mapping[JobKind, Handler],
        limiter: RateLimiter,
        metrics: Metrics,
        now: Callable[[], datetime],
        concurrency: int = 8,
        max_attempts: int = 8,
        poll_interval: float = 1.0,
        workspace_handlers: Mapping[JobKind, WorkspaceHandler] | None = None,
    ) -> None:
        self.store = store
        self.context = context
        self.handlers = handlers
        self.workspace_handlers = dict(workspace_handlers or WORKSPACE_HANDLERS)
        self.limiter = limiter
        self.metrics = metrics
        self.now = now
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self._wakeup = Wakeup(min_gap=FILL_GAP)
        self._depth_at = -DEPTH_EVERY
        self._running: dict[int, asyncio.Task[None]] = {}
        self._running_kinds: dict[int, JobKind] = {}
        self._stopping = False
        self.alive = False

    def wake(self) -> None:
        """New work was committed; look at the queue soon."""
        self._wakeup.set()

    async def run(self) -> None:
        """Drain the outbox until stopped."""
        self.alive = True
        try:
            while not self._stopping:
                pause = await self._fill()
                if time.monotonic() - self._depth_at >= DEPTH_EVERY:
                    self._depth_at = time.monotonic()
                    self.metrics.outbox_depth.set(await self.store.depth())
                await self._wakeup.wait(pause)
        finally:
            self.alive = False
            await self._drain()

    async def stop(self) -> None:
        """Finish the calls in flight and stop."""
        self._stopping = True
        self._wakeup.set(now=True)

    async def _fill(self) -> float:
        """Start due jobs the limiter allows; return how long to wait before looking again."""
        free = self.concurrency - len(self._running)
        pause = self.poll_interval
        if free <= 0:
            return pause
        paced = {kind: self.limiter.wait_for(method) for kind, method in FIRST_METHOD.items()}
        held = [kind for kind, wait in paced.items() if wait > 0]
        if held:
            pause = min(pause, *(paced[k] for k in held))
        candidates = await self.store.due(
            self.now(), limit=2 * free + 8, exclude=list(self._running), exclude_kinds=held
        )
        # Start no more jobs of a method than the limiter has room for, counting the running
        # jobs that may not have made their call yet: the rest would only be claimed, find the
        # method paced, and be put back.
        room: dict[str, int] = {}
        for job in candidates:
            method = FIRST_METHOD[job.kind]
            if method not in room:
                started = sum(FIRST_METHOD[k] == method for k in self._running_kinds.values())
                room[method] = self.limiter.room(method) - started
            if room[method] <= 0:
                continue
            if free <= 0:
                break
            if not await self.store.claim(job, self.now()):
                continue
            free -= 1
            room[method] -= 1
            self._running_kinds[job.id] = job.kind
            self._running[job.id] = asyncio.create_task(self._run_job(job))
        return max(pause, 0.01)

    async def _run_job(self, job: Job) -> None:
        try:
            await self._execute(job)
        except Exception:
            log.exception("outbox job %s (%s) crashed", job.id, job.kind.value)
            await self._retry(job, 5.0, "internal error", counts_attempt=True)
        finally:
            self._running.pop(job.id, None)
            self._running_kinds.pop(job.id, None)
            self._wakeup.set(now=True)

    async def _execute(self, job: Job) -> None:
        workspace = self.workspace_handlers.get(job.kind)
        view = await self.store.incident_view(job.incident_id) if job.incident_id else None
        if view is None and workspace is None:
            await self.store.fail(job, now=self.now(), error="incident not found", event=None)
            return
        try:
            if workspace is not None:
                outcome = await workspace(self.context, job)
            else:
                assert view is not None
                outcome = await self.handlers[job.kind](self.context, job, view)
        except Rename as exc:
            await self.store.retry(
                job, at=self.now(), error=exc.reason, count_attempt=False, payload=exc.payload
            )
            return
        except RetryLater as exc:
            await self._retry(job, exc.after, exc.reason, counts_attempt=exc.counts_attempt)
            return
        except (JobFailed, SlackError) as exc:
            await self._fail(job, str(exc))
            return
        await self.store.complete(job, outcome, self.now())
        self.metrics.outbox_jobs.labels(job.kind.value, "done").inc()

    async def _retry(self, job: Job, after: float, reason: str, *, counts_attempt: bool) -> None:
        if counts_attempt:
            if job.attempts + 1 >= self.max_attempts:
                await self._fail(job, f"gave up after {job.attempts + 1} tries: {reason}")
                return
            after = max(after, min(BACKOFF_CAP, 2.0 ** (job.attempts + 1)))
        now = self.now()
        await self.store.retry(
            job,
            at=now + timedelta(seconds=after),
            error=reason,
            count_attempt=counts_attempt,
            now=now,
        )

    async def _fail(self, job: Job, reason: str) -> None:
        log.warning("outbox job %s (%s) failed: %s", job.id, job.kind.value, reason)
        self.metrics.outbox_jobs.labels(job.kind.value, "failed").inc()
        event = self.context.event("slack_failed", reason[:500], job=job.kind.value)
        await self.store.fail(job, now=self.now(), error=reason, event=event)

    async def _drain(self) -> None:
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=10)
