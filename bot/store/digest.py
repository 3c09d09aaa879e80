"""Digest runs (claimed once per digest, channel and day) and the incident figures digests read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.domain.digest import RunClaim
from bot.domain.incidents import Severity
from bot.domain.kpi import IncidentTimes
from bot.domain.outbox import OutboxJob
from bot.store.models import DigestRunRow, IncidentRow
from bot.store.repository import Database, enqueue_jobs
from bot.store.sessions import StoreSession

# A run claimed but not queued after this long was lost with its process: another may take it.
CLAIM_LEASE = timedelta(minutes=5)


class DigestStore:
    """The `digest_runs` table and read-only incident queries for statistics."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(
        self, digest: str, channel: str, day: date, *, due_at: datetime, now: datetime, late: bool
    ) -> RunClaim | None:
        """Take the run, or None when another process (or an earlier run) has it.

        The unique (digest, channel, day) row decides between processes; a claim left by a
        process that died before queueing its message is taken over after CLAIM_LEASE.
        """
        if await self._insert(
            digest, channel, day, due_at=due_at, now=now, late=late, state="claimed"
        ):
            return RunClaim(digest, channel, day, late)

        async def work(session: StoreSession) -> RunClaim | None:
            taken = await session.execute(
                update(DigestRunRow)
                .where(
                    *_run(digest, channel, day),
                    DigestRunRow.state == "claimed",
                    DigestRunRow.claimed_at < now - CLAIM_LEASE,
                )
                .values(claimed_at=now, late=True)
            )
            if getattr(taken, "rowcount", 0) == 1:
                return RunClaim(digest, channel, day, True)
            return None

        return await self.db.write(work)

    async def queue(self, claim: RunClaim, jobs: Sequence[OutboxJob], *, now: datetime) -> None:
        """The run's message goes to the outbox and the run is done, in one transaction."""

        async def work(session: StoreSession) -> None:
            await enqueue_jobs(session, jobs, at=now)
            await session.execute(
                update(DigestRunRow)
                .where(*_run(claim.digest, claim.channel, claim.day))
                .values(state="queued")
            )

        await self.db.write(work)

    async def seen(self, digest: str, channel: str) -> bool:
        """True when this digest has a run for this channel, of any day."""
        async with self.db.sessions() as session:
            found = await session.scalar(
                select(DigestRunRow.id)
                .where(DigestRunRow.digest == digest, DigestRunRow.channel == channel)
                .limit(1)
            )
            return found is not None

    async def skip(
        self, digest: str, channel: str, day: date, *, due_at: datetime, now: datetime
    ) -> None:
        """Record a run as not posted (its time passed before this digest ever ran)."""
        await self._insert(digest, channel, day, due_at=due_at, now=now, late=True, state="skipped")

    async def _insert(
        self,
        digest: str,
        channel: str,
        day: date,
        *,
        due_at: datetime,
        now: datetime,
        late: bool,
        state: str,
    ) -> bool:
        """Add the run's row; False when it exists (another process or pass decided first)."""
        try:

            async def work(session: StoreSession) -> None:
                await session.execute(
                    insert(DigestRunRow).values(
                        digest=digest,
                        channel=channel,
                        day=day.isoformat(),
                        due_at=due_at,
                        claimed_at=now,
                        late=late,
                        state=state,
                    )
                )

            await self.db.write(work)
        except IntegrityError:
            return False
        return True

    async def enqueue(self, jobs: Sequence[OutboxJob], *, now: datetime) -> None:
        """Enqueue jobs outside any run (`tocsin digest --now`)."""

        async def work(session: StoreSession) -> None:
            await enqueue_jobs(session, jobs, at=now)

        await self.db.write(work)

    async def release(self, claim: RunClaim) -> None:
        """Give a claim back (building failed): the next pass tries again."""

        async def work(session: StoreSession) -> None:
            await session.execute(
                delete(DigestRunRow).where(
                    *_run(claim.digest, claim.channel, claim.day), DigestRunRow.state == "claimed"
                )
            )

        await self.db.write(work)

    async def incidents_during(self, start: datetime, end: datetime) -> list[IncidentTimes]:
        """Incidents open at some moment of [start, end): opened before its end, not resolved
        before its start. That covers every incident opened, acknowledged or resolved in it.
        Drills are left out: they count in no statistic (opened, MTTA, MTTR, ...)."""
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(
                    IncidentRow.id,
                    IncidentRow.title,
                    IncidentRow.severity,
                    IncidentRow.opened_at,
                    IncidentRow.acknowledged_at,
                    IncidentRow.resolved_at,
                    IncidentRow.channel_id,
                    IncidentRow.channel_name,
                ).where(
                    IncidentRow.drill.is_(False),
                    IncidentRow.opened_at < end,
                    or_(IncidentRow.resolved_at.is_(None), IncidentRow.resolved_at >= start),
                )
            )
            return [
                IncidentTimes(
                    id=r.id,
                    title=r.title,
                    severity=Severity(r.severity),
                    opened_at=r.opened_at,
                    acknowledged_at=r.acknowledged_at,
                    resolved_at=r.resolved_at,
                    channel_id=r.channel_id,
                    channel_name=r.channel_name,
                )
                for r in rows
            ]


def _run(digest: str, channel: str, day: date) -> tuple[ColumnElement[bool], ...]:
    """The conditions that pick one run's row."""
    return (
        DigestRunRow.digest == digest,
        DigestRunRow.channel == channel,
        DigestRunRow.day == day.isoformat(),
    )
