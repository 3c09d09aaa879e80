"""/kpi: the daily digest on demand (only you see it), or one KPI with its 7-day trend."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.diagnostics import DEMO_DATA
from bot.domain.kpi import KpiValue, format_value
from bot.errors import UserError
from bot.services.container import Services
from bot.slack import ids
from bot.slack.render.digest import change_text, render_digest, title
from bot.slack.render.text import escape
from bot.slack.replies import Reply, acknowledged, ephemeral, rendered

HELP = """*`/kpi` commands*
• `/kpi` — yesterday's digest, only for you
• `/kpi <name>` — one KPI with its 7-day trend, e.g. `/kpi error rate`
• `/kpi list` — the KPI names"""
SPARKS = "▁▂▃▄▅▆▇█"


async def handle(services: Services, text: str) -> Reply:
    """The reply to `/kpi [text]`."""
    digests = services.digests
    if digests is None:
        raise UserError("The daily digest is not configured.")
    words = text.strip()
    if words.lower() == "help":
        return ephemeral(HELP)
    builder = digests.builder
    if words.lower() == "list":
        names = "\n".join(f"• {escape(k.name)}" for k in builder.kpis)
        return rendered(f"*KPIs*\n{names}")
    digest = digests.digest(None)
    day = services.now().astimezone(digest.zone).date() - timedelta(days=1)
    if not words:
        built = await builder.build(digest, day)
        return {
            "response_type": "ephemeral",
            "replace_original": False,
            "text": title(built),
            "blocks": render_digest(built),
        }
    kpi = builder.kpi(words)
    if kpi is None:
        raise UserError(f"No KPI named “{words}”. `/kpi list` shows the names.")
    built = await builder.build(digest, day, only=[kpi])
    return rendered(trend_text(built.values[0]))


def trend_text(value: KpiValue) -> str:
    """One KPI: today's value, its changes, and the last seven days as a sparkline and list."""
    kpi = value.kpi
    head = f"*{escape(kpi.name)}*" + (f" _{DEMO_DATA}_" if value.demo else "")
    if value.error is not None:
        return f"{head}: _unavailable: {escape(value.error)}_"
    week = list(value.series[-7:])
    known = [v for v in week if v is not None]
    low, high = (min(known), max(known)) if known else (0.0, 0.0)

    def spark(v: float | None) -> str:
        if v is None:
            return " "
        if high == low:
            return SPARKS[3]
        return SPARKS[round((v - low) / (high - low) * (len(SPARKS) - 1))]

    line = "".join(spark(v) for v in week)
    days = " · ".join(format_value(v, kpi.unit) for v in week)
    return (
        f"{head}: {format_value(value.value, kpi.unit)} ({value.level.value})\n"
        f"d/d {change_text(kpi, value.day_change)} · w/w {change_text(kpi, value.week_change)}\n"
        f"7 days: `{line}`  {days}"
    )


def register(app: AsyncApp, services: Services) -> None:
    """Wire /kpi into the Bolt app."""

    async def kpi_command(command: dict[str, Any], _client: Any) -> Reply:
        return await handle(services, command.get("text", ""))

    app.command(ids.KPI_COMMAND)(acknowledged(kpi_command))
