"""The incident store: repositories over one session per unit of work, returning domain models."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.alerts import Alert, AlertGroup, AlertsOnRecord, AlertStatus, KnownAlert
from bot.domain.incidents import Incident, IncidentStatus, Severity, TimelineEvent
from bot.domain.incidents import severity_from_label as _severity
from bot.domain.oncall import Override
from bot.domain.outbox import OutboxJob
from bot.domain.storms import StormMember, StormWeather
from bot.domain.text import Rich, refs_from_data
from bot.domain.timers import Timer
from bot.errors import StoreConflict
from bot.ports import AlertWrite, IncidentTransaction, IntakeReads
from bot.store import ingest_sql as sql
from bot.store.engine import SessionFactory, create_session_factory, is_sqlite
from bot.store.held_writes import HeldInserts, SendingFirst
from bot.store.models import (
    AlertRow,
    IncidentRow,
    OnCallOverrideRow,
    TimelineEventRow,
    TimerRow,
)
from bot.store.reachability import reachable
from bot.store.sessions import StoreSession
from bot.store.sqlite.checkpoint import INTERVAL as CHECKPOINT_INTERVAL
from bot.store.sqlite.locks import LOCK_WAIT
from bot.store.sqlite.writers import SqliteWriters
from bot.store.storms import storm_members, storm_weather

T = TypeVar("T")
STORM_LOCK = 0x70C5_1A57  # the advisory lock openings take to count a storm's window


def incident_from_row(row: IncidentRow | Any) -> Incident:
    """The domain view of an incident row."""
    return Incident(
        id=row.id,
        key=row.key,
        title=row.title,
        severity=Severity(row.severity),
        status=IncidentStatus(row.status),
        opened_at=row.opened_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        auto_resolve=row.auto_resolve,
        channel_id=row.channel_id,
        channel_name=row.channel_name,
        card_ts=row.card_ts,
        lead=row.lead,
        declared_by=row.declared_by,
        silence_id=row.silence_id,
        silenced_until=row.silenced_until,
        silenced_by=row.silenced_by,
        escalation_policy=row.escalation_policy,
        escalation_level=row.escalation_level,
        escalation_round=row.escalation_round,
        version=row.version,
        playbook=row.playbook,
        runbook=row.runbook,
        escalation_exhausted_at=row.escalation_exhausted_at,
        reopened_at=row.reopened_at,
        drill=row.drill,
        storm_id=row.storm_id,
        flapping_since=row.flapping_since,
    )


class SqlIncidentTransaction:
    """IncidentTransaction over one SQLAlchemy session.

    The newest incident of a key is read once per transaction: notifications that share a
    commit (GroupCommit) mostly belong to one alert group, and its row, once read (and locked,
    on Postgres), changes only through this transaction's own `open_incident` and
    `save_incident`, which keep the remembered copy current.

    The intake's inserts (receipts, alerts, timeline events) are held and sent together
    (bot.store.held_writes): `self.session` sends them before any other statement, and the
    store sends the rest (`send_held`) before it commits. The intake's own statements, which
    touch none of those tables or know what is held, use the bare session (`self._bare`).
    """

    def __init__(self, session: StoreSession, *, serialize_storms: bool = False) -> None:
        self._bare = session
        # Postgres runs several writers at once: two that count the new groups of a storm's
        # window side by side would both see room under the threshold. They take turns
        # (a transaction-scoped advisory lock); SQLite's writers take turns anyway.
        self._serialize_storms = serialize_storms
        self._held = HeldInserts()
        self.session: StoreSession = SendingFirst(session, self._held)
        self._latest: dict[str, Incident | None] = {}
        # As this transaction read or set it: a write of the same value is skipped.
        self._alerts_resolved_at: dict[int, datetime | None] = {}
        self._pending_cards: dict[str, datetime] = {}  # coalesce keys of jobs known pending
        self._receipts_read: set[tuple[str, str]] = set()  # (source, sha) asked by read_ahead
        self._receipts_found: set[tuple[str, str]] = set()  # and found

    async def read_ahead(self, reads: Sequence[IntakeReads]) -> None:
        """Read the receipts, newest incidents and named alerts of several notifications in a
        statement or two per table: the intake of each then asks only what it does not know."""
        shas: dict[str, set[str]] = defaultdict(set)
        for read in reads:
            if (read.source, read.body_sha256) not in self._receipts_read:
                shas[read.source].add(read.body_sha256)
        for source, asked in shas.items():
            ordered = sorted(asked)
            for start in range(0, len(ordered), sql.IN_LENGTHS[-1]):
                statement, params = sql.among(
                    sql.RECEIPTS_AMONG, ordered[start : start + sql.IN_LENGTHS[-1]], "sha"
                )
                rows = await self._bare.execute(statement, {"source": source, **params})
                self._receipts_found.update((source, sha) for (sha,) in rows.all())
            self._receipts_read.update((source, sha) for sha in asked)
        # A body stored before (Alertmanager's HA peers and retries send the same one again)
        # stops at its receipt: its incident and alerts are not read for it.
        fingerprints: dict[str, set[str]] = defaultdict(set)
        for read in reads:
            if (read.source, read.body_sha256) not in self._receipts_found:
                fingerprints[read.key].update(read.fingerprints)
        for key, named in fingerprints.items():
            incident = await self.latest_incident(key)
            if incident is None:
                continue
            wanted = self._held.unknown(incident.id, sorted(named))
            if wanted:
                read_alerts = await self._named_alerts(incident.id, wanted)
                self._held.remember(incident.id, read_alerts.values())
                self._held.remember_absent(incident.id, set(wanted) - set(read_alerts))

    async def send_held(self) -> None:
        """Insert what is held; the store calls this before it commits."""
        await self._held.send(self._bare)

    async def receipt_seen(self, source: str, body_sha256: str) -> bool:
        """True when this exact webhook body was stored before."""
        if self._held.seen(source, body_sha256):
            return True
        if (source, body_sha256) in self._receipts_read:
            return (source, body_sha256) in self._receipts_found
        found = await self._bare.scalar(sql.RECEIPT_SEEN, {"source": source, "sha": body_sha256})
        return found is not None

    async def add_receipt(
        self,
        group: AlertGroup,
        *,
        body: str,
        body_sha256: str,
        at: datetime,
        incident_id: int | None,
    ) -> None:
        """Record a webhook receipt."""
        self._held.add_receipt(
            {
                "source": group.source,
                "body_sha256": body_sha256,
                "received_at": at,
                "group_key": group.group_key,
                "alert_count": len(group.alerts),
                "incident_id": incident_id,
                "body": body,
            }
        )

    async def latest_incident(self, key: str) -> Incident | None:
        """The newest incident of a key."""
        if key not in self._latest:
            result = await self._bare.execute(sql.LATEST_INCIDENT, {"key": key})
            row = result.first()
            self._latest[key] = incident_from_row(row) if row else None
            if row is not None:
                self._alerts_resolved_at.setdefault(row.id, row.alerts_resolved_at)
        return self._latest[key]

    async def open_incident(
        self,
        group: AlertGroup,
        *,
        at: datetime,
        auto_resolve: bool,
        severity: Severity | None = None,
        playbook: str | None = None,
        runbook: str | None = None,
        drill: bool = False,
        storm_id: int | None = None,
        replacing: int | None,
    ) -> Incident:
        """Create a triggered incident for a group; it becomes the newest of its key in place of
        `replacing`. Only that one is demoted: an incident another writer opened meanwhile keeps
        the key, and this insert then breaks its uniqueness (StoreConflict: the unit is redone
        and finds it)."""
        if replacing is not None:
            await self._bare.execute(
                update(IncidentRow)
                .where(IncidentRow.id == replacing, IncidentRow.current_key == group.key)
                .values(current_key=None)
            )
        row = IncidentRow(
            key=group.key,
            current_key=group.key,
            source=group.source,
            title=group.title[:500],
            slug_source=group.slug_source[:500],
            severity=(severity or _severity(group.common_labels.get("severity"))).value,
            playbook=playbook,
            runbook=runbook,
            drill=drill,
            storm_id=storm_id,
            status=IncidentStatus.TRIGGERED.value,
            opened_at=at,
            auto_resolve=auto_resolve,
            labels=dict(group.common_labels),
            group_labels=dict(group.group_labels),
            external_url=group.external_url[:1000],
            updated_at=at,
        )
        self._bare.add(row)
        await self._bare.flush()
        opened = self._latest[group.key] = incident_from_row(row)
        self._alerts_resolved_at[opened.id] = None
        return opened

    async def storm_weather(self, since: datetime) -> tuple[StormWeather, int]:
        """How many alert groups were new since `since`, the open storm, and how many storms;
        the transaction holds the storm lock from here to its end (on Postgres)."""
        if self._serialize_storms:
            await self._bare.execute(select(func.pg_advisory_xact_lock(STORM_LOCK)))
        return await storm_weather(self._bare, since, incident_from_row)

    async def storm_groups(self, storm_id: int) -> list[Incident]:
        """The incidents of the alert groups a storm holds, oldest first."""
        rows = await self._bare.scalars(
            select(IncidentRow).where(IncidentRow.storm_id == storm_id).order_by(IncidentRow.id)
        )
        return [incident_from_row(r) for r in rows]

    async def storm_members(self, storm_id: int) -> list[StormMember]:
        """The alert groups a storm holds, with their alerts counted, in the order they joined."""
        return await storm_members(self.session, storm_id)

    async def save_incident(self, incident: Incident, *, at: datetime) -> Incident:
        """Persist the incident's state fields, or raise StoreConflict if someone saved first."""
        result = await self._bare.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident.id, IncidentRow.version == incident.version)
            .values(
                status=incident.status.value,
                severity=incident.severity.value,
                title=incident.title[:500],
                acknowledged_at=incident.acknowledged_at,
                acknowledged_by=incident.acknowledged_by,
                resolved_at=incident.resolved_at,
                resolved_by=incident.resolved_by,
                lead=incident.lead,
                silence_id=incident.silence_id,
                silenced_until=incident.silenced_until,
                silenced_by=incident.silenced_by,
                escalation_policy=incident.escalation_policy,
                escalation_level=incident.escalation_level,
                escalation_round=incident.escalation_round,
                escalation_exhausted_at=incident.escalation_exhausted_at,
                reopened_at=incident.reopened_at,
                storm_id=incident.storm_id,
                flapping_since=incident.flapping_since,
                updated_at=at,
                version=incident.version + 1,
            )
        )
        if getattr(result, "rowcount", 0) != 1:
            raise StoreConflict(f"incident {incident.id} changed meanwhile")
        saved = replace(incident, version=incident.version + 1)
        remembered = self._latest.get(incident.key)
        if remembered is not None and remembered.id == incident.id:
            self._latest[incident.key] = saved
        return saved

    async def alerts_on_record(
        self, incident_id: int, fingerprints: Sequence[str]
    ) -> AlertsOnRecord:
        """The incident's alerts of these fingerprints, and whether any other one fires.

        What this transaction read or wrote of the incident's alerts is not read again."""
        distinct = sorted(set(fingerprints))
        unknown = self._held.unknown(incident_id, distinct)
        if unknown:  # none of them is held: every held alert is known
            read = await self._named_alerts(incident_id, unknown)
            self._held.remember(incident_id, read.values())
            self._held.remember_absent(incident_id, set(unknown) - set(read))
        known = self._held.known.get(incident_id, {})
        named = {fp: known[fp] for fp in distinct if fp in known}
        if self._held.another_firing(incident_id, distinct):
            any_other = other_firing = True
        else:
            await self._held.send_alerts(self._bare)  # the store answers for the held ones too
            any_other, other_firing = await self._other_alerts(incident_id, distinct)
        return AlertsOnRecord(
            named=named, others_firing=other_firing, any_before=bool(named or any_other)
        )

    async def _named_alerts(
        self, incident_id: int, fingerprints: list[str]
    ) -> dict[str, KnownAlert]:
        if len(fingerprints) == 1:
            params: dict[str, Any] = {"incident_id": incident_id, "fingerprint": fingerprints[0]}
            rows = await self._bare.execute(sql.NAMED_ALERT, params)
        elif len(fingerprints) <= sql.IN_LENGTHS[-1]:
            statement, params = sql.among(sql.NAMED_AMONG, fingerprints, "fp")
            rows = await self._bare.execute(statement, {"incident_id": incident_id, **params})
        else:
            params = {"incident_id": incident_id, "fingerprints": fingerprints}
            rows = await self._bare.execute(sql.NAMED_ALERTS, params)
        return {
            fp: KnownAlert(fingerprint=fp, status=AlertStatus(status), starts_at=starts_at)
            for fp, status, starts_at in cast(list[tuple[str, str, datetime]], rows.all())
        }

    async def _other_alerts(self, incident_id: int, fingerprints: list[str]) -> tuple[bool, bool]:
        """(any alert outside these, any firing one outside these)."""
        if len(fingerprints) == 1:
            params: dict[str, Any] = {"incident_id": incident_id, "fingerprint": fingerprints[0]}
            others_sql = sql.OTHER_ALERTS_THAN_ONE
        else:
            params = {"incident_id": incident_id, "fingerprints": fingerprints}
            others_sql = sql.OTHER_ALERTS_THAN_MANY
        found: tuple[Any, ...] = tuple((await self._bare.execute(others_sql, params)).one())
        return bool(found[0]), bool(found[1])

    async def write_alerts(self, incident_id: int, writes: Sequence[AlertWrite]) -> None:
        """Hold new alerts (sent with the transaction's other inserts); update changed ones."""
        rows = [_alert_values(incident_id, w) for w in writes]
        self._held.alerts.extend(r for r, w in zip(rows, writes, strict=True) if w.is_new)
        changed = [
            {f"b_{k}": v for k, v in r.items() if k != "first_seen_at"}
            for r, w in zip(rows, writes, strict=True)
            if not w.is_new
        ]
        if changed:
            await self._held.send_alerts(self._bare)  # an update may be of a held alert
            await self._bare.execute(sql.UPDATE_ALERT, changed)
        self._held.remember(
            incident_id,
            (KnownAlert(w.alert.fingerprint, w.alert.status, w.alert.starts_at) for w in writes),
        )

    async def firing_alerts(self, incident_id: int) -> list[Alert]:
        """The incident's firing alerts, as they were last notified (held ones included)."""
        rows = await self.session.scalars(
            select(AlertRow)
            .where(
                AlertRow.incident_id == incident_id,
                AlertRow.status == AlertStatus.FIRING.value,
            )
            .order_by(AlertRow.id)
        )
        return [
            Alert(
                fingerprint=r.fingerprint,
                status=AlertStatus(r.status),
                labels=dict(r.labels or {}),
                annotations=dict(r.annotations or {}),
                starts_at=r.starts_at,
                ends_at=r.ends_at,
                generator_url=r.generator_url or "",
            )
            for r in rows
        ]

    async def set_alerts_resolved_at(self, incident_id: int, at: datetime | None) -> None:
        """Remember when the last alert resolved (None when one fires again)."""
        if incident_id in self._alerts_resolved_at and self._alerts_resolved_at[incident_id] == at:
            return  # it is so already
        await self._bare.execute(sql.SET_ALERTS_RESOLVED_AT, {"b_id": incident_id, "b_at": at})
        self._alerts_resolved_at[incident_id] = at

    async def count_events(self, incident_id: int, kind: str, since: datetime) -> int:
        """How many timeline events of `kind` the incident had after `since`."""
        found = await self.session.scalar(
            select(func.count())
            .select_from(TimelineEventRow)
            .where(
                TimelineEventRow.incident_id == incident_id,
                TimelineEventRow.kind == kind,
                TimelineEventRow.at > since,
            )
        )
        return int(found or 0)

    async def add_events(self, incident_id: int, events: Sequence[TimelineEvent]) -> None:
        """Append timeline events (held, sent with the transaction's other inserts)."""
        self._held.events.extend(
            {
                "incident_id": incident_id,
                "at": e.at,
                "kind": e.kind,
                "actor": e.actor,
                "text": e.rich.text,
                "refs": e.rich.refs_data(),
                "data": e.data,
            }
            for e in events
        )

    async def declare_incident(
        self, *, title: str, severity: Severity, actor: str, at: datetime
    ) -> Incident:
        """Open an incident a person declared (no alerts behind it)."""
        row = IncidentRow(
            key=f"declared:{uuid.uuid4().hex}",
            source="slack",
            title=title[:500],
            slug_source=title[:500],
            severity=severity.value,
            status=IncidentStatus.TRIGGERED.value,
            opened_at=at,
            auto_resolve=False,
            labels={},
            group_labels={},
            external_url="",
            updated_at=at,
            declared_by=actor,
            lead=actor,
        )
        self.session.add(row)
        await self.session.flush()
        return incident_from_row(row)

    async def get_incident(self, incident_id: int) -> Incident | None:
        """One incident by id."""
        row = await self.session.get(IncidentRow, incident_id, populate_existing=True)
        return incident_from_row(row) if row else None

    async def incident_labels(self, incident_id: int) -> tuple[dict[str, str], dict[str, str]]:
        """The incident's (group labels, common labels)."""
        row = await self.session.get(IncidentRow, incident_id)
        if row is None:
            return {}, {}
        return dict(row.group_labels or {}), dict(row.labels or {})

    async def alerts_started_at(self, incident_id: int) -> datetime | None:
        """When the incident's first alert began firing (the earliest `startsAt`), if any."""
        query = select(func.min(AlertRow.starts_at)).where(AlertRow.incident_id == incident_id)
        started: datetime | None = await self.session.scalar(query)
        return started

    async def recent_incidents(
        self, *, resolved: bool | None, since: datetime | None, limit: int = 200
    ) -> list[Incident]:
        """Incidents newest first: resolved or not (None: both), opened since `since`."""
        query = select(IncidentRow)
        if resolved is not None:
            done = IncidentRow.status == IncidentStatus.RESOLVED.value
            query = query.where(done if resolved else ~done)
        if since is not None:
            query = query.where(IncidentRow.opened_at >= since)
        rows = await self.session.scalars(
            query.order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc()).limit(limit)
        )
        return [incident_from_row(r) for r in rows]

    async def open_incidents(self, limit: int = 50) -> list[Incident]:
        """Incidents not yet resolved, newest first."""
        rows = await self.session.scalars(
            select(IncidentRow)
            .where(IncidentRow.status != IncidentStatus.RESOLVED.value)
            .order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc())
            .limit(limit)
        )
        return [incident_from_row(r) for r in rows]

    async def incident_in_channel(self, channel_id: str) -> Incident | None:
        """The incident whose channel this is."""
        row = await self.session.scalar(
            select(IncidentRow).where(IncidentRow.channel_id == channel_id)
        )
        return incident_from_row(row) if row else None

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        """Every timeline event of an incident, oldest first."""
        rows = await self.session.scalars(
            select(TimelineEventRow)
            .where(TimelineEventRow.incident_id == incident_id)
            .order_by(TimelineEventRow.at, TimelineEventRow.id)
        )
        return [
            TimelineEvent(
                r.kind,
                r.actor,
                r.at,
                Rich(r.text, refs_from_data(r.refs or [])),
                dict(r.data or {}),
            )
            for r in rows
        ]

    async def take_timer(self, timer_id: int, *, now: datetime) -> bool:
        """Take a due timer for this transaction's work (pending, or claimed by a process
        whose claim ran out); False when another has it or it fired."""
        result = await self.session.execute(
            update(TimerRow)
            .where(
                TimerRow.id == timer_id,
                or_(
                    TimerRow.state == "pending",
                    (TimerRow.state == "firing") & (TimerRow.lease_until < now),
                ),
            )
            .values(state="firing")
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def mark_timer_fired(self, timer_id: int, *, at: datetime) -> None:
        """A timer's work is done: it never fires again."""
        await self.session.execute(
            update(TimerRow)
            .where(TimerRow.id == timer_id)
            .values(state="fired", fired_at=at, lease_until=None)
        )

    async def schedule(self, timer: Timer, *, at: datetime) -> None:
        """Add a timer unless one with its idem key exists."""
        await schedule_timers(self._bare, [timer], at=at)

    async def cancel_timers(self, incident_id: int, kind: str) -> int:
        """Cancel an incident's pending timers of a kind; returns how many."""
        result = await self._bare.execute(
            update(TimerRow)
            .where(
                TimerRow.incident_id == incident_id,
                TimerRow.kind == kind,
                TimerRow.state == "pending",
            )
            .values(state="cancelled")
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def overrides(self, rotation: str, now: datetime) -> list[Override]:
        """Overrides of a rotation that have not ended."""
        rows = await self.session.scalars(
            select(OnCallOverrideRow)
            .where(OnCallOverrideRow.rotation == rotation, OnCallOverrideRow.ends_at > now)
            .order_by(OnCallOverrideRow.id)
        )
        return [Override(r.rotation, r.user_id, r.starts_at, r.ends_at) for r in rows]

    async def add_override(self, override: Override, *, by: str, at: datetime) -> None:
        """Record an on-call override."""
        self.session.add(
            OnCallOverrideRow(
                rotation=override.rotation,
                user_id=override.user,
                starts_at=override.starts_at,
                ends_at=override.ends_at,
                created_by=by,
                created_at=at,
            )
        )

    async def enqueue(self, jobs: Sequence[OutboxJob], *, at: datetime) -> int:
        """Add Slack work to the outbox; a pending job with the same coalesce key absorbs one."""
        return await enqueue_jobs(self._bare, jobs, at=at, pending=self._pending_cards)


async def schedule_timers(session: StoreSession, timers: Sequence[Timer], *, at: datetime) -> None:
    """Add each timer unless one with its idem key exists."""
    for timer in timers:
        query = select(TimerRow.id).where(TimerRow.idem_key == timer.idem_key)
        exists = await session.scalar(query)
        if exists is None:
            session.add(
                TimerRow(
                    idem_key=timer.idem_key,
                    kind=timer.kind,
                    incident_id=timer.incident_id,
                    due_at=timer.due_at,
                    payload=dict(timer.payload),
                    state="pending",
                    created_at=at,
                )
            )


async def enqueue_jobs(
    session: StoreSession,
    jobs: Sequence[OutboxJob],
    *,
    at: datetime,
    pending: dict[str, datetime] | None = None,
) -> int:
    """Insert outbox jobs, skipping duplicates by idem key and coalescing by coalesce key; returns
    how many were inserted. A pending job that absorbs one due sooner is brought forward to its
    time. `pending`: coalesce keys this transaction found or made pending, with when that job is
    due, so a job without a payload of its own due no sooner joins it without a look-up."""
    added = 0
    known = pending if pending is not None else {}
    for job in jobs:
        idem_key = job.idem_key
        due = job.not_before or at
        key = job.coalesce_key
        if key is not None:
            if not job.payload and key in known and known[key] <= due:
                continue
            found = (await session.execute(sql.PENDING_BY_COALESCE_KEY, {"key": key})).first()
            if found is not None:
                job_id, found_due = cast(tuple[int, datetime], tuple(found))
                if due < found_due:
                    await session.execute(sql.SET_JOB_DUE, {"b_id": job_id, "b_due": due})
                known[key] = min(due, found_due)
                if job.payload:
                    await session.execute(
                        sql.SET_JOB_PAYLOAD, {"b_id": job_id, "b_payload": dict(job.payload)}
                    )
                continue
            idem_key = f"{idem_key}:{uuid.uuid4().hex}"
        elif await session.scalar(sql.JOB_BY_IDEM_KEY, {"key": idem_key}):
            continue
        await session.execute(
            sql.INSERT_JOB,
            {
                "idem_key": idem_key,
                "kind": job.kind.value,
                "incident_id": job.incident_id,
                "payload": dict(job.payload),
                "coalesce_key": key,
                "state": "pending",
                "attempts": 0,
                "not_before": due,
                "created_at": at,
                "updated_at": at,
                "last_error": job.waiting,
            },
        )
        if key is not None:
            known[key] = due
        added += 1
    return added


def _alert_values(incident_id: int, write: AlertWrite) -> dict[str, Any]:
    alert = write.alert
    return {
        "incident_id": incident_id,
        "fingerprint": alert.fingerprint,
        "name": alert.name[:200],
        "status": alert.status.value,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "generator_url": alert.generator_url,
        "first_seen_at": write.seen_at,
        "last_seen_at": write.seen_at,
    }


class Database:
    """The engine and its sessions. On SQLite, reads run on aiosqlite and writes one at a time
    through SqliteWriters: none of its I/O runs on the event loop."""

    def __init__(self, engine: AsyncEngine, *, lock_wait: float = LOCK_WAIT) -> None:
        self.engine = engine
        self._async_sessions: SessionFactory = create_session_factory(engine)
        self._sqlite = (
            SqliteWriters(engine.url.render_as_string(hide_password=False), lock_wait=lock_wait)
            if is_sqlite(str(engine.url))
            else None
        )
        # Transactions that can usefully write at once: SQLite has one writer; Postgres runs a
        # few side by side (fewer than the pool, which readers and the outbox share).
        self.writers = 1 if self._sqlite else 4

    @asynccontextmanager
    async def sessions(self) -> AsyncIterator[StoreSession]:
        """A session for reading (StoreUnreachable while the database cannot be reached)."""
        with reachable():
            async with self._async_sessions() as session:
                yield cast(StoreSession, session)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[StoreSession]:
        """A session whose transaction commits when the block exits without error."""
        if self._sqlite is not None:
            async with self._sqlite.session() as session:
                yield session
            return
        async with self._async_sessions() as postgres, postgres.begin():
            yield cast(StoreSession, postgres)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlIncidentTransaction]:
        """IncidentStore: one unit of work over incidents, alerts, timeline and outbox."""
        try:
            async with self.session() as session:
                tx = SqlIncidentTransaction(session, serialize_storms=self._sqlite is None)
                yield tx
                await tx.send_held()
        except IntegrityError as exc:
            raise StoreConflict(str(exc.orig)) from exc

    async def run(self, work: Callable[[IncidentTransaction], Coroutine[Any, Any, T]]) -> T:
        """IncidentStore: `work` as one unit of work (see `write`)."""

        async def unit(session: StoreSession) -> T:
            tx = SqlIncidentTransaction(session, serialize_storms=self._sqlite is None)
            result = await work(tx)
            await tx.send_held()
            return result

        try:
            return await self.write(unit)
        except IntegrityError as exc:
            raise StoreConflict(str(exc.orig)) from exc

    async def write(self, work: Callable[[StoreSession], Coroutine[Any, Any, T]]) -> T:
        """`work` in one transaction, committed when it returns. It only reads and writes
        through its session (it awaits nothing else), so on SQLite it runs whole on the store's
        thread: one hand-over, however many statements, and never a statement on the loop."""
        with reachable():  # a restarting Postgres: StoreUnreachable, which callers retry
            if self._sqlite is not None:
                return await self._sqlite.run(work)
            async with self.session() as session:
                return await work(session)

    async def checkpoint_in_background(self, interval: float = CHECKPOINT_INTERVAL) -> None:
        """On a SQLite file, checkpoint the WAL from a thread instead of inside commits (a
        serving process; see bot.store.sqlite.checkpoint). Nothing on Postgres."""
        if self._sqlite is not None:
            await self._sqlite.checkpoint_in_background(self.engine, interval)

    async def dispose(self) -> None:
        """Close every pooled connection (after a last checkpoint, when checkpointing)."""
        if self._sqlite is not None:
            await self._sqlite.dispose()
        await self.engine.dispose()
