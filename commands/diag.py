"""/diag: run a diagnostic now — prom, sentry, supabase, health — never any SQL from Slack."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.diagnostics import DiagnosticResult
from bot.domain.durations import positive_duration
from bot.domain.playbooks import PrometheusCheck, SentryCheck, Step
from bot.errors import UserError
from bot.services.container import Services
from bot.services.diagnostics import incident_source
from bot.slack import ids
from bot.slack.render import diagnostics as render_diagnostics
from bot.slack.replies import Reply, acknowledged, ephemeral, rendered

HELP = """*`/diag` commands*
• `prom <promql> [range] [share]` — a query now (table), or over a range as a graph.
  `/diag prom up == 0`, `/diag prom rate(http_requests_total[5m]) 1h`
• `sentry [project] [issue-id]` — top unresolved issues, or an issue's latest event.
  `/diag sentry web`
• `supabase` — database health: connections, long queries, locks, size, cache, replication
• `health` — every dependency at a glance: ok, failing (and why) or not configured
In an incident channel results are posted there and kept on the timeline;
elsewhere only you see them, and a graph is sent to you in a DM (add `share` to post
it in the channel instead)."""
SHARE = "share"
_RANGE = re.compile(r"^\d+(?:\.\d+)?(?:s|m|h|d)$")
TIMEOUT = timedelta(seconds=15)


async def _prom(services: Services, args: str) -> list[DiagnosticResult]:
    words = args.split()
    if not words:
        raise UserError("Give a PromQL query. Usage: `/diag prom <promql> [range]`")
    span = None
    if _ends_with_range(words):
        try:
            span = positive_duration(words[-1])
        except ValueError as exc:
            raise UserError(f"{exc}. Usage: `/diag prom <promql> [range]`") from None
        words = words[:-1]
        if span > timedelta(days=31):
            raise UserError("The range can be at most 31d.")
    query = " ".join(words)
    step = Step(PrometheusCheck(title=query[:100], query=query, graph=span), timeout=TIMEOUT)
    return [await services.diagnostics.run_check(step, labels={})]


def _ends_with_range(words: list[str]) -> bool:
    """True when the last word is the graph range, not the end of the query."""
    if len(words) < 2 or not _RANGE.match(words[-1]):
        return False
    # `up offset 5m`: PromQL's offset modifier owns the duration (keywords ignore case).
    return words[-2].lower() != "offset"


async def _sentry(services: Services, args: str) -> list[DiagnosticResult]:
    words = args.split()
    issue = next((w for w in words if w.isdigit()), None)
    project = next((w for w in words if not w.isdigit()), None)
    errors = services.diagnostics.sources.errors
    if issue is not None and errors is not None:
        return [await errors.latest_event(issue)]
    step = Step(SentryCheck(title="Top Sentry issues", project=project), timeout=TIMEOUT)
    return [await services.diagnostics.run_check(step, labels={})]


async def _supabase(services: Services, args: str) -> list[DiagnosticResult]:
    database = services.diagnostics.sources.database
    if database is None:
        return [DiagnosticResult.error("Supabase", "not configured: set SUPABASE_DB_URL")]
    return await database.run_all()


async def _health(services: Services, args: str) -> list[DiagnosticResult]:
    return await services.health.check_all()


SUBCOMMANDS = {"prom": _prom, "sentry": _sentry, "supabase": _supabase, "health": _health}


@dataclass(frozen=True)
class Asked:
    """One /diag request: what was typed, where, by whom; `key` names it (its trigger)."""

    text: str
    channel: str
    user: str
    key: str


async def handle(services: Services, asked: Asked) -> Reply:
    """Dispatch one /diag call; in an incident channel the results are posted there, elsewhere
    the person sees them and gets the graph in a DM (or in the channel, with `share`)."""
    name, _, rest = asked.text.strip().partition(" ")
    if name.lower() in ("", "help"):
        return ephemeral(HELP)
    run = SUBCOMMANDS.get(name.lower())
    if run is None:
        return ephemeral(f"Unknown subcommand `{name}`.\n\n{HELP}")
    rest, share = _without_share(rest)
    results = await run(services, rest)
    incident = await _incident_here(services, asked.channel)
    if incident is not None:
        await services.diagnostics.publish_all(incident, results)
        return ephemeral(f"Posted {len(results)} result{'s' if len(results) != 1 else ''} here.")
    await services.diagnostics.send_graphs(
        results, user=asked.user, key=asked.key, share_in=asked.channel if share else ""
    )
    where = render_diagnostics.GRAPH_SHARED if share else render_diagnostics.GRAPH_IN_DM
    reply: dict[str, Any] = rendered(render_diagnostics.results_text(results))
    reply["blocks"] = render_diagnostics.render_results(results, graph=where)
    return reply


def _without_share(args: str) -> tuple[str, bool]:
    """The arguments without a last word `share`, and whether it was there."""
    words = args.split()
    if len(words) > 1 and words[-1].lower() == SHARE:
        return " ".join(words[:-1]), True
    return args.strip(), False


async def _incident_here(services: Services, channel: str) -> int | None:
    try:
        incident = await services.incidents.in_channel(channel)
    except UserError:
        return None
    return incident.id if incident_source(incident) else None


def register(app: AsyncApp, services: Services) -> None:
    """Wire /diag into the Bolt app."""

    async def diag_command(command: dict[str, Any], _client: Any) -> Reply:
        key = str(command.get("trigger_id") or uuid.uuid4().hex)
        asked = Asked(command.get("text", ""), command["channel_id"], command["user_id"], key)
        return await handle(services, asked)

    app.command(ids.DIAG_COMMAND)(acknowledged(diag_command))
