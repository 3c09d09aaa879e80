"""Closing a resolved incident's channel: when, with which last word, and only if still resolved.

Resolving schedules a timer at `resolved_at + archive_after`, keyed by that resolution; when it
fires the incident must still be resolved, by that same resolution (a reopen, or a reopen and a
new resolve, leaves the old timer with nothing to do: the new resolution has its own).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.domain.durations import lasted
from bot.domain.incidents import Incident, IncidentStatus, TimelineEvent
from bot.domain.outbox import JobKind, OutboxJob
from bot.domain.text import Piece, Rich, phrase, who
from bot.domain.timers import ARCHIVE, Timer

ARCHIVED = "channel_archived"  # the timeline kind of the archive
ARCHIVED_TEXT = "Channel archived"
# Timeline kinds worth a word in the summary, with how the summary counts them.
_COUNTED = (
    ("paged", "page", "pages"),
    ("escalate", "escalation by hand", "escalations by hand"),
    ("reopen", "reopening", "reopenings"),
    ("note", "note", "notes"),
    ("update", "status update", "status updates"),
)


def archive_timer(incident: Incident, after: timedelta) -> Timer | None:
    """The timer that archives the channel of `incident`, just resolved, `after` its resolution."""
    if incident.status is not IncidentStatus.RESOLVED or incident.resolved_at is None:
        return None
    resolved = incident.resolved_at.isoformat()
    return Timer(
        kind=ARCHIVE,
        idem_key=f"archive:{incident.id}:{resolved}",
        due_at=incident.resolved_at + after,
        incident_id=incident.id,
        payload={"resolved_at": resolved},
    )


def still_due(incident: Incident, payload: Mapping[str, Any]) -> bool:
    """True when the incident is resolved by the resolution the timer or job was made for, and
    has a channel to archive."""
    if incident.status is not IncidentStatus.RESOLVED or incident.resolved_at is None:
        return False
    if not incident.channel_id:
        return False
    try:
        meant = datetime.fromisoformat(str(payload.get("resolved_at", "")))
    except ValueError:
        return False
    return meant == incident.resolved_at


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def closing_summary(incident: Incident, events: Sequence[TimelineEvent]) -> Rich:
    """The channel's last word: what happened, who resolved it and when, how long it lasted."""
    assert incident.resolved_at is not None  # still_due() said so
    lines: list[Piece] = [
        f":card_file_box: Closing this channel: incident #{incident.id} is resolved.",
        f"*[{incident.severity.value.upper()}] {incident.title}*",
        f"Opened {_when(incident.opened_at)}.",
    ]
    if incident.acknowledged_at is not None and incident.acknowledged_by:
        acked = lasted(incident.opened_at, incident.acknowledged_at)
        lines.append(phrase("Acknowledged by ", who(incident.acknowledged_by), f" after {acked}."))
    took = lasted(incident.opened_at, incident.resolved_at)
    by: tuple[Piece, ...] = (" by ", who(incident.resolved_by)) if incident.resolved_by else ()
    lines.append(
        phrase(
            "Resolved",
            *by,
            f" {_when(incident.resolved_at)}, after {took}.",
        )
    )
    lines.append(_record(events))
    joined: list[Piece] = []
    for i, line in enumerate(lines):
        joined += ["\n", line] if i else [line]
    return phrase(*joined)


def _record(events: Sequence[TimelineEvent]) -> str:
    kinds = Counter(e.kind for e in events)
    counted = [
        f"{kinds[kind]} {one if kinds[kind] == 1 else many}"
        for kind, one, many in _COUNTED
        if kinds[kind]
    ]
    entries = f"{len(events)} entr{'y' if len(events) == 1 else 'ies'}"
    said = f" ({', '.join(counted)})" if counted else ""
    return f"The timeline keeps all {entries}{said}; this channel stays readable in the archive."


def archive_job(incident: Incident, summary: Rich) -> OutboxJob:
    """Post the closing summary into the incident's channel, then archive it; once per
    resolution."""
    assert incident.resolved_at is not None
    resolved = incident.resolved_at.isoformat()
    return OutboxJob(
        kind=JobKind.ARCHIVE_CHANNEL,
        idem_key=f"archive_channel:{incident.id}:{resolved}",
        incident_id=incident.id,
        payload={
            "resolved_at": resolved,
            "text": summary.text,
            "refs": summary.refs_data(),
            "summary_key": f"closing_summary:{incident.id}:{resolved}",
        },
    )


def archived_event(now: datetime) -> TimelineEvent:
    """The timeline's record that the channel was archived."""
    return TimelineEvent(kind=ARCHIVED, actor="tocsin", at=now, text=ARCHIVED_TEXT)
