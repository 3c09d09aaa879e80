"""The daily digest as one Block Kit message (`bot/cli/digest_text.py` prints it in a terminal)."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.domain.diagnostics import DEMO_DATA, DiagnosticResult, Status
from bot.domain.digest import Digest
from bot.domain.kpi import (
    Change,
    IncidentTimes,
    KpiDef,
    KpiValue,
    Level,
    Trend,
    format_change,
    format_duration,
    format_value,
)
from bot.slack.render.text import clip, escape

LEVEL_EMOJI = {Level.FAIL: ":red_circle:", Level.WARN: ":large_yellow_circle:", Level.OK: ""}
TREND_EMOJI = {
    Trend.BETTER: ":large_green_circle:",
    Trend.WORSE: ":red_circle:",
    Trend.FLAT: ":white_circle:",
}
TREND_TEXT = {Trend.BETTER: "better", Trend.WORSE: "worse", Trend.FLAT: "flat"}
FIELDS_PER_SECTION = 10  # Slack's limit
MAX_INCIDENTS = 10
SECTION_TEXT = 3000
DEMO_NOTE = "numbers from the sandbox's demo sources, not from a real system"


def title(digest: Digest) -> str:
    """ "Daily digest · Tue 24 Nov 2026" """
    name = "Daily digest" if digest.name == "daily" else f"Digest {digest.name}"
    return f"{name} · {digest.day.strftime('%a %d %b %Y')}"


def arrow(moved: Change | None) -> str:
    if moved is None or moved.trend is Trend.FLAT:
        return "→"
    return "▲" if moved.delta > 0 else "▼"


def change_text(kpi: KpiDef, moved: Change | None, *, emoji: bool = True) -> str:
    if moved is None:
        return "n/a"
    mark = TREND_EMOJI[moved.trend] if emoji else f"({TREND_TEXT[moved.trend]})"
    text = f"{arrow(moved)} {format_change(kpi, moved)}"
    return f"{mark} {text}" if emoji else f"{text} {mark}"


def _limit(value: KpiValue) -> str:
    kpi = value.kpi
    side = "below" if kpi.good.value == "up" else "above"
    limit = kpi.fail if value.level is Level.FAIL else kpi.warn
    return f"{value.level.value} {side} {format_value(limit, kpi.unit)}"


def kpi_field(value: KpiValue) -> str:
    """One KPI as a section field: name, value, day-over-day and week-over-week."""
    name = f"*{escape(value.kpi.name)}*"
    if value.error is not None:
        return clip(f"{name}\n_unavailable: {escape(value.error)}_", 1900)
    level = LEVEL_EMOJI[value.level]
    head = f"{name} {level}".rstrip() + (f" _{DEMO_DATA}_" if value.demo else "")
    return (
        f"{head}\n{format_value(value.value, value.kpi.unit)}\n"
        f"d/d {change_text(value.kpi, value.day_change)} · "
        f"w/w {change_text(value.kpi, value.week_change)}"
    )


def _incident_line(incident: IncidentTimes) -> str:
    where = f"<#{incident.channel_id}>" if incident.channel_id else f"#{incident.id}"
    state = "resolved" if incident.resolved_at else "open"
    return f"• {where} {incident.severity.value} {escape(clip(incident.title, 120))} — {state}"


def incident_counts(digest: Digest) -> list[str]:
    """The day's incident figures, as plain words: opened, resolved, still open, MTTA, MTTR,
    then how many of each severity."""
    stats = digest.stats
    parts = [
        f"{stats.opened} opened",
        f"{stats.resolved} resolved",
        f"{stats.still_open} still open",
        f"MTTA {format_duration(stats.mtta) if stats.mtta is not None else 'n/a'}",
        f"MTTR {format_duration(stats.mttr) if stats.mttr is not None else 'n/a'}",
    ]
    return parts + [f"{s.value} {n}" for s, n in stats.by_severity.items()]


def incidents_text(digest: Digest) -> str:
    lines = ["*Incidents* · " + " · ".join(incident_counts(digest))]
    lines += [_incident_line(i) for i in digest.incidents[:MAX_INCIDENTS]]
    if len(digest.incidents) > MAX_INCIDENTS:
        lines.append(f"… and {len(digest.incidents) - MAX_INCIDENTS} more")
    if not digest.incidents:
        lines.append("No incidents opened.")
    return clip("\n".join(lines), SECTION_TEXT)


def sentry_text(result: DiagnosticResult) -> str:
    if result.status is Status.ERROR:
        return f"*{escape(result.title)}*: _unavailable: {escape(result.text)}_"
    lines = [f"*{escape(result.title)}*"]
    if result.table is None or not result.table.rows:
        lines.append(escape(result.text))
    else:
        for row in result.table.rows[:5]:
            issue, events, users, link = row[0], row[1], row[2], row[-1]
            lines.append(
                f"• <{link}|{escape(clip(str(issue), 90))}> — {events} events, {users} users"
            )
    return clip("\n".join(lines), SECTION_TEXT)


def attention_text(digest: Digest) -> str | None:
    breached = [v for v in digest.ordered if v.error is None and v.level is not Level.OK]
    if not breached:
        return None
    lines = ["*Needs attention*"] + [
        f"{LEVEL_EMOJI[v.level]} *{escape(v.kpi.name)}* "
        f"{format_value(v.value, v.kpi.unit)} ({_limit(v)})"
        for v in breached
    ]
    return clip("\n".join(lines), SECTION_TEXT)


def render_digest(digest: Digest) -> list[dict[str, Any]]:
    """The digest's blocks; slack_sdk's models check Slack's limits as they are built."""
    late = " · :hourglass: posted late" if digest.late else ""
    late += f" · :test_tube: *{DEMO_DATA}*: {DEMO_NOTE}" if digest.demo else ""
    blocks: list[Block] = [
        HeaderBlock(text=clip(title(digest), 150)),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"{digest.day.isoformat()} ({escape(digest.timezone)}) · "
                    f"{len(digest.values)} KPIs{late}"
                )
            ]
        ),
    ]
    attention = attention_text(digest)
    if attention:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=attention)))
    fields = [MarkdownTextObject(text=kpi_field(v)) for v in digest.ordered]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append(SectionBlock(fields=fields[start : start + FIELDS_PER_SECTION]))
    blocks.append(DividerBlock())
    blocks.append(SectionBlock(text=MarkdownTextObject(text=incidents_text(digest))))
    if digest.sentry is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=sentry_text(digest.sentry))))
    charted = digest.charted
    if charted:
        names = ", ".join(escape(v.kpi.name) for v in charted)
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=f"7-day trends below: {names}")])
        )
    return [b.to_dict() for b in blocks[:50]]


def digest_fallback(digest: Digest) -> str:
    """The notification text (and what screen readers say)."""
    breached = sum(1 for v in digest.values if v.error is None and v.level is not Level.OK)
    note = f", {breached} need attention" if breached else ""
    note += f" ({DEMO_DATA})" if digest.demo else ""
    return clip(f"{title(digest)}: {len(digest.values)} KPIs{note}", 300)
