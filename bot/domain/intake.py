"""What an alert notification changes, decided in one pure step.

`decide()` reads the newest incident of the notification's key, and what it holds of the alerts
the notification names, and says what the notification does: open a new incident (and with
which playbook, severity and auto-resolve), update or reopen the one there is, or nothing (a
notification of no known key that fires nothing; a stale one, that tells a resolved incident
nothing newer than it knows). `changes()` then takes that incident as the store holds it (the
one just opened, or the existing one), the alerts of it the notification names, the
notification and `now`, and returns everything to write: the incident's new state, alert
writes, timeline events, outbox jobs, timers, and whether escalation stops. The service loads,
calls, and applies the result in one transaction; nothing here does I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain.alerts import (
    Alert,
    AlertChange,
    AlertGroup,
    AlertsOnRecord,
    merge_alerts,
    news_of,
)
from bot.domain.archive import archive_timer
from bot.domain.drills import drill_timer, is_drill
from bot.domain.durations import lasted
from bot.domain.escalation import FIRST, Policy, escalating, escalation_timer
from bot.domain.flapping import FLAP_OVER, FlapRule, flap_over_timer, starts_flapping
from bot.domain.incidents import (
    Action,
    GroupDecision,
    Incident,
    IncidentStatus,
    Severity,
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
    outcome_job,
    parked_until_channel,
    person_dm_job,
    topic_update_job,
)
from bot.domain.playbooks import Playbook, choose_playbook
from bot.domain.storms import StormRule
from bot.domain.text import phrase, who
from bot.domain.timers import Timer, diagnostics_timer

# Outcomes told in the alerts channel, in the announcement's thread (and a reopening in the
# incident channel too).
AUTO_RESOLVED = ":white_check_mark: Resolved automatically: every alert resolved."
REOPENED_BY_ALERT = ":rotating_light: Reopened: an alert fired again."

NOBODY_YET = AlertsOnRecord(named={}, others_firing=False, any_before=False)

_CHANGE_TEXT = {
    AlertChange.NEW: "firing",
    AlertChange.REFIRED: "firing again",
    AlertChange.RESOLVED: "resolved",
}


@dataclass(frozen=True)
class IntakeRules:
    """The settings intake decides by."""

    reopen_window: timedelta
    auto_resolve: bool
    playbooks: Sequence[Playbook] = ()
    escalation: Sequence[Policy] | None = None  # None: escalation is not configured
    default_policy: str | None = None
    archive_after: timedelta | None = None  # None: resolved channels stay open
    drill_resolve_after: timedelta | None = None  # None: a drill stays open until resolved
    # A card re-rendered because its alerts changed waits this long, so that the changes of a
    # busy alert group are shown together: from alert changes a card is updated at most once per
    # card_settle, which leaves Slack's chat.update budget (Tier 3, shared by every card and its
    # copies) to the other incidents. A change of state updates it at once.
    card_settle: timedelta = timedelta(0)
    storm: StormRule | None = None  # None: every new alert group opens a channel
    flapping: FlapRule | None = None  # None: every re-fire reopens loudly

    def auto_resolve_for(self, playbook: Playbook | None, source: str) -> bool:
        """The playbook decides; otherwise Sentry issues resolve with Sentry, others per config."""
        if playbook is not None and playbook.auto_resolve is not None:
            return playbook.auto_resolve
        return True if source == "sentry" else self.auto_resolve


@dataclass(frozen=True)
class NewIncident:
    """How to open the incident a notification starts."""

    auto_resolve: bool
    severity: Severity | None
    playbook: Playbook | None
    runbook: str | None = None  # the alert's own `runbook_url`, else the playbook's
    drill: bool = False  # its alerts carry the drill label


@dataclass(frozen=True)
class Decision:
    """What a notification does to the incidents of its key."""

    decision: GroupDecision
    new: NewIncident | None = None  # set when it opens one


@dataclass(frozen=True)
class AlertWrite:
    """One alert to insert (new) or update (changed)."""

    alert: Alert
    seen_at: datetime
    is_new: bool = False


@dataclass(frozen=True)
class Changes:
    """Everything a notification changes about one incident."""

    incident: Incident  # its state after the notification
    save: bool  # the state changed (the store saves it, if nobody saved meanwhile)
    alert_writes: tuple[AlertWrite, ...]
    alerts_resolved_at: tuple[datetime | None] | None  # (value,) to record, None: unchanged
    events: tuple[TimelineEvent, ...]
    jobs: tuple[OutboxJob, ...]
    timers: tuple[Timer, ...]
    stop_escalation: bool


def alerts_runbook(group: AlertGroup) -> str | None:
    """The runbook the alert rule names (`runbook_url`): who wrote the rule knows it best."""
    for alert in group.alerts:
        url = (alert.annotations.get("runbook_url") or "").strip()
        if url.startswith(("https://", "http://")):
            return url
    return None


def decide(
    latest: Incident | None,
    record: AlertsOnRecord,
    group: AlertGroup,
    *,
    now: datetime,
    rules: IntakeRules,
) -> Decision:
    """Open, update, reopen, ignore, or call stale; for an opening, with which playbook.

    `record`: what `latest` holds of the alerts the notification names (NOBODY_YET without one).
    """
    decision = decide_for_group(
        latest, news=news_of(record, group.alerts), now=now, reopen_window=rules.reopen_window
    )
    if decision is not GroupDecision.OPEN:
        return Decision(decision)
    playbook = choose_playbook(rules.playbooks, group.common_labels, group.source)
    return Decision(
        decision,
        NewIncident(
            auto_resolve=rules.auto_resolve_for(playbook, group.source),
            severity=playbook.severity if playbook else None,
            playbook=playbook,
            runbook=alerts_runbook(group) or (playbook.runbook if playbook else None),
            drill=is_drill(group),
        ),
    )


def changes(
    decided: Decision,
    incident: Incident,
    record: AlertsOnRecord,
    group: AlertGroup,
    *,
    now: datetime,
    rules: IntakeRules,
    refires_before: int | None = None,
) -> Changes:
    """What the notification changes about `incident` (just opened when `decided.new`).

    `refires_before`: when the notification fires an alert again, how many re-fires the
    incident had within the flapping window before it (bot.domain.flapping); None otherwise.
    """
    events: list[TimelineEvent] = []
    jobs: list[OutboxJob] = []
    timers: list[Timer] = []
    original = incident
    storm = incident.storm_id  # a storm's group: the storm's channel, card and page are its own
    starts_escalation = False  # opening and reopening page from the first level
    flapping = incident.flapping_since is not None
    if refires_before is not None and rules.flapping is not None:
        if not flapping and starts_flapping(rules.flapping, refires_before):
            incident, flapping = replace(incident, flapping_since=now), True
            events.append(_flapping_event(refires_before + 1, rules.flapping, group, now))
        if flapping:
            timers.append(flap_over_timer(incident.id, now, rules.flapping))
    requested: str | None = None  # a playbook's policy
    if decided.new is not None:
        playbook = decided.new.playbook
        opened = f"Incident opened: {group.title}" + (
            f" (playbook {playbook.name})" if playbook else ""
        )
        if storm is not None:
            opened += f"; folded into alert storm #{storm} (too many new alert groups at once)"
        events.append(TimelineEvent("opened", group.source, now, opened))
        if storm is None:
            jobs.append(open_channel_job(incident.id))
            if playbook is not None and playbook.steps:
                timers.append(diagnostics_timer(incident.id, due=now, reason="opened"))
            starts_escalation, requested = True, playbook.escalation if playbook else None
    elif decided.decision is GroupDecision.REOPEN:
        why = "alert fired again" + (" (flapping: no page, no announcement)" if flapping else "")
        moved = transition(incident, Action.REOPEN, actor=group.source, now=now, note=why)
        incident = moved.incident
        events.extend(moved.events)
        if incident.channel_id is None and storm is None:  # out of a resolved storm: no channel
            jobs.append(open_channel_job(incident.id))
        jobs.append(topic_update_job(incident.id))
        if not flapping:  # a flapping group reopens quietly: its card and topic say so
            jobs += [
                note_job(incident.id, f"reopen:{now.isoformat()}", REOPENED_BY_ALERT),
                outcome_job(incident.id, f"reopen:{now.isoformat()}", phrase(REOPENED_BY_ALERT)),
            ]
        starts_escalation = storm is None and not flapping
    if starts_escalation and rules.drill_resolve_after is not None:
        backstop = drill_timer(incident, rules.drill_resolve_after)  # opened or reopened
        timers += [backstop] if backstop is not None else []
    started = None
    if starts_escalation and rules.escalation is not None:
        started = escalating(
            incident,
            rules.escalation,
            group.common_labels,
            requested=requested,
            default=rules.default_policy,
        )
        incident = started or incident
    incident, alert_events, alert_jobs, writes, resolved_at, stop = _alert_changes(
        incident, record, group, now=now, settle=rules.card_settle
    )
    events += alert_events
    jobs += alert_jobs
    save = incident != original
    if started is not None:
        # The store saves the incident once: the timer's key names the version it will have.
        timers.append(
            escalation_timer(
                replace(incident, version=original.version + 1), FIRST, now, manual=False
            )
        )
    if rules.archive_after is not None and original.is_open and not incident.is_open:
        closing = archive_timer(incident, rules.archive_after)  # resolved automatically
        timers += [closing] if closing is not None else []
    if incident.channel_id is None:
        jobs = [
            parked_until_channel(job, now) if job.kind is JobKind.POST_NOTE else job for job in jobs
        ]
    if storm is not None:  # what changed shows on the storm's card, and only there
        changed = bool(writes) or save or decided.new is not None
        settled = now + rules.card_settle if rules.card_settle else None
        jobs = [card_update_job(storm, not_before=settled)] if changed else []
        timers = [t for t in timers if t.kind == FLAP_OVER]  # its flapping still ends
    return Changes(
        incident=incident,
        save=save,
        alert_writes=tuple(writes),
        alerts_resolved_at=resolved_at,
        events=tuple(events),
        jobs=tuple(jobs),
        timers=tuple(timers),
        stop_escalation=stop,
    )


def _alert_changes(
    incident: Incident,
    record: AlertsOnRecord,
    group: AlertGroup,
    *,
    now: datetime,
    settle: timedelta,
) -> tuple[
    Incident,
    list[TimelineEvent],
    list[OutboxJob],
    list[AlertWrite],
    tuple[datetime | None] | None,
    bool,
]:
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
        return incident, [], [], [], None, False
    events = [
        _alerts_event(change, text, by_change[change], now, group.source)
        for change, text in _CHANGE_TEXT.items()
        if by_change.get(change)
    ]
    jobs: list[OutboxJob] = []
    resolved_at: tuple[datetime | None] | None = None
    stop = False
    if not record.still_firing({w.alert.fingerprint: w.alert.status for w in writes}):
        resolved_at = (now,)
        events.append(TimelineEvent("alerts_resolved", group.source, now, "All alerts resolved"))
        if incident.auto_resolve and incident.status is not IncidentStatus.RESOLVED:
            moved = transition(
                incident, Action.RESOLVE, actor="tocsin", now=now, note="auto-resolve"
            )
            incident = moved.incident
            events.extend(moved.events)
            stop = True
            text = ":white_check_mark: All alerts resolved; incident resolved automatically."
            jobs += [
                topic_update_job(incident.id),
                outcome_job(incident.id, f"auto_resolve:{now.isoformat()}", phrase(AUTO_RESOLVED)),
            ]
        else:
            text = ":white_check_mark: All alerts resolved. Resolve the incident when you are done."
        jobs.append(note_job(incident.id, f"all_resolved:{now.isoformat()}", text))
    elif record.any_before and (AlertChange.REFIRED in by_change or AlertChange.NEW in by_change):
        resolved_at = (None,)
    joined = by_change.get(AlertChange.NEW)
    if joined and record.any_before and incident.channel_id and incident.acknowledged_by:
        jobs += _joined_acknowledged(incident, joined, now)
    if incident.channel_id and (record.any_before or incident.card_ts):
        # Without a channel there is no card yet: the card, posted once the channel is open,
        # shows the alerts as they are then. (Under a storm channels wait minutes for Slack's
        # pace; a card update per webhook meanwhile would be work for nothing.)
        # Alert changes settle (IntakeRules.card_settle); resolving the incident shows at once.
        settled = None if stop or not settle else now + settle
        jobs.append(card_update_job(incident.id, not_before=settled))
    return incident, events, jobs, writes, resolved_at, stop


def _flapping_event(
    refires: int, rule: FlapRule, group: AlertGroup, now: datetime
) -> TimelineEvent:
    within = lasted(now - rule.within, now)
    return TimelineEvent(
        "flapping",
        group.source,
        now,
        f"Flapping: fired again {refires} times within {within}. Until it is calm for "
        f"{within}, a re-fire reopens it quietly (no page, no announcement).",
    )


def _joined_acknowledged(incident: Incident, joined: list[Alert], now: datetime) -> list[OutboxJob]:
    """New alerts in an incident someone acknowledged (its alert group's key reused by another
    failure, say: prometheus/alertmanager#3959): the channel and the acknowledger are told, so
    an acknowledgement never hides what came after it."""
    if incident.status not in (IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED):
        return []
    acknowledger = incident.acknowledged_by or ""
    names = sorted({a.name for a in joined})
    count = len(joined)
    text = phrase(
        f":rotating_light: {count} new alert{'s' if count != 1 else ''} joined this "
        f"acknowledged incident ({', '.join(names[:5])}{'…' if len(names) > 5 else ''}): ",
        who(acknowledger),
        " please take a look.",
    )
    occasion = f"joined:{incident.id}:{now.isoformat()}"
    jobs = [note_job(incident.id, occasion, text)]
    if acknowledger[:1] in ("U", "W"):  # a person (not tocsin or a source)
        jobs.append(person_dm_job(incident.id, acknowledger, page=occasion, label="new alerts"))
    return jobs


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
