"""Incident use-cases people drive from Slack: declare, acknowledge, resolve, annotate, list."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.domain.archive import ARCHIVED, archive_timer
from bot.domain.drills import drill_timer
from bot.domain.incidents import (
    Action,
    Incident,
    IncidentStatus,
    Severity,
    TimelineEvent,
    transition,
)
from bot.domain.listing import IncidentQuery, Listed
from bot.domain.outbox import (
    OutboxJob,
    card_update_job,
    note_job,
    open_channel_job,
    outcome_job,
    state_changed_jobs,
)
from bot.domain.storms import is_storm_key
from bot.domain.text import Rich, phrase, who
from bot.domain.timers import Timer
from bot.errors import InvalidTransition, StoreConflict, UserError
from bot.ports import IncidentStore, IncidentTransaction
from bot.services.escalation import EscalationService
from bot.services.state_changes import state_changed

log = logging.getLogger(__name__)
T = TypeVar("T")
# What a storm does to its groups when a person does it to the storm.
STORM_WIDE = (Action.ACKNOWLEDGE, Action.MITIGATE, Action.RESOLVE)
ATTEMPTS = 5


@dataclass(frozen=True)
class Outcome:
    """What an action did: the incident as it is now and a line for the person who asked."""

    incident: Incident
    message: Rich | str


class NotFound(UserError):
    """The incident does not exist or this is not an incident channel."""


async def in_transaction(
    store: IncidentStore,
    work: Callable[[IncidentTransaction], Coroutine[Any, Any, T]],
    *,
    attempts: int = ATTEMPTS,
) -> T:
    """Run a unit of work, redoing it when a concurrent writer changed the same incident."""
    for attempt in range(attempts):
        try:
            return await store.run(work)
        except StoreConflict:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class IncidentService:
    """Use-cases over incidents; each call is one transaction with its timeline and Slack work."""

    def __init__(
        self,
        *,
        store: IncidentStore,
        now: Callable[[], datetime],
        escalation: EscalationService,
        archive_after: timedelta | None = None,
        drill_resolve_after: timedelta | None = None,
    ) -> None:
        self.store = store
        self.now = now
        self.escalation = escalation
        self.archive_after = archive_after  # None: resolved channels stay open
        self.drill_resolve_after = drill_resolve_after  # None: drills stay open until resolved

    async def declare(self, title: str, severity: Severity, *, actor: str) -> Incident:
        """Open an incident by hand; it gets a channel like an alert does."""

        async def work(tx: IncidentTransaction) -> Incident:
            now = self.now()
            incident = await tx.declare_incident(
                title=title, severity=severity, actor=actor, at=now
            )
            await tx.add_events(
                incident.id,
                [
                    TimelineEvent(
                        "declared", actor, now, phrase("Declared by ", who(actor), f": {title}")
                    )
                ],
            )
            await tx.enqueue([open_channel_job(incident.id)], at=now)
            return await self.escalation.start(tx, incident, labels={}, now=now)

        declared = await in_transaction(self.store, work)
        state_changed(declared.id, None, declared.status, actor=actor)
        return declared

    async def in_channel(self, channel_id: str) -> Incident:
        """The incident of a channel, or NotFound."""
        incident = await in_transaction(self.store, lambda tx: tx.incident_in_channel(channel_id))
        if incident is None:
            raise NotFound("This is not an incident channel. Run it in the incident's channel.")
        return incident

    async def get(self, incident_id: int) -> Incident:
        """An incident by id, or NotFound."""
        incident = await in_transaction(self.store, lambda tx: tx.get_incident(incident_id))
        if incident is None:
            raise NotFound(f"Incident #{incident_id} does not exist.")
        return incident

    async def act(
        self, incident_id: int, action: Action, *, actor: str, note: Rich | str = ""
    ) -> Outcome:
        """Acknowledge, mitigate, resolve or reopen; a stale action is explained, not applied."""

        before: list[IncidentStatus] = []

        async def work(tx: IncidentTransaction) -> Outcome | InvalidTransition:
            incident = await _load(tx, incident_id)
            before[:] = [incident.status]  # a redone transaction reads it again
            return await self.apply(tx, incident, action, actor=actor, note=note)

        result = await in_transaction(self.store, work)
        if isinstance(result, InvalidTransition):
            raise result
        state_changed(incident_id, before[0], result.incident.status, actor=actor)
        return result

    async def apply(
        self,
        tx: IncidentTransaction,
        incident: Incident,
        action: Action,
        *,
        actor: str,
        note: Rich | str = "",
    ) -> Outcome | InvalidTransition:
        """`act` within a transaction: the state, timeline, escalation, archive timer and Slack
        work of one action; a refusal is returned (and logged), not raised."""
        now = self.now()
        if action is Action.REOPEN and await _archived(tx, incident):
            log.info("incident %s: reopen by %s refused: archived", incident.id, actor)
            return InvalidTransition(
                f"Incident #{incident.id}'s channel is archived, so it stays resolved. "
                "If it is happening again, declare a new incident: `/incident declare`."
            )
        try:
            moved = transition(incident, action, actor=actor, now=now, note=note)
        except InvalidTransition as refused:
            # Told to the person and logged; the timeline records what happened only. An
            # acknowledgement that lost to a resolution did happen: someone responded.
            log.info("incident %s: %s by %s refused: %s", incident.id, action, actor, refused)
            if action is Action.ACKNOWLEDGE and incident.status is IncidentStatus.RESOLVED:
                await tx.add_events(incident.id, [_late_ack(actor, now)])
            return refused
        saved = await tx.save_incident(moved.incident, at=now)
        await tx.add_events(incident.id, moved.events)
        jobs: list[OutboxJob] = state_changed_jobs(incident.id)
        if action in (Action.ACKNOWLEDGE, Action.RESOLVE):
            await self.escalation.stop(tx, saved, now=now)
        if action is Action.REOPEN:
            saved = await self.escalation.start(tx, saved, labels={}, now=now)
        for timer in self._timers(saved, action):
            await tx.schedule(timer, at=now)
        if is_storm_key(incident.key) and action in STORM_WIDE:
            await self._storm_groups(tx, incident, action, actor=actor, now=now)
        said = moved.events[0].rich
        jobs.append(note_job(incident.id, f"{action.value}:{saved.version}", said))
        jobs.append(outcome_job(incident.id, f"{action.value}:{saved.version}", said))
        await tx.enqueue(jobs, at=now)
        return Outcome(saved, moved.events[0].text)

    async def _storm_groups(
        self, tx: IncidentTransaction, storm: Incident, action: Action, *, actor: str, now: datetime
    ) -> None:
        """Acknowledging, mitigating or resolving a storm does the same to each of its groups
        that can take it (a group resolved already stays as it is)."""
        for group in await tx.storm_groups(storm.id):
            try:
                moved = transition(
                    group, action, actor=actor, now=now, note=f"with storm #{storm.id}"
                )
            except InvalidTransition:
                continue
            await tx.save_incident(moved.incident, at=now)
            await tx.add_events(group.id, moved.events)

    def _timers(self, saved: Incident, action: Action) -> list[Timer]:
        """A resolve's channel archive; a reopened drill's backstop."""
        if action is Action.RESOLVE and self.archive_after is not None:
            timer = archive_timer(saved, self.archive_after)
        elif action is Action.REOPEN and self.drill_resolve_after is not None:
            timer = drill_timer(saved, self.drill_resolve_after)
        else:
            timer = None
        return [timer] if timer is not None else []

    async def update_fields(
        self,
        incident_id: int,
        *,
        actor: str,
        kind: str,
        text: Rich | str,
        unchanged: str = "Nothing to change.",
        **changes: object,
    ) -> Outcome:
        """Change severity, lead or title, with a timeline entry and a card update; a change
        to what already is is refused with `unchanged` (a UserError) and recorded nowhere."""

        async def work(tx: IncidentTransaction) -> Outcome:
            now = self.now()
            incident = await _load(tx, incident_id)
            changed = replace(incident, **changes)  # type: ignore[arg-type]
            if changed == incident:
                raise UserError(unchanged)
            saved = await tx.save_incident(changed, at=now)
            await tx.add_events(incident.id, [TimelineEvent(kind, actor, now, text)])
            jobs = [
                *state_changed_jobs(incident.id),
                note_job(incident.id, f"{kind}:{saved.version}", text),
            ]
            await tx.enqueue(jobs, at=now)
            return Outcome(saved, text)

        return await in_transaction(self.store, work)

    async def split(self, storm_id: int, group_id: int, *, actor: str) -> Outcome:
        """Turn one alert group of a storm into an incident of its own: its channel and card
        are made as for any opening, and its timeline goes with it."""

        async def work(tx: IncidentTransaction) -> Outcome:
            now = self.now()
            storm = await _load(tx, storm_id)
            group = await _load(tx, group_id)
            if group.storm_id != storm.id:
                raise UserError(
                    f"Incident #{group_id} is not an alert group of this storm. The storm's "
                    "card numbers its groups: `/incident split <number>`."
                )
            saved = await tx.save_incident(replace(group, storm_id=None), at=now)
            said = phrase(f"#{group.id} {group.title} split out of the storm by ", who(actor))
            own = phrase(f"Split out of alert storm #{storm.id} by ", who(actor))
            await tx.add_events(storm.id, [TimelineEvent("storm_split", actor, now, said)])
            await tx.add_events(group.id, [TimelineEvent("storm_split", actor, now, own)])
            jobs = [
                open_channel_job(group.id),
                card_update_job(storm.id),
                note_job(storm.id, f"split:{group.id}", said),
            ]
            await tx.enqueue(jobs, at=now)
            return Outcome(saved, said)

        return await in_transaction(self.store, work)

    async def record(
        self,
        incident_id: int,
        *,
        actor: str,
        kind: str,
        text: Rich | str,
        jobs: tuple[OutboxJob, ...] = (),
    ) -> None:
        """Add a timeline entry (a note, an update, a refusal) and any Slack work it needs."""

        async def work(tx: IncidentTransaction) -> None:
            now = self.now()
            await tx.add_events(incident_id, [TimelineEvent(kind, actor, now, text)])
            if jobs:
                await tx.enqueue(list(jobs), at=now)

        await in_transaction(self.store, work)

    async def timeline(self, incident_id: int) -> list[TimelineEvent]:
        """The incident's timeline, oldest first."""
        return await in_transaction(self.store, lambda tx: tx.timeline(incident_id))

    async def listed(self, query: IncidentQuery, limit: int = 30) -> list[Incident]:
        """The incidents a list shows, newest first."""
        now = self.now()
        resolved = {Listed.OPEN: False, Listed.RESOLVED: True, Listed.ALL: None}[query.states]
        since = now - query.since if query.since is not None else None
        found = await in_transaction(
            self.store, lambda tx: tx.recent_incidents(resolved=resolved, since=since)
        )
        return [i for i in found if query.matches(i, now)][:limit]

    async def open_incidents(self) -> list[Incident]:
        """Open incidents, newest first."""
        return await in_transaction(self.store, lambda tx: tx.open_incidents())


async def _archived(tx: IncidentTransaction, incident: Incident) -> bool:
    """True when the incident's channel was archived (its timeline says so)."""
    if incident.status is not IncidentStatus.RESOLVED or not incident.channel_id:
        return False
    return any(event.kind == ARCHIVED for event in await tx.timeline(incident.id))


async def _load(tx: IncidentTransaction, incident_id: int) -> Incident:
    incident = await tx.get_incident(incident_id)
    if incident is None:
        raise NotFound(f"Incident #{incident_id} does not exist.")
    return incident


def _late_ack(actor: str, now: datetime) -> TimelineEvent:
    """Someone acknowledged an incident that had just been resolved: they did respond."""
    text = phrase("Acknowledged by ", who(actor), " after it was resolved")
    return TimelineEvent("ack_after_resolve", actor, now, text)
