"""Escalation: page level after level until someone acknowledges, on durable timers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from bot.domain.contacts import CONTACT_STEP, People, plan_page, service_event_job
from bot.domain.escalation import (
    FIRST,
    SERVICES,
    Policy,
    Step,
    Target,
    TargetKind,
    escalating,
    escalation_timer,
    exhausted_step,
    next_step,
    service_label,
    services_paged,
)
from bot.domain.incidents import Incident, IncidentStatus, TimelineEvent
from bot.domain.oncall import Rotation, on_call_at
from bot.domain.outbox import (
    JobKind,
    OutboxJob,
    card_update_job,
    note_job,
    outcome_job,
    state_changed_jobs,
)
from bot.domain.text import Rich, everyone, join, phrase, user, usergroup, who
from bot.domain.timers import ESCALATE, DueTimer
from bot.errors import InvalidTransition, UserError
from bot.ports import IncidentStore, IncidentTransaction

ACTOR = "tocsin"


class EscalationService:
    """Starts, advances and stops escalation; every step is a timer row, fired exactly once."""

    def __init__(
        self,
        *,
        store: IncidentStore,
        policies: Sequence[Policy],
        default_policy: str | None,
        rotations: Mapping[str, Rotation],
        now: Callable[[], datetime],
        on_scheduled: Callable[[], None] = lambda: None,
        last_resort: Sequence[Target] = (),
        people: People | None = None,
    ) -> None:
        self.store = store
        self.people = people or People()  # contact methods and notification rules
        self.last_resort = tuple(last_resort)  # for policies that name none
        self.policies = {p.name: p for p in policies}
        self.default_policy = default_policy
        self.rotations = rotations
        self.now = now
        self.on_scheduled = on_scheduled

    async def start(
        self,
        tx: IncidentTransaction,
        incident: Incident,
        *,
        labels: Mapping[str, str],
        now: datetime,
        requested: str | None = None,
    ) -> Incident:
        """Choose the incident's policy and page its first level now."""
        started = escalating(
            incident,
            list(self.policies.values()),
            labels,
            requested=requested,
            default=self.default_policy,
        )
        if started is None:
            return incident
        saved = await tx.save_incident(started, at=now)
        await tx.schedule(escalation_timer(saved, FIRST, now, manual=False), at=now)
        self.on_scheduled()
        return saved

    async def stop(self, tx: IncidentTransaction, incident: Incident, *, now: datetime) -> None:
        """No more pages for this incident (acknowledged or resolved); the paging services it
        reached are told."""
        await tx.cancel_timers(incident.id, CONTACT_STEP)  # the later steps of people's rules
        policy = self.policies.get(incident.escalation_policy or "")
        action = {IncidentStatus.ACKNOWLEDGED: "acknowledge", IncidentStatus.RESOLVED: "resolve"}
        if policy is not None and incident.status in action:
            jobs = [
                service_event_job(
                    incident.id, incident.version, t.kind.value, t.ref, action[incident.status]
                )
                for t in services_paged(policy, incident)
            ]
            await tx.enqueue(jobs, at=now)
        if await tx.cancel_timers(incident.id, ESCALATE):
            await tx.add_events(
                incident.id, [TimelineEvent("escalation_stopped", ACTOR, now, "Escalation stopped")]
            )

    async def escalate(self, incident_id: int, *, actor: str) -> Rich:
        """Page the next level now (a person pressed Escalate); the line to show them."""

        async def work(tx: IncidentTransaction) -> Rich:
            incident = await tx.get_incident(incident_id)
            if incident is None:
                raise UserError(f"Incident #{incident_id} does not exist.")
            return await self.escalate_now(tx, incident, actor=actor)

        return await self.store.run(work)

    async def escalate_now(
        self, tx: IncidentTransaction, incident: Incident, *, actor: str
    ) -> Rich:
        """Page the next level at once (the Escalate button); returns a line for the person."""
        now = self.now()
        if incident.status is IncidentStatus.RESOLVED:
            raise InvalidTransition("Incident is resolved; reopen it before escalating.")
        policy = self.policies.get(incident.escalation_policy or "")
        if policy is None:
            raise UserError("This incident has no escalation policy; add one in tocsin.yml.")
        current = Step(incident.escalation_level, incident.escalation_round)
        step = next_step(policy, current)
        if step is None:
            raise UserError(f"Already at the last escalation level ({current.label}).")
        await tx.cancel_timers(incident.id, ESCALATE)
        await tx.schedule(escalation_timer(incident, step, now, manual=True), at=now)
        text = phrase("Escalated by ", who(actor), f" to {step.label}")
        await tx.add_events(incident.id, [TimelineEvent("escalate", actor, now, text)])
        await tx.enqueue([outcome_job(incident.id, f"escalate:v{incident.version}", text)], at=now)
        self.on_scheduled()
        return text

    async def fire(self, tx: IncidentTransaction, timer: DueTimer) -> None:
        """Page the timer's level and schedule the next one, all in the caller's transaction."""
        now = self.now()
        incident = await tx.get_incident(timer.incident_id or 0)
        if incident is None or incident.status is IncidentStatus.RESOLVED:
            return
        manual = bool(timer.payload.get("manual"))
        if not manual and incident.status is not IncidentStatus.TRIGGERED:
            return
        policy = self.policies.get(incident.escalation_policy or "")
        step = Step(int(timer.payload.get("level", 0)), int(timer.payload.get("round", 0)))
        if policy is None:
            return
        if step.level >= len(policy.levels):
            if incident.status is IncidentStatus.TRIGGERED and not incident.escalation_exhausted_at:
                await self._exhausted(tx, incident, policy, step, now)
            return
        users, groups = await self._targets(tx, policy, step, now)
        services = [t for t in policy.levels[step.level].targets if t.kind in SERVICES]
        saved = await tx.save_incident(
            replace(incident, escalation_level=step.level, escalation_round=step.round), at=now
        )
        paged = _paged_event(step, users, groups, now, services)
        await tx.add_events(incident.id, [paged])
        following = next_step(policy, step)
        notify = _notify_job(saved, step, users, groups, following, services=services)
        jobs = [*await self._reach(tx, notify, users, now), card_update_job(incident.id)]
        jobs += _triggers(saved, services)
        if step != FIRST:  # the first level is the announcement's own news
            jobs.append(outcome_job(incident.id, f"paged:v{saved.version}", paged.rich))
        await tx.enqueue(jobs, at=now)
        if saved.status is IncidentStatus.TRIGGERED:
            await self._schedule_next(tx, saved, policy, step, following, now)

    async def _schedule_next(
        self,
        tx: IncidentTransaction,
        incident: Incident,
        policy: Policy,
        step: Step,
        following: Step | None,
        now: datetime,
    ) -> None:
        due = now + policy.levels[step.level].timeout
        after = following if following is not None else exhausted_step(policy, step)
        await tx.schedule(escalation_timer(incident, after, due, manual=False), at=now)

    async def _exhausted(
        self, tx: IncidentTransaction, incident: Incident, policy: Policy, step: Step, now: datetime
    ) -> None:
        """The last level's time ran out unacknowledged: say so loudly, in the channel and the
        alerts channel, and page the last resort."""
        saved = await tx.save_incident(replace(incident, escalation_exhausted_at=now), at=now)
        targets = policy.last_resort or self.last_resort
        users, groups = await self._people(tx, targets, now)
        services = [t for t in targets if t.kind in SERVICES]
        named = join([user(u) for u in users] + [usergroup(g) for g in groups])
        text = phrase(
            f":sos: Escalation exhausted: policy {policy.name} ran out of levels and nobody "
            "acknowledged. ",
            named if users or groups else everyone(),
            ", please take this incident.",
        )
        event = TimelineEvent("escalation_exhausted", ACTOR, now, text)
        await tx.add_events(incident.id, [event])
        jobs = [
            *state_changed_jobs(incident.id),
            note_job(incident.id, f"exhausted:v{saved.version}", text),
            outcome_job(incident.id, f"exhausted:v{saved.version}", text),
        ]
        if users or groups:
            notify = _notify_job(saved, step, users, groups, None, label="last resort")
            jobs += await self._reach(tx, notify, users, now)
        jobs += _triggers(saved, services)
        await tx.enqueue(jobs, at=now)

    async def _reach(
        self, tx: IncidentTransaction, notify: OutboxJob, users: list[str], now: datetime
    ) -> list[OutboxJob]:
        """The page (`notify`) and each person's rule: the Slack DM for those whose rule
        starts with it, the other methods due now, and timers for the later steps."""
        label = str(notify.payload["label"])
        incident_id = notify.incident_id or 0
        plan = plan_page(self.people, incident_id, notify.idem_key, users, label, now)
        for timer in plan.timers:
            await tx.schedule(timer, at=now)
        if plan.timers:
            self.on_scheduled()
        notify = replace(notify, payload={**notify.payload, "dm": list(plan.dm_now)})
        return [notify, *plan.jobs]

    async def _targets(
        self, tx: IncidentTransaction, policy: Policy, step: Step, now: datetime
    ) -> tuple[list[str], list[str]]:
        return await self._people(tx, policy.levels[step.level].targets, now)

    async def _people(
        self, tx: IncidentTransaction, targets: Sequence[Target], now: datetime
    ) -> tuple[list[str], list[str]]:
        """The users and user groups `targets` name now (a rotation: who is on call)."""
        users: list[str] = []
        groups: list[str] = []
        for target in targets:
            if target.kind is TargetKind.USER:
                users.append(target.ref)
            elif target.kind is TargetKind.USERGROUP:
                groups.append(target.ref)
            elif (rotation := self.rotations.get(target.ref)) is not None:
                person = on_call_at(rotation, now, await tx.overrides(rotation.name, now))
                if person:
                    users.append(person)
        return list(dict.fromkeys(users)), groups


def _triggers(incident: Incident, services: Sequence[Target]) -> list[OutboxJob]:
    """Tell each paging service of a level of the incident."""
    return [
        service_event_job(incident.id, incident.version, t.kind.value, t.ref, "trigger")
        for t in services
    ]


def _paged_event(
    step: Step, users: list[str], groups: list[str], now: datetime, services: Sequence[Target] = ()
) -> TimelineEvent:
    named = [user(u) for u in users] + [usergroup(g) for g in groups]
    paged = join([*named, *(service_label(t.kind.value, t.ref) for t in services)]) or "nobody"
    return TimelineEvent(
        "paged",
        ACTOR,
        now,
        phrase(f"Paging {step.label}: ", paged),
        {"users": users, "usergroups": groups},
    )


def _notify_job(
    incident: Incident,
    step: Step,
    users: list[str],
    groups: list[str],
    following: Step | None,
    *,
    label: str | None = None,
    services: Sequence[Target] = (),
) -> OutboxJob:
    return OutboxJob(
        kind=JobKind.NOTIFY,
        idem_key=f"notify:{incident.id}:v{incident.version}",
        incident_id=incident.id,
        payload={
            "users": users,
            "usergroups": groups,
            "label": label or step.label,
            "level": step.level,
            "round": step.round,
            "then": following.label if following else None,
            "services": [service_label(t.kind.value, t.ref) for t in services],
        },
    )
