"""Alert intake: a notification becomes incident state, timeline and Slack work, atomically."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain.alerts import AlertGroup
from bot.domain.flapping import REFIRED, refires
from bot.domain.incidents import (
    GroupDecision,
    Incident,
    IncidentStatus,
    Severity,
    TimelineEvent,
    severity_from_label,
)
from bot.domain.intake import (
    NOBODY_YET,
    Changes,
    Decision,
    IntakeRules,
    NewIncident,
    changes,
    decide,
)
from bot.domain.outbox import state_changed_jobs
from bot.domain.storms import JOINED, calm_timer, folds, storm_group, worst
from bot.domain.timers import ESCALATE
from bot.ports import IncidentStore, IncidentTransaction, IntakeReads
from bot.services.escalation import EscalationService
from bot.services.group_commit import GroupCommit
from bot.services.state_changes import state_changed

log = logging.getLogger(__name__)


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
    escalates: bool = False  # an escalation timer was scheduled
    # The incident's state before (None: opened now) and after, when the notification moved it.
    moved: tuple[IncidentStatus | None, IncidentStatus] | None = None
    storm: int | None = None  # the storm incident a new alert group was folded into
    storm_opened: bool = False  # and it was opened by this notification
    flapping: bool = False  # the notification made its alert group flap (bot.domain.flapping)


class AlertIntake:
    """Turns alert notifications into incidents; safe to replay and to run concurrently."""

    def __init__(
        self,
        *,
        store: IncidentStore,
        rules: IntakeRules,
        escalation: EscalationService | None = None,
        commits: GroupCommit | None = None,
    ):
        self.store = store
        self.escalation = escalation
        self.rules = (
            replace(
                rules,
                escalation=tuple(escalation.policies.values()),
                default_policy=escalation.default_policy,
            )
            if escalation is not None
            else rules
        )
        self.commits = commits or GroupCommit(store)

    async def ingest(self, group: AlertGroup, *, body: str, now: datetime) -> IngestResult:
        """Store the notification and everything it changes atomically; return once committed.

        Notifications that arrive together share a commit (GroupCommit); a conflict with another
        writer that opened the same key or stored the same body first is redone.
        """
        sha = hashlib.sha256(body.encode()).hexdigest()

        async def unit(tx: IncidentTransaction) -> IngestResult:
            return await self._ingest(tx, group, body=body, sha=sha, now=now)

        reads = IntakeReads(
            group.source, sha, group.key, tuple(a.fingerprint for a in group.alerts)
        )
        result = await self.commits.run(unit, reads=reads)
        if result.escalates and self.escalation is not None:
            self.escalation.on_scheduled()
        if result.moved is not None and result.incident_id is not None:
            state_changed(result.incident_id, *result.moved, actor=group.source)
        return result

    async def _ingest(
        self, tx: IncidentTransaction, group: AlertGroup, *, body: str, sha: str, now: datetime
    ) -> IngestResult:
        """Load, decide (bot.domain.intake), apply."""
        if await tx.receipt_seen(group.source, sha):
            return IngestResult(decision=None, incident_id=None, duplicate=True)
        latest = await tx.latest_incident(group.key)
        fingerprints = [a.fingerprint for a in group.alerts]
        record = (
            NOBODY_YET if latest is None else await tx.alerts_on_record(latest.id, fingerprints)
        )
        decided = decide(latest, record, group, now=now, rules=self.rules)
        if decided.decision in (GroupDecision.IGNORE, GroupDecision.STALE):
            # A stale notification (a late peer's, a retry's) is on the log line and the
            # receipt, not the timeline: it changed nothing.
            held = latest.id if latest is not None else None  # None when ignored
            await tx.add_receipt(group, body=body, body_sha256=sha, at=now, incident_id=held)
            return IngestResult(decision=decided.decision, incident_id=held)
        new = decided.new
        storm: Incident | None = None
        storm_opened = False
        if new is not None:
            storm, storm_opened = await self._storm_for(tx, group, new, now=now)
            incident = await tx.open_incident(
                group,
                at=now,
                auto_resolve=new.auto_resolve,
                severity=new.severity,
                playbook=new.playbook.name if new.playbook else None,
                runbook=new.runbook,
                drill=new.drill,
                storm_id=storm.id if storm is not None else None,
                replacing=latest.id if latest is not None else None,
            )
            record = NOBODY_YET
        else:
            assert latest is not None  # decide() opens an incident whenever there is none
            incident = await self._out_of_a_resolved_storm(tx, latest, decided.decision, now)
        before = None if new is not None else incident.status
        refires_before = None
        flap = self.rules.flapping
        if flap is not None and new is None and refires(record, group):
            refires_before = await tx.count_events(incident.id, REFIRED, now - flap.within)
        planned = changes(
            decided,
            incident,
            record,
            group,
            now=now,
            rules=self.rules,
            refires_before=refires_before,
        )
        after = planned.incident.status
        added = await self._apply(tx, incident, planned, now=now)
        await tx.add_receipt(group, body=body, body_sha256=sha, at=now, incident_id=incident.id)
        return IngestResult(
            decision=decided.decision,
            incident_id=incident.id,
            changed=len(planned.alert_writes),
            # Opening and reopening schedule timers (diagnostics, escalation).
            new_work=added > 0 or bool(planned.timers) or storm is not None,
            escalates=any(t.kind == ESCALATE for t in planned.timers) or storm is not None,
            storm=storm.id if storm is not None else None,
            storm_opened=storm_opened,
            flapping=incident.flapping_since is None
            and planned.incident.flapping_since is not None,
            moved=(before, after) if before is not after else None,
        )

    async def _out_of_a_resolved_storm(
        self, tx: IncidentTransaction, incident: Incident, decision: GroupDecision, now: datetime
    ) -> Incident:
        """A storm's group that fires again once its storm is resolved leaves it: it reopens as
        an incident of its own (a channel, a page), nobody being left to look at the storm."""
        if decision is not GroupDecision.REOPEN or incident.storm_id is None:
            return incident
        storm = await tx.get_incident(incident.storm_id)
        if storm is not None and storm.is_open:
            return incident
        note = f"Left alert storm #{incident.storm_id} (resolved) when it fired again"
        await tx.add_events(incident.id, [TimelineEvent("storm_left", "tocsin", now, note)])
        return replace(incident, storm_id=None)

    async def _storm_for(
        self, tx: IncidentTransaction, group: AlertGroup, new: NewIncident, *, now: datetime
    ) -> tuple[Incident | None, bool]:
        """The storm a new alert group joins, and whether it opened now (it starts one); None
        when the group opens a channel of its own (bot.domain.storms)."""
        rule = self.rules.storm
        if rule is None or new.drill:
            return None, False
        weather, storms = await tx.storm_weather(now - rule.within)
        if not folds(rule, weather, now):
            return None, False
        severity = new.severity or severity_from_label(group.common_labels.get("severity"))
        storm = weather.storm
        opened = storm is None
        if storm is None:
            storm = await self._open_storm(tx, storm_group(storms + 1, group), severity, now=now)
        elif worst(storm.severity, severity) is not storm.severity:
            await tx.save_incident(replace(storm, severity=severity), at=now)
            await tx.enqueue(state_changed_jobs(storm.id), at=now)
        joined = TimelineEvent(JOINED, group.source, now, f"Joined: {group.title}")
        await tx.add_events(storm.id, [joined])
        await tx.schedule(calm_timer(storm.id, now, rule), at=now)
        return storm, opened

    async def _open_storm(
        self, tx: IncidentTransaction, group: AlertGroup, severity: Severity, *, now: datetime
    ) -> Incident:
        """Open a storm incident: a channel, a card and a page, as any opening has."""
        decided = Decision(
            GroupDecision.OPEN, NewIncident(auto_resolve=False, severity=severity, playbook=None)
        )
        storm = await tx.open_incident(
            group, at=now, auto_resolve=False, severity=severity, replacing=None
        )
        planned = changes(decided, storm, NOBODY_YET, group, now=now, rules=self.rules)
        await self._apply(tx, storm, planned, now=now)
        log.warning(
            "alert storm: %s opened as incident %s; new alert groups join it",
            group.title,
            storm.id,
            extra={"incident": storm.id},
        )
        return storm

    async def observed(
        self, tx: IncidentTransaction, incident: Incident, group: AlertGroup, *, now: datetime
    ) -> bool:
        """Apply what Tocsin learned of `incident`'s alerts without a notification (the
        resolutions a silence held back), decided and written as the notification would be;
        True when it changed an alert. A notification of the same later changes nothing."""
        record = await tx.alerts_on_record(incident.id, [a.fingerprint for a in group.alerts])
        decided = decide(incident, record, group, now=now, rules=self.rules)
        if decided.decision is not GroupDecision.UPDATE:
            return False
        planned = changes(decided, incident, record, group, now=now, rules=self.rules)
        await self._apply(tx, incident, planned, now=now)
        return bool(planned.alert_writes)

    async def _apply(
        self, tx: IncidentTransaction, incident: Incident, planned: Changes, *, now: datetime
    ) -> int:
        """Write what the domain decided; how many outbox jobs are new."""
        saved = planned.incident
        if planned.save:
            saved = await tx.save_incident(planned.incident, at=now)
        if planned.alert_writes:
            await tx.write_alerts(incident.id, planned.alert_writes)
        if planned.alerts_resolved_at is not None:
            await tx.set_alerts_resolved_at(incident.id, planned.alerts_resolved_at[0])
        if planned.stop_escalation and self.escalation is not None:
            await self.escalation.stop(tx, saved, now=now)
        await tx.add_events(incident.id, planned.events)
        for timer in planned.timers:
            await tx.schedule(timer, at=now)
        return await tx.enqueue(planned.jobs, at=now)
