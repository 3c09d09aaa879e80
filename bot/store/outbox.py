"""The outbox table: claiming due jobs, finishing them with their effects, retrying them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select, update

from bot.domain.alerts import AlertStatus
from bot.domain.contacts import Reach
from bot.domain.flapping import HISTORY_SHOWN, REFIRED, RESOLVED_KINDS, FlapHistory
from bot.domain.incidents import SEVERITY_CHANGED, TimelineEvent, severity_from_label
from bot.domain.outbox import (
    WAITING,
    WAITING_FOR_ANNOUNCEMENT,
    WAITING_FOR_CARD,
    JobKind,
    OutboxJob,
)
from bot.domain.storms import is_storm_key, summarize
from bot.domain.timers import ESCALATE, Timer
from bot.domain.views import ALERTS_SHOWN, AlertLine, CardCopy, CopyKind, IncidentView
from bot.store import ingest_sql as sql
from bot.store.models import CardCopyRow, IncidentRow, TimelineEventRow, TimerRow
from bot.store.reach import reach_of
from bot.store.repository import Database, enqueue_jobs, incident_from_row, schedule_timers
from bot.store.sessions import StoreSession
from bot.store.storms import storm_members

LEASE = timedelta(seconds=30)
CHANNEL_GIVEN_UP = "the incident's channel could not be created"


@dataclass(frozen=True)
class Job:
    """A claimed outbox job."""

    id: int
    kind: JobKind
    idem_key: str
    incident_id: int | None
    payload: dict[str, Any]
    attempts: int
    channel_id: str | None = None  # the incident's channel, when it has one
    created_at: datetime | None = None


@dataclass
class JobOutcome:
    """What a finished job changes: incident fields, timeline events, follow-up jobs."""

    incident_patch: dict[str, str] = field(default_factory=dict)
    events: list[TimelineEvent] = field(default_factory=list)
    follow_ups: list[OutboxJob] = field(default_factory=list)
    # Nobody at this (level, round) could be paged: the next level's timer is due now, if the
    # incident is still unacknowledged at that step.
    next_level_now: tuple[int, int] | None = None
    # Messages the job posted that show the incident (a DM's card, the announcement): every
    # card update edits them too.
    copies: list[CardCopy] = field(default_factory=list)
    # Timers the job sets: the later notification steps of a user group's members, whom the
    # page learnt of from Slack.
    timers: list[Timer] = field(default_factory=list)


# Core columns, not ORM attributes: the worker's statements run on the connection (no ORM step).
J = sql.OUTBOX.c
_JOB_COLUMNS = (J.id, J.kind, J.idem_key, J.incident_id, J.payload, J.attempts, J.created_at)

_PATCHABLE = frozenset({"channel_id", "channel_name", "card_ts"})


class OutboxStore:
    """Durable job queue over the `outbox` table."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # What the composition root adds to every view read here (who is on call now).
        self.add_to_view: Callable[[IncidentView], Awaitable[IncidentView]] | None = None

    async def due(
        self,
        now: datetime,
        limit: int,
        exclude: Sequence[int] = (),
        exclude_kinds: Sequence[JobKind] = (),
        only_kinds: Sequence[JobKind] = (),
    ) -> list[Job]:
        """Pending jobs whose time has come (and running ones whose lease expired), oldest
        first; of `only_kinds` alone, when given."""
        kinds = [J.kind.in_([k.value for k in only_kinds])] if only_kinds else []
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(*_JOB_COLUMNS, sql.INCIDENTS.c.channel_id)
                .select_from(
                    sql.OUTBOX.outerjoin(sql.INCIDENTS, J.incident_id == sql.INCIDENTS.c.id)
                )
                .where(
                    or_(
                        (J.state == "pending") & (J.not_before <= now),
                        (J.state == "running") & (J.lease_until < now),
                    ),
                    J.id.not_in(list(exclude)),
                    J.kind.not_in([k.value for k in exclude_kinds]),
                    *kinds,
                )
                .order_by(J.id)
                .limit(limit)
            )
            return [_job(row) for row in rows]

    async def siblings(self, job: Job, *, now: datetime, until: datetime, limit: int) -> list[Job]:
        """Other jobs of `job`'s kind and incident that are due by `until`, oldest first."""
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(*_JOB_COLUMNS)
                .where(
                    J.kind == job.kind.value,
                    J.incident_id == job.incident_id,
                    J.id != job.id,
                    or_(
                        (J.state == "pending") & (J.not_before <= until),
                        (J.state == "running") & (J.lease_until < now),
                    ),
                )
                .order_by(J.id)
                .limit(limit)
            )
            return [_job(row) for row in rows]

    async def claim(self, job: Job, now: datetime) -> bool:
        """Take a job for this worker; False when another worker was faster."""
        return job.id in await self.claim_all([job], now)

    async def claim_all(self, jobs: Sequence[Job], now: datetime) -> set[int]:
        """Take jobs for this worker in one statement; the ids of those no one took first."""
        if not jobs:
            return set()

        async def work(session: StoreSession) -> Any:
            result = await session.execute(
                update(sql.OUTBOX)
                .where(
                    J.id.in_([job.id for job in jobs]),
                    or_(
                        J.state == "pending",
                        (J.state == "running") & (J.lease_until < now),
                    ),
                )
                .values(
                    state="running",
                    lease_until=now + LEASE,
                    updated_at=now,
                    attempts=J.attempts + 1,
                )
                .returning(J.id)
            )
            return set(result.scalars())

        return await self.db.write(work)

    async def release_all(self, now: datetime) -> None:
        """Hand back running jobs of a previous run of this (single) process."""

        async def work(session: StoreSession) -> None:
            await session.execute(
                update(sql.OUTBOX)
                .where(J.state == "running")
                .values(state="pending", lease_until=None, not_before=now, updated_at=now)
            )

        await self.db.write(work)

    async def complete(self, job: Job, outcome: JobOutcome, now: datetime) -> None:
        """Mark a job done and apply its effects, in one transaction."""
        await self.complete_all([job], outcome, now)

    async def complete_all(self, jobs: Sequence[Job], outcome: JobOutcome, now: datetime) -> None:
        """Mark jobs of one incident done together (one Slack call did them all) and apply the
        call's effects, in one transaction."""
        job = jobs[0]

        async def work(session: StoreSession) -> None:
            await session.execute(
                update(sql.OUTBOX)
                .where(J.id.in_([j.id for j in jobs]))
                .values(state="done", lease_until=None, updated_at=now, last_error=None)
            )
            patch = {k: v for k, v in outcome.incident_patch.items() if k in _PATCHABLE}
            if patch and job.incident_id is not None:
                await session.execute(
                    update(IncidentRow).where(IncidentRow.id == job.incident_id).values(**patch)
                )
                await _wake_waiting(session, job.incident_id, now)  # for this channel or card
            if outcome.copies and job.incident_id is not None:
                await _add_copies(session, job.incident_id, outcome.copies, now)
            if job.incident_id is not None:
                session.add_all(
                    TimelineEventRow(
                        incident_id=job.incident_id,
                        at=e.at,
                        kind=e.kind,
                        actor=e.actor,
                        text=e.rich.text,
                        refs=e.rich.refs_data(),
                        data=e.data,
                    )
                    for e in outcome.events
                )
            await enqueue_jobs(session, outcome.follow_ups, at=now)
            await schedule_timers(session, outcome.timers, at=now)
            if outcome.next_level_now is not None and job.incident_id is not None:
                await _next_level_now(session, job.incident_id, outcome.next_level_now, now)

        await self.db.write(work)

    async def record_steps(self, job: Job) -> None:
        """Keep what a running job has done so far (its payload's `steps`): a retry resumes
        after them instead of repeating a call."""

        async def work(session: StoreSession) -> None:
            await session.execute(
                update(sql.OUTBOX)
                .where(J.id == job.id, J.state == "running")
                .values(payload=job.payload)
            )

        await self.db.write(work)

    async def retry(
        self,
        job: Job,
        *,
        at: datetime,
        error: str,
        count_attempt: bool,
        payload: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Put a job back to wait until `at` (`now` is when it was put back)."""
        values: dict[str, Any] = {
            "state": "pending",
            "lease_until": None,
            "not_before": at,
            "updated_at": at,
            "last_error": error[:2000],
        }
        # Claiming counted a try; a call that never left (paced, 429) gives it back.
        values["attempts"] = job.attempts + 1 if count_attempt else job.attempts
        if payload is not None:
            values["payload"] = payload

        async def work(session: StoreSession) -> None:
            if error.startswith(WAITING) and job.incident_id is not None:
                # Waiting jobs are woken when the channel or card is recorded (complete). If that
                # happened while this one ran on an older view, it is due now, not at `at`.
                if error == WAITING_FOR_ANNOUNCEMENT:
                    waited_for: Any = await _announced(session, job.incident_id) or None
                else:
                    column = (
                        IncidentRow.card_ts if error == WAITING_FOR_CARD else IncidentRow.channel_id
                    )
                    waited_for = await session.scalar(
                        select(column).where(IncidentRow.id == job.incident_id)
                    )
                if waited_for is not None:
                    values["not_before"] = values["updated_at"] = now or at
                elif await _channel_given_up(session, job.incident_id):
                    values.update(state="failed", last_error=CHANNEL_GIVEN_UP)
            await session.execute(update(sql.OUTBOX).where(J.id == job.id).values(**values))

        await self.db.write(work)

    async def fail(
        self,
        job: Job,
        *,
        now: datetime,
        error: str,
        event: TimelineEvent | None,
        notice: OutboxJob | None = None,
    ) -> None:
        """Give a job up for good, saying why on the incident's timeline (and with `notice`,
        queued in the same transaction, wherever else it must be said)."""

        async def work(session: StoreSession) -> None:
            if notice is not None:
                await enqueue_jobs(session, [notice], at=now)
            await session.execute(
                update(sql.OUTBOX)
                .where(J.id == job.id)
                .values(state="failed", lease_until=None, updated_at=now, last_error=error[:2000])
            )
            if job.kind is JobKind.OPEN_CHANNEL and job.incident_id is not None:
                # Jobs waiting for this channel can never run: they end with it.
                await session.execute(
                    update(sql.OUTBOX)
                    .where(*_waiting_of(job.incident_id))
                    .values(state="failed", updated_at=now, last_error=CHANNEL_GIVEN_UP)
                )
            if event is not None and job.incident_id is not None:
                session.add(
                    TimelineEventRow(
                        incident_id=job.incident_id,
                        at=event.at,
                        kind=event.kind,
                        actor=event.actor,
                        text=event.rich.text,
                        refs=event.rich.refs_data(),
                        data=event.data,
                    )
                )

        await self.db.write(work)

    async def depth(self) -> int:
        """Jobs not yet done or failed."""
        async with self.db.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(sql.OUTBOX)
                .where(J.state.in_(("pending", "running")))
            )
            return int(count or 0)

    async def oldest_due(self, now: datetime) -> datetime | None:
        """When the longest-waiting job became due (a pending job whose time has come, or a
        running one whose sender's claim ran out); None when none waits."""
        since = case((J.state == "running", J.lease_until), else_=J.not_before)
        async with self.db.sessions() as session:
            found: Any = await session.scalar(
                select(func.min(since)).where(
                    or_(
                        (J.state == "pending") & (J.not_before <= now),
                        (J.state == "running") & (J.lease_until < now),
                    )
                )
            )
            return found  # type: ignore[no-any-return]

    async def failed_since(self, since: datetime) -> int:
        """Jobs given up since `since`."""
        async with self.db.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(sql.OUTBOX)
                .where(J.state == "failed", J.updated_at >= since)
            )
            return int(count or 0)

    async def depth_is_zero(self) -> bool:
        """True when no job waits or runs."""
        return await self.depth() == 0

    async def events_since(
        self, kind: str, since: datetime
    ) -> list[tuple[datetime, dict[str, Any]]]:
        """When each timeline event of `kind` since `since` happened, and its data, across
        incidents (how many pages a person's phone got lately, say)."""
        T = TimelineEventRow
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(T.at, T.data).where(T.kind == kind, T.at >= since).order_by(T.at)
            )
            return [(row.at, dict(row.data or {})) for row in rows]

    async def reach(self, incident_id: int, user: str, page: str) -> Reach:
        """What `page`'s notifications of `user` came to so far (bot.store.reach)."""
        async with self.db.sessions() as session:
            return await reach_of(session, incident_id, user, page)

    async def next_due_at(self) -> datetime | None:
        """When the earliest pending job becomes due."""
        async with self.db.sessions() as session:
            found: Any = await session.scalar(
                select(func.min(J.not_before)).where(J.state == "pending")
            )
            return found  # type: ignore[no-any-return]

    async def incident_view(
        self,
        incident_id: int,
        *,
        alerts_from: int = 0,
        alerts_shown: int = ALERTS_SHOWN,
        whole: bool = True,
    ) -> IncidentView | None:
        """The incident and its alerts, for rendering: `alerts_shown` of them (firing first,
        then by name) from the `alerts_from`-th, and the counts of all. Not `whole`: the
        incident alone (a page by email needs no alerts, card copies or who is on call)."""
        async with self.db.sessions() as session:
            row = (await session.execute(sql.INCIDENT_BY_ID, {"id": incident_id})).first()
            if row is None:
                return None
            if not whole:
                return IncidentView(
                    incident=incident_from_row(row),
                    slug_source=row.slug_source,
                    labels=row.labels,
                    external_url=row.external_url,
                    alerts=[],
                    alerts_resolved_at=row.alerts_resolved_at,
                )
            params = {"incident_id": incident_id, "shown": alerts_shown, "skip": alerts_from}
            alerts = await session.execute(sql.ALERTS_SHOWN, params)
            counts: tuple[Any, ...] = tuple((await session.execute(sql.ALERT_COUNTS, params)).one())
            copies = await session.execute(
                select(CardCopyRow)
                .where(CardCopyRow.incident_id == incident_id)
                .order_by(CardCopyRow.id)
            )
            storm = None
            if is_storm_key(row.key):
                members = await storm_members(session, incident_id)
                newest = max((m.joined_at for m in members), default=row.opened_at)
                storm = summarize(members, now=newest)
            flaps = None
            if row.flapping_since is not None:
                flaps = await _flap_history(session, incident_id)
            view = IncidentView(
                storm=storm,
                flaps=flaps,
                incident=incident_from_row(row),
                slug_source=row.slug_source,
                labels=row.labels,
                external_url=row.external_url,
                alerts=[_alert_line(a) for a in alerts],
                alerts_resolved_at=row.alerts_resolved_at,
                alert_count=int(counts[0]),
                firing_count=int(counts[1]),
                firing_since=counts[2] or counts[3],
                copies=[_copy(c) for c in copies.scalars()],
                alert_severity=await _overridden_severity(session, row),
            )
        return view if self.add_to_view is None else await self.add_to_view(view)

    async def announce_settled(self, incident_id: int) -> bool:
        """True once the incident's announcement was posted, or given up."""
        async with self.db.sessions() as session:
            return await _announced(session, incident_id)

    async def incident_with_channel(self, channel_id: str) -> int | None:
        """The incident that owns a channel, if any."""
        async with self.db.sessions() as session:
            found: Any = await session.scalar(
                select(IncidentRow.id).where(IncidentRow.channel_id == channel_id)
            )
            return found  # type: ignore[no-any-return]


async def _flap_history(session: StoreSession, incident_id: int) -> FlapHistory:
    """A flapping group's last state changes, and the re-fires among them."""
    rows = await session.execute(
        select(TimelineEventRow.at, TimelineEventRow.kind)
        .where(
            TimelineEventRow.incident_id == incident_id,
            TimelineEventRow.kind.in_((REFIRED, *RESOLVED_KINDS)),
        )
        .order_by(TimelineEventRow.at.desc(), TimelineEventRow.id.desc())
        .limit(HISTORY_SHOWN * 2)
    )
    changes: list[tuple[datetime, bool]] = []
    for at, kind in reversed(rows.all()):
        if not changes or changes[-1][1] != (kind == REFIRED):  # a change, not its echo
            changes.append((at, kind == REFIRED))
    refires = sum(1 for _, fired in changes if fired)
    return FlapHistory(refires=refires, changes=changes)


async def _overridden_severity(session: StoreSession, row: Any) -> str | None:
    """The alerts' `severity` label, when the incident's playbook set another severity and no
    person changed it since."""
    label = (row.labels or {}).get("severity")
    if not row.playbook or not label or severity_from_label(label).value == row.severity:
        return None
    changed = await session.scalar(
        select(TimelineEventRow.id)
        .where(TimelineEventRow.incident_id == row.id, TimelineEventRow.kind == SEVERITY_CHANGED)
        .limit(1)
    )
    return None if changed is not None else str(label)


def _waiting_of(incident_id: int) -> tuple[ColumnElement[bool], ...]:
    """The conditions that pick an incident's jobs waiting for its channel or card."""
    return (J.incident_id == incident_id, J.state == "pending", J.last_error.startswith(WAITING))


async def _channel_given_up(session: Any, incident_id: int) -> bool:
    """True when creating the incident's channel was given up: nothing can wait for it."""
    found = await session.scalar(
        select(J.id).where(
            J.incident_id == incident_id,
            J.kind == JobKind.OPEN_CHANNEL.value,
            J.state == "failed",
        )
    )
    return found is not None


async def _next_level_now(
    session: Any, incident_id: int, step: tuple[int, int], now: datetime
) -> None:
    """Make the pending escalation timer due now, while the incident is still triggered at
    `step` (acknowledged, resolved or moved on since: nothing to do)."""
    row = (
        await session.execute(
            select(
                IncidentRow.status, IncidentRow.escalation_level, IncidentRow.escalation_round
            ).where(IncidentRow.id == incident_id)
        )
    ).first()
    if row is None or row.status != "triggered":
        return
    if (row.escalation_level, row.escalation_round) != step:
        return
    await session.execute(
        update(TimerRow)
        .where(
            TimerRow.incident_id == incident_id,
            TimerRow.kind == ESCALATE,
            TimerRow.state == "pending",
            TimerRow.due_at > now,
        )
        .values(due_at=now)
    )


def _job(row: Any) -> Job:
    return Job(
        id=row.id,
        kind=JobKind(row.kind),
        idem_key=row.idem_key,
        incident_id=row.incident_id,
        payload=dict(row.payload or {}),
        attempts=row.attempts,
        channel_id=getattr(row, "channel_id", None),
        created_at=row.created_at,
    )


async def _wake_waiting(session: Any, incident_id: int, now: datetime) -> None:
    """Make the incident's waiting jobs due now: what they waited for may be there."""
    await session.execute(
        update(sql.OUTBOX).where(*_waiting_of(incident_id)).values(not_before=now)
    )


async def _announced(session: Any, incident_id: int) -> bool:
    """True when the incident's announcement job is done or failed: nothing to wait for."""
    found = await session.scalar(
        select(J.id).where(
            J.incident_id == incident_id,
            J.kind == JobKind.ANNOUNCE.value,
            J.state.in_(("done", "failed")),
        )
    )
    return found is not None


async def _add_copies(
    session: Any, incident_id: int, copies: Sequence[CardCopy], now: datetime
) -> None:
    """Record the copies not recorded yet (a retried job reports its message again)."""
    for copy in copies:
        known = await session.scalar(
            select(CardCopyRow.id).where(
                CardCopyRow.channel_id == copy.channel, CardCopyRow.ts == copy.ts
            )
        )
        if known is None:
            session.add(
                CardCopyRow(
                    incident_id=incident_id,
                    kind=copy.kind.value,
                    channel_id=copy.channel,
                    ts=copy.ts,
                    user_id=copy.user,
                    label=copy.label,
                    created_at=now,
                )
            )
    if any(copy.kind is CopyKind.ANNOUNCEMENT for copy in copies):
        await _wake_waiting(session, incident_id, now)  # outcomes for the announcement's thread


def _copy(row: CardCopyRow) -> CardCopy:
    return CardCopy(
        kind=CopyKind(row.kind),
        channel=row.channel_id,
        ts=row.ts,
        user=row.user_id,
        label=row.label,
        at=row.created_at,
    )


def _alert_line(row: Any) -> AlertLine:
    annotations = row.annotations or {}
    summary = str(annotations.get("summary") or "")
    description = str(annotations.get("description") or "")
    return AlertLine(
        name=row.name,
        status=AlertStatus(row.status),
        summary=summary or description,
        labels=row.labels or {},
        starts_at=row.starts_at,
        generator_url=row.generator_url,
        description=description if summary and description != summary else "",
        dashboard=str(annotations.get("dashboard") or annotations.get("dashboard_url") or ""),
    )
