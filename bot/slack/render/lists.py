"""Text for ephemeral answers: incident lists, timelines, on-call, help."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.domain.incidents import Incident, TimelineEvent
from bot.domain.oncall import Shift
from bot.domain.views import IncidentView
from bot.slack.render import (
    alert_line,
    marked,
    shared_labels,
    shared_line,
    slack_text,
)
from bot.slack.render.text import clip, escape

TIMELINE_PAGE = 25
ALERTS_PAGE = 20  # alert lines per page of `/incident alerts` (a line may run to ~500 chars)


def age(since: datetime, now: datetime) -> str:
    """A short age: 45s, 12m, 3h 5m, 2d 4h."""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes}m"
    if days == 0:
        return f"{hours}h {minutes % 60}m"
    return f"{days}d {hours % 24}h"


def mention(actor: str | None) -> str:
    """A user mention for Slack ids, the name otherwise."""
    if not actor:
        return "nobody"
    return (
        f"<@{actor}>"
        if actor[:1] in "UW" and actor.isalnum() and actor.isupper()
        else escape(actor)
    )


def incident_list(
    incidents: Sequence[Incident], now: datetime, what: tuple[str, str] = ("open", "")
) -> str:
    """Incidents, newest first, one line each; `what` names them ("resolved sev1", " of yours")."""
    before, after = what
    name = f"{before} incident" if before else "incident"
    if not incidents:
        return f":white_check_mark: No {name}s{after}."
    plural = "s" if len(incidents) != 1 else ""
    lines = [f"*{len(incidents)} {name}{plural}{after}*"]
    for inc in incidents:
        where = f"<#{inc.channel_id}>" if inc.channel_id else "(channel pending)"
        line = (
            f"{where} *{inc.severity.value}* {inc.status.value} · "
            f"{age(inc.opened_at, now)} · lead {mention(inc.lead)} — {escape(clip(inc.title, 120))}"
        )
        lines.append(f"• #{inc.id} {marked(inc, line)}")
    return clip("\n".join(lines), 3000)


def timeline_page(events: Sequence[TimelineEvent], page: int) -> tuple[str, int]:
    """One page of the timeline and the number of pages."""
    pages = max(1, -(-len(events) // TIMELINE_PAGE))
    page = min(max(page, 1), pages)
    chunk = events[(page - 1) * TIMELINE_PAGE : page * TIMELINE_PAGE]
    lines = [f"*Timeline* (page {page}/{pages}, {len(events)} entries)"]
    lines += [f"`{e.at:%Y-%m-%d %H:%M:%S}` {slack_text(e.rich.clipped(200))}" for e in chunk]
    if page < pages:
        lines.append(f"_More: `/incident timeline {page + 1}`_")
    return clip("\n".join(lines), 3900), pages


def pages_of(total: int, per_page: int) -> int:
    """How many pages `total` items fill (at least one)."""
    return max(1, -(-total // per_page))


def alerts_page(view: IncidentView, page: int, pages: int) -> str:
    """One page of an incident's alerts (`view.alerts` holds that page's): firing first, the
    labels they all share said once, above."""
    shared = shared_labels(view)
    lines = [
        f"*Alerts of incident #{view.incident.id}* (page {page}/{pages}, "
        f"{view.firing} firing, {view.resolved} resolved)"
    ]
    if shared:
        lines.append(shared_line(shared))
    lines += [alert_line(alert, shared, details=False) for alert in view.alerts]
    if not view.alerts:
        lines.append("No alerts.")
    if page < pages:
        lines.append(f"_More: `/incident alerts {page + 1}`_")
    return clip("\n".join(lines), 3900)


def oncall_lines(rows: Sequence[tuple[str, Shift | None, Shift | None]]) -> str:
    """Who is on call now and next, per rotation."""
    if not rows:
        return "No rotations are configured (oncall.rotations in tocsin.yml)."
    lines = []
    for name, now_shift, next_shift in rows:
        current = (
            f"{mention(now_shift.user)} until {now_shift.ends_at:%a %H:%M} UTC"
            if now_shift
            else "nobody"
        )
        upcoming = (
            f"{mention(next_shift.user)} from {next_shift.starts_at:%a %H:%M} UTC"
            if next_shift
            else "nobody scheduled"
        )
        lines.append(f"*{escape(name)}*: now {current}; next {upcoming}")
    return "\n".join(lines)
