"""The digest as a terminal shows it (`tocsin digest --dry-run`): plain text, no Slack markup.

Channels are named (`#inc-…`), links are written `label (url)`, and text is printed as it is:
nothing escaped for Slack, nothing to decode by eye.
"""

from __future__ import annotations

from bot.domain.diagnostics import DEMO_DATA, DiagnosticResult, Status
from bot.domain.digest import Digest
from bot.domain.kpi import IncidentTimes, Level, format_value
from bot.slack.render.digest import (
    DEMO_NOTE,
    MAX_INCIDENTS,
    change_text,
    incident_counts,
    title,
)

FLAGS = {Level.FAIL: "FAIL", Level.WARN: "WARN", Level.OK: "    "}
TITLE_WIDTH = 120


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def incident_line(incident: IncidentTimes) -> str:
    """ "• #inc-2026-11-24-api-5xx sev1 5xx above 5% — resolved" """
    where = f"#{incident.channel_name}" if incident.channel_name else f"incident #{incident.id}"
    state = "resolved" if incident.resolved_at else "open"
    return f"• {where} {incident.severity.value} {_clip(incident.title, TITLE_WIDTH)} — {state}"


def incidents_lines(digest: Digest) -> list[str]:
    """The day's incidents: the counts, then one line each."""
    lines = ["Incidents · " + " · ".join(incident_counts(digest))]
    lines += [incident_line(i) for i in digest.incidents[:MAX_INCIDENTS]]
    if len(digest.incidents) > MAX_INCIDENTS:
        lines.append(f"… and {len(digest.incidents) - MAX_INCIDENTS} more")
    if not digest.incidents:
        lines.append("No incidents opened.")
    return lines


def sentry_lines(result: DiagnosticResult) -> list[str]:
    """The top new Sentry issues, each `issue (link) — events, users`."""
    if result.status is Status.ERROR:
        return [f"{result.title}: unavailable: {result.text}"]
    lines = [result.title]
    if result.table is None or not result.table.rows:
        return [*lines, result.text]
    for row in result.table.rows[:5]:
        issue, events, users, link = row[0], row[1], row[2], row[-1]
        lines.append(f"• {_clip(str(issue), 90)} ({link}) — {events} events, {users} users")
    return lines


def digest_text(digest: Digest) -> str:
    """The whole digest for a terminal."""
    lines = [title(digest) + (" (late)" if digest.late else ""), f"{digest.timezone}"]
    lines += [f"{DEMO_DATA}: {DEMO_NOTE}", ""] if digest.demo else [""]
    width = max((len(v.kpi.name) for v in digest.values), default=10)
    for value in digest.ordered:
        if value.error is not None:
            lines.append(f"     {value.kpi.name.ljust(width)}  unavailable: {value.error}")
            continue
        lines.append(
            f"{FLAGS[value.level]} {value.kpi.name.ljust(width)}  "
            f"{format_value(value.value, value.kpi.unit):>12}  "
            f"d/d {change_text(value.kpi, value.day_change, emoji=False):<22} "
            f"w/w {change_text(value.kpi, value.week_change, emoji=False)}"
            + (f"  ({DEMO_DATA})" if value.demo else "")
        )
    lines += ["", *incidents_lines(digest)]
    if digest.sentry is not None:
        lines += ["", *sentry_lines(digest.sentry)]
    return "\n".join(lines)
