"""Alert intake: a notification becomes incident state, timeline and Slack work, atomically."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.alerts import Alert, AlertChange, AlertGroup, merge_alerts
from bot.domain.incidents import (
    Action,
    GroupDecision,
    Incident,
    IncidentStatus,
    TimelineEvent,
    decide_for_group,
    transition,
)
from bot.domain.outbox import (
    JobKind,
    OutboxJob,
    card_update_job,
    note_job,
    open_channel_job,
    parked_until_channel,
)
from bot.domain.playbooks import Playbook, choose_playbook
from bot.ports import AlertWrite, IncidentStore, IncidentTransaction
from bot.services.diagnostics import diagnostics_timer
from bot.services.escalation import EscalationService
from bot.services.group_commit import GroupCommit


@dataclass(frozen=True)
class IngestResult:
    """What a notification did."""

    decision: GroupDecision | None
    incident_id: int | None
    duplicate: bool = False
    changed: int = 0
    # New outbox jobs or timers: the workers have something to look at. A change absorbed by a
    # job already queued (a card update, say) gives them nothing new.
    new_work: bool = False


@dataclass(frozen=True)
class IntakePolicy:
    """The settings intake needs."""

    reopen_window: timedelta
    auto_resolve: bool
    playbooks: Sequence[Playbook] = ()

    def auto_resolve_for(self, playbook: Playbook | None, source: str) -> bool:
        """The playbook decides; otherwise Sentry issues resolve with Sentry, others per config."""
        if playbook is not None and playbook.auto_resolve is not None:
            return playbook.auto_resolve
        return True if source == "sentry" else self.auto_resolve


_CHANGE_TEXT = {
    AlertChange.NEW: "firing",
    AlertChange.REFIRED: "firing again",
    AlertChange.RESOLVED: "resolved",
}


class AlertIntake:
    """Turns alert notifications into incidents; safe to replay and to run concurrently."""

    def __init__(
        self,
        *,
        store: IncidentStore,
        policy: IntakePolicy,
        escalation: EscalationService | None = None,
        commits: GroupCommit | None = None,
    ):
        self.store = store
        self.policy = policy
        self.escalation = escalation
        self.commits = commits or GroupCommit(store)

    async def ingest(self, group: AlertGroup, *, body: str, now: datetime) -> IngestResult:
        """Store the notification and everything it changes atomically; return once committed.

        Notifications that arrive together share a commit (GroupCommit); a conflict with another
        writer that opened the same key or stored the same body first is redone.
        """
        sha = hashlib.sha256(body.encode()).hexdigest()

        async def unit(tx: IncidentTransaction) -> IngestResult:
            return await self._ingest(tx, group, body=body, sha=sha, now=now)

        return await self.commits.run(unit)

    async def _ingest(
        self, tx: IncidentTransaction, group: AlertGroup, *, body: str, sha: str, now: datetime
    ) -> IngestResult:
        if await tx.receipt_seen(group.source, sha):
            return IngestResult(decision=None, incident_id=None, duplicate=True)
        latest = await tx.latest_incident(group.key)
        decision = decide_for_group(
            latest, any_firing=group.any_firing, now=now, reopen_window=self.policy.reopen_window
        )
        if decision is GroupDecision.IGNORE:
            await tx.add_receipt(group, body=body, body_sha256=sha, at=now, incident_id=None)
            return IngestResult(decision=decision, incident_id=None)
        events: list[TimelineEvent] = []
        jobs: list[OutboxJob] = []
        if decision is GroupDecision.OPEN or latest is None:
            incident = await self._open(tx, group, now=now, events=events, jobs=jobs)
        else:
            incident = latest
            if decision is GroupDecision.REOPEN:
                incident = await self._reopen(
                    tx, incident, actor=group.source, now=now, events=events, jobs=jobs
                )
                if self.escalation is not None:
                    incident = await self.escalation.start(
                        tx, incident, labels=group.common_labels, now=now
                    )
        changed = await self._apply_alerts(tx, incident, group, now=now, events=events, jobs=jobs)
        await tx.add_events(incident.id, events)
        if incident.channel_id is None:
            jobs = [
                parked_until_channel(job, now) if job.kind is JobKind.POST_NOTE else job
                for job in jobs
            ]
        added = await tx.enqueue(jobs, at=now)
        await tx.add_receipt(group, body=body, body_sha256=sha, at=now, incident_id=incident.id)
        return IngestResult(
            decision=decision,
            incident_id=incident.id,
            changed=changed,
            # Opening and reopening schedule timers (diagnostics, escalation).
            new_work=added > 0 or decision in (GroupDecision.OPEN, GroupDecision.REOPEN),
        )

    async def _open(
        self,
        tx: IncidentTransaction,
        group: AlertGroup,
        *,
        now: datetime,
        events: list[TimelineEvent],
        jobs: list[OutboxJob],
    ) -> Incident:
        playbook = choose_playbook(self.policy.playbooks, group.common_labels, group.source)
        incident = await tx.open_incident(
            group,
            at=now,
            auto_resolve=self.policy.auto_resolve_for(playbook, group.source),
            severity=playbook.severity if playbook else None,
            playbook=playbook.name if playbook else None,
            runbook=playbook.runbook if playbook else None,
        )
        opened = f"Incident opened: {group.title}" + (
            f" (playbook {playbook.name})" if playbook else ""
        )
        events.append(TimelineEvent("opened", group.source, now, opened))
        jobs.append(open_channel_job(incident.id))
        if playbook is not None and playbook.steps:
            await tx.schedule(diagnostics_timer(incident.id, due=now, reason="opened"), at=now)
        if self.escalation is not None:
            incident = await self.escalation.start(
                tx,
                incident,
                labels=group.common_labels,
                now=now,
                requested=playbook.escalation if playbook else None,
            )
        return incident

    async def _reopen(
        self,
        tx: IncidentTransaction,
        incident: Incident,
        *,
        actor: str,
        now: datetime,
        events: list[TimelineEvent],
        jobs: list[OutboxJob],
    ) -> Incident:
        moved = transition(incident, Action.REOPEN, actor=actor, now=now, note="alert fired again")
        saved = await tx.save_incident(moved.incident, at=now)
        events.extend(moved.events)
        jobs.append(
            note_job(
                incident.id,
                f"reopen:{now.isoformat()}",
                ":rotating_light: Reopened: an alert fired again.",
            )
        )
        return saved

    async def _apply_alerts(
        self,
        tx: IncidentTransaction,
        incident: Incident,
        group: AlertGroup,
        *,
        now: datetime,
        events: list[TimelineEvent],
        jobs: list[OutboxJob],
    ) -> int:
        record = await tx.alerts_on_record(incident.id, [a.fingerprint for a in group.alerts])
        by_change: dict[AlertChange, list[Alert]] = defaultdict(list)
        for alert, change in merge_alerts(record.named, group.alerts):
            by_change[change].append(alert)
        writes = [
            AlertWrite(alert=a, seen_at=now, is_new=change is AlertChange.NEW)
            for change, alerts in by_change.items()
            if change is not AlertChange.UNCHANGED
            for a in alerts
        ]
        if not writes:
            return 0
        await tx.write_alerts(incident.id, writes)
        for change, text in _CHANGE_TEXT.items():
            if by_change.get(change):
                events.append(_alerts_event(change, text, by_change[change], now, group.source))
        if not record.still_firing({w.alert.fingerprint: w.alert.status for w in writes}):
            await self._all_resolved(
                tx, incident, actor=group.source, now=now, events=events, jobs=jobs
            )
        elif record.any_before and (
            by_change.get(AlertChange.REFIRED) or by_change.get(AlertChange.NEW)
        ):
            await tx.set_alerts_resolved_at(incident.id, None)
        if incident.channel_id and (record.any_before or incident.card_ts):
            # Without a channel there is no card yet: the card, posted once the channel is
            # open, shows the alerts as they are then. (Under a storm channels wait minutes for
            # Slack's pace; a card update per webhook meanwhile would be work for nothing.)
            jobs.append(card_update_job(incident.id))
        return len(writes)

    async def _all_resolved(
        self,
        tx: IncidentTransaction,
        incident: Incident,
        *,
        actor: str,
        now: datetime,
        events: list[TimelineEvent],
        jobs: list[OutboxJob],
    ) -> None:
        await tx.set_alerts_resolved_at(incident.id, now)
        events.append(TimelineEvent("alerts_resolved", actor, now, "All alerts resolved"))
        if incident.auto_resolve and incident.status is not IncidentStatus.RESOLVED:
            moved = transition(
                incident, Action.RESOLVE, actor="tocsin", now=now, note="auto-resolve"
            )
            saved = await tx.save_incident(moved.incident, at=now)
            events.extend(moved.events)
            if self.escalation is not None:
                await self.escalation.stop(tx, saved, now=now)
            text = ":white_check_mark: All alerts resolved; incident resolved automatically."
        else:
            text = ":white_check_mark: All alerts resolved. Resolve the incident when you are done."
        jobs.append(note_job(incident.id, f"all_resolved:{now.isoformat()}", text))


def _alerts_event(
    change: AlertChange, text: str, alerts: list[Alert], now: datetime, actor: str
) -> TimelineEvent:
    names = sorted({a.name for a in alerts})
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    count = len(alerts)
    return TimelineEvent(
        kind=f"alerts_{change.value}",
        actor=actor,
        at=now,
        text=f"{count} alert{'s' if count != 1 else ''} {text}: {shown}",
        data={"fingerprints": [a.fingerprint for a in alerts][:100]},
    )
