"""The outbox worker: drains Slack jobs concurrently, within rate limits, surviving restarts."""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.outbox import JobKind
from bot.errors import SlackCallError, StoreUnreachable
from bot.loops.backoff import Backoff
from bot.loops.wakeup import Wakeup
from bot.observability.metrics import Metrics
from bot.slack.outbox.caller import RetryLater
from bot.slack.outbox.diagnostic_jobs import BATCHES
from bot.slack.outbox.job_table import (
    FIRST_METHOD,
    INCIDENT_ONLY,
    PAGES,
    UNPACED,
    failure_notice,
    posting_channel,
)
from bot.slack.outbox.jobs import Batching, Handler, JobContext, JobFailed, Rename
from bot.slack.outbox.ratelimit import RateLimiter
from bot.slack.outbox.workspace_jobs import WORKSPACE_HANDLERS, WorkspaceHandler
from bot.store.outbox import Job, JobOutcome, OutboxStore

log = logging.getLogger(__name__)
# Transient failures (5xx, timeouts, connection errors) are retried after 2, 4, 8 ... seconds,
# at most this long, each wait shortened by up to half at random so that the jobs of a storm
# that failed together do not all come back together.
BACKOFF_CAP = 300.0
# Commits wake the worker; it looks at the queue at most this often for them (bot.loops.wakeup).
FILL_GAP = 0.02
DEPTH_EVERY = 1.0


@dataclass(frozen=True)
class _Run:
    """The task doing a job (or a batch of jobs of one kind), and the channel it posts into."""

    task: asyncio.Task[None]
    kind: JobKind
    channel: str | None


class OutboxWorker:
    """Runs due outbox jobs, never ahead of the rate limiter: at most `concurrency` jobs that
    call Slack at a time, and beside them at most `unpaced_concurrency` that call no Slack method.

    A job of a kind in `batches` takes with it the other jobs of its kind and incident that are
    due within one channel slot, as many as one call carries, and one call does them all.
    """

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
        unpaced_concurrency: int = 32,
        give_up_after: timedelta = timedelta(hours=6),
        poll_interval: float = 1.0,
        workspace_handlers: Mapping[JobKind, WorkspaceHandler] | None = None,
        batches: Mapping[JobKind, Batching] | None = None,
    ) -> None:
        self.store = store
        self.context = context
        self.handlers = handlers
        self.workspace_handlers = dict(workspace_handlers or WORKSPACE_HANDLERS)
        self.batches = dict(BATCHES if batches is None else batches)
        self.limiter = limiter
        self.metrics = metrics
        self.now = now
        self.concurrency = concurrency
        # Jobs that make no Slack call (a page by email, a PagerDuty event) wait on other
        # servers, not on Slack's limits: they run in a lane of their own, this many at once.
        self.unpaced_concurrency = unpaced_concurrency
        self.give_up_after = give_up_after
        self.poll_interval = poll_interval
        self._wakeup = Wakeup(min_gap=FILL_GAP)
        self._depth_at = -DEPTH_EVERY
        # Every claimed job's id, with the task doing it (a task may do a batch of jobs).
        self._running: dict[int, _Run] = {}  # by job id: a batch's jobs share one run
        self._retry_at: list[datetime] = []  # when jobs this worker put back become due
        self._stopping = False
        self.alive = False
        # Looks at the queue that found nothing to start, with nothing running: the worker has
        # done all it may do now (tests that move a fake clock wait for the next one).
        self.idle_looks = 0

    def wake(self) -> None:
        """New work was committed; look at the queue soon."""
        self._wakeup.set()

    async def run(self) -> None:
        """Drain the outbox until stopped (it may run again after a stop)."""
        self._stopping = False
        self.alive = True
        backoff = Backoff("outbox loop")
        try:
            while not self._stopping:
                try:
                    pause = await self._fill()
                    if time.monotonic() - self._depth_at >= DEPTH_EVERY:
                        self._depth_at = time.monotonic()
                        self.metrics.outbox_depth.set(await self.store.depth())
                except Exception as error:
                    # The store is unreachable, say: a later look may find it back.
                    pause = backoff.failed(error)
                else:
                    backoff.succeeded()
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
        runs = {run.task: run.kind for run in self._running.values()}
        free = self.concurrency - sum(kind not in UNPACED for kind in runs.values())
        free_unpaced = self.unpaced_concurrency - sum(kind in UNPACED for kind in runs.values())
        pause = self.poll_interval
        # A job put back until a moment (a paced post's slot, say) is looked at that moment.
        now = self.now()
        while self._retry_at and self._retry_at[0] <= now:
            heapq.heappop(self._retry_at)
        if self._retry_at:
            pause = min(pause, (self._retry_at[0] - now).total_seconds())
        if free <= 0 and free_unpaced <= 0:
            return pause
        if self._stopping:
            return pause  # stopping (the outbox lease lost, say): no new call may start
        paced = {kind: self.limiter.wait_for(method) for kind, method in FIRST_METHOD.items()}
        held = [kind for kind, wait in paced.items() if wait > 0]
        if held:
            pause = min(pause, *(paced[k] for k in held))
        # Pages beyond Slack (email, push, PagerDuty) go first, in a lane of their own: a
        # backlog of paced Slack posts must not hold them back.
        chosen: list[tuple[Job, str | None]] = []
        if free_unpaced > 0:
            unpaced = await self.store.due(
                self.now(), limit=free_unpaced, exclude=list(self._running), only_kinds=UNPACED
            )
            chosen += [(job, None) for job in unpaced]
        candidates: list[Job] = []
        if free > 0:
            # Then the pages in Slack (invitations, DMs): a backlog of cards, notes and edits
            # queued before them, paced channel by channel, must not keep people unpaged.
            pages = [kind for kind in PAGES if kind not in held]
            if pages:
                candidates = await self.store.due(
                    self.now(), limit=4 * free + 8, exclude=list(self._running), only_kinds=pages
                )
            candidates += await self.store.due(
                self.now(),
                limit=8 * free + 32,
                exclude=list(self._running),
                exclude_kinds=[*held, *UNPACED, *PAGES],
            )
        # Start no more jobs of a method than the limiter has room for, and at most one post per
        # channel that may post now, counting the running jobs that may not have made their call
        # yet: the rest would only be claimed, find themselves paced, and be put back.
        room: dict[str, int] = {}
        busy = {run.channel for run in self._running.values() if run.channel is not None}
        for job in candidates:
            if job.id in self._running:
                continue  # taken with an earlier job of its batch
            method = FIRST_METHOD.get(job.kind)
            if method is None:  # no Slack call: not paced by Slack's limits
                if free <= 0:
                    break
                free -= 1
                chosen.append((job, None))
                continue
            if method not in room:
                started = sum(
                    FIRST_METHOD.get(run.kind) == method for run in self._running.values()
                )
                room[method] = self.limiter.room(method) - started
            if room[method] <= 0:
                continue
            channel = posting_channel(job, self.context.alerts_channel)
            if channel is not None:
                wait = self.limiter.wait_for(method, channel)
                if channel in busy or wait > 0:
                    if wait > 0:
                        pause = min(pause, wait)
                    continue
                busy.add(channel)
            if free <= 0:
                break
            free -= 1
            room[method] -= 1
            chosen.append((job, channel))
        # One statement claims them all; a job another worker took first is left to it.
        claimed = await self.store.claim_all([job for job, _ in chosen], self.now())
        for job, channel in chosen:
            if job.id not in claimed:
                continue
            jobs = [job, *await self._claim_batch(job)]
            run = _Run(asyncio.create_task(self._run_job(jobs)), job.kind, channel)
            self._running.update((j.id, run) for j in jobs)
        if not self._running:
            self.idle_looks += 1
        return max(pause, 0.01)

    async def _claim_batch(self, job: Job) -> list[Job]:
        """The other jobs that go with `job`, claimed; none unless its kind goes in batches."""
        batching = self.batches.get(job.kind)
        if batching is None or job.incident_id is None:
            return []
        now = self.now()
        # A job due within one channel slot would otherwise take the next slot on its own.
        until = now + timedelta(seconds=self.limiter.channel_gap)
        load = batching.weight(job)
        fitting: list[Job] = []
        for other in await self.store.siblings(job, now=now, until=until, limit=batching.capacity):
            if other.id in self._running:
                continue
            weight = batching.weight(other)
            if load + weight > batching.capacity:
                break  # the rest go in the next call, oldest first
            fitting.append(other)
            load += weight
        claimed = await self.store.claim_all(fitting, now)
        return [other for other in fitting if other.id in claimed]

    async def _run_job(self, jobs: Sequence[Job]) -> None:
        try:
            try:
                await self._execute(jobs)
            except StoreUnreachable:
                raise
            except Exception:
                log.exception("outbox job %s (%s) crashed", jobs[0].id, jobs[0].kind.value)
                for job in jobs:
                    await self._retry(job, 5.0, "internal error", counts_attempt=True)
        except StoreUnreachable as exc:
            # Its claim lapses (store.LEASE) and it runs again; what it did in Slack is recorded
            # step by step or found again by its metadata, so nothing is sent twice.
            log.warning(
                "outbox job %s (%s) interrupted: %s; it runs again once the store is back",
                jobs[0].id,
                jobs[0].kind.value,
                exc,
            )
        finally:
            for job in jobs:
                self._running.pop(job.id, None)
            self._wakeup.set(now=True)

    async def _execute(self, jobs: Sequence[Job]) -> None:
        job = jobs[0]
        workspace = self.workspace_handlers.get(job.kind)
        batching = self.batches.get(job.kind)
        view = None
        if job.incident_id is not None:
            whole = job.kind not in INCIDENT_ONLY
            view = await self.store.incident_view(job.incident_id, whole=whole)
        if view is None and workspace is None:
            for each in jobs:
                await self.store.fail(each, now=self.now(), error="incident not found", event=None)
            return
        try:
            if workspace is not None:
                outcome = await workspace(self.context, job)
            elif batching is not None:
                assert view is not None
                outcome = await batching.handler(self.context, jobs, view)
            else:
                assert view is not None
                outcome = await self.handlers[job.kind](self.context, job, view)
        except Rename as exc:
            await self.store.retry(
                job, at=self.now(), error=exc.reason, count_attempt=False, payload=exc.payload
            )
            return
        except RetryLater as exc:
            if exc.failure is not None:
                _slack_failed(logging.WARNING, job, *exc.failure, "the job is tried again")
            for each in jobs:
                await self._retry(each, exc.after, exc.reason, counts_attempt=exc.counts_attempt)
            return
        except SlackCallError as exc:
            _slack_failed(logging.ERROR, job, exc.method, exc.code, "the job failed for good")
            for each in jobs:
                await self._fail(each, str(exc), logged=True)
            return
        except JobFailed as exc:
            for each in jobs:
                await self._fail(each, str(exc))
            return
        await self._complete(jobs, outcome)
        self.metrics.outbox_jobs.labels(job.kind.value, "done").inc(len(jobs))
        if outcome.next_level_now is not None or outcome.timers:
            self.context.wake_timers()

    async def _complete(self, jobs: Sequence[Job], outcome: JobOutcome) -> None:
        """Record what the job did in Slack; while the store is unreachable, keep trying (so the
        job is not run again), unless the worker is stopping."""
        backoff = Backoff(f"recording outbox job {jobs[0].id}")
        while True:
            try:
                await self.store.complete_all(jobs, outcome, self.now())
            except StoreUnreachable as error:
                if self._stopping:
                    raise
                await asyncio.sleep(backoff.failed(error))
            else:
                backoff.succeeded()
                return

    async def _retry(self, job: Job, after: float, reason: str, *, counts_attempt: bool) -> None:
        now = self.now()
        if counts_attempt:
            age = now - (job.created_at or now)
            if age >= self.give_up_after:
                hours = age.total_seconds() / 3600
                tries = job.attempts + 1
                await self._fail(
                    job, f"gave up after {tries} tries over {hours:.1f} h: {reason}", gave_up=True
                )
                return
            backoff = min(BACKOFF_CAP, 2.0 ** (job.attempts + 1))
            after = max(after, backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
        at = now + timedelta(seconds=after)
        await self.store.retry(job, at=at, error=reason, count_attempt=counts_attempt, now=now)
        heapq.heappush(self._retry_at, at)

    async def _fail(
        self, job: Job, reason: str, *, gave_up: bool = False, logged: bool = False
    ) -> None:
        """Give a job up, loudly: a log line (unless Slack's answer was logged), a metric, the
        timeline, and a notice in the alerts channel (posted once Slack answers again)."""
        if not logged:
            log.error(
                "outbox job %s (%s) failed for good: %s",
                job.id,
                job.kind.value,
                reason,
                extra={"job": job.id, "kind": job.kind.value, "reason": reason},
            )
        self.metrics.outbox_jobs.labels(job.kind.value, "gave_up" if gave_up else "failed").inc()
        event = self.context.event("slack_failed", reason[:500], job=job.kind.value)
        notice = None
        if self.context.alerts_channel and job.kind is not JobKind.POST_NOTICE:
            view = await self.store.incident_view(job.incident_id) if job.incident_id else None
            notice = failure_notice(job, view, reason, self.context.alerts_channel)
        await self.store.fail(job, now=self.now(), error=reason, event=event, notice=notice)

    async def _drain(self) -> None:
        if self._running:
            await asyncio.wait({run.task for run in self._running.values()}, timeout=10)


def _slack_failed(level: int, job: Job, method: str, code: str, then: str) -> None:
    """One line per Slack call that failed: the method, Slack's error code, the job."""
    log.log(
        level,
        "Slack %s failed: %s (outbox job %s, %s); %s",
        method,
        code,
        job.id,
        job.kind.value,
        then,
        extra={"method": method, "code": code, "job": job.id, "kind": job.kind.value},
    )
