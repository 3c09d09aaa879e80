"""/incident: declare, list, status, ack, resolve, reopen, sev, lead, note, timeline, alerts,
update."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.durations import positive_duration
from bot.domain.incidents import SEVERITY_CHANGED, Action, Incident, Severity
from bot.domain.listing import IncidentQuery, Listed
from bot.domain.outbox import JobKind, OutboxJob, note_job
from bot.domain.text import phrase, user
from bot.errors import UserError
from bot.services.container import Services
from bot.slack import ids, render
from bot.slack.render import lists as render_lists
from bot.slack.replies import Reply, acknowledged, ephemeral, refused, rendered
from commands.parsing import parse_severity, parse_user, split_severity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Invocation:
    """One /incident call."""

    user: str
    channel: str
    args: str
    trigger_id: str
    client: AsyncWebClient


Handler = Callable[[Services, Invocation], Awaitable[Reply]]

HELP = """*`/incident` commands*
• `declare <title> [sev1..sev4]` — open an incident (no title: a form).
  `/incident declare Checkout 500s sev2`
• `list [sev1..sev4] [mine] [resolved|all] [since 7d]` — incidents, newest first (open
  ones unless `resolved` or `all`). `/incident list sev1 mine since 7d`
• `status` — the incident card again
• `ack` — acknowledge (stops escalation)
• `resolve [note]` — resolve. `/incident resolve rolled back v42`
• `reopen` — reopen a resolved incident
• `sev <1-4>` — change severity. `/incident sev 2`
• `lead @user` — set the incident commander. `/incident lead @dana`
• `note <text>` — add a timeline entry
• `timeline [page]` — the whole timeline
• `alerts [page]` — every alert of the incident, firing first
• `update <text>` — post a status update here and in the alerts channel
• `split <number>` — in a storm's channel: give one of its alert groups its own incident
The last eleven work in an incident channel."""

USAGE = {
    "list": "/incident list [sev1..sev4] [mine] [resolved|all] [since 7d]",
    "declare": "/incident declare <title> [sev1..sev4]",
    "sev": "/incident sev <1-4>",
    "lead": "/incident lead @user",
    "note": "/incident note <text>",
    "update": "/incident update <text>",
    "timeline": "/incident timeline [page]",
    "alerts": "/incident alerts [page]",
    "split": "/incident split <number>",
}


async def _help(services: Services, inv: Invocation) -> Reply:
    return ephemeral(HELP)


async def _declare(services: Services, inv: Invocation) -> Reply:
    title, severity = split_severity(inv.args)
    if not title:  # `/incident declare` or `/incident declare sev2`: the form, that sev chosen
        form = declare_modal(severity or Severity.SEV3)
        await inv.client.views_open(trigger_id=inv.trigger_id, view=form)
        return None
    incident = await services.incidents.declare(
        title[:200], severity or Severity.SEV3, actor=inv.user
    )
    services.wake_outbox()
    return ephemeral(
        f"Declared incident #{incident.id} ({incident.severity.value}): a channel is on its way."
    )


async def _list(services: Services, inv: Invocation) -> Reply:
    query = parse_query(inv.args, inv.user)
    incidents = await services.incidents.listed(query)
    return rendered(render_lists.incident_list(incidents, services.now(), query.describe()))


def parse_query(text: str, user: str) -> IncidentQuery:
    """`[sev1..sev4 ...] [mine] [resolved | all] [since 7d]` as a list's filters."""
    words = text.lower().split()
    states, severities, mine, since = Listed.OPEN, set(), None, None
    while words:
        word = words.pop(0)
        if word in ("resolved", "all"):
            states = Listed(word)
        elif word == "mine":
            mine = user
        elif word.startswith("sev") and word[3:] in ("1", "2", "3", "4"):
            severities.add(Severity(word))
        elif word == "since" and words:
            try:
                since = positive_duration(words.pop(0))
            except ValueError as exc:
                raise UserError(f"{exc}. Usage: `{USAGE['list']}`") from None
        else:
            raise UserError(f"Unknown filter `{word}`. Usage: `{USAGE['list']}`")
    return IncidentQuery(states, frozenset(severities), mine, since)


async def _here(services: Services, inv: Invocation) -> Incident:
    return await services.incidents.in_channel(inv.channel)


async def _status(services: Services, inv: Invocation) -> Reply:
    incident = await _here(services, inv)
    view = await services.incident_view(incident.id)
    if view is None:
        raise UserError("This incident no longer exists.")
    return {
        "response_type": "ephemeral",
        "text": render.card_text(view),
        "blocks": render.render_incident_card(view),
    }


def _transition(action: Action, permission: str | None = None) -> Handler:
    async def handler(services: Services, inv: Invocation) -> Reply:
        incident = await _here(services, inv)
        if permission and not await services.permits(permission, inv.user, incident.id):
            return refused(services, permission)
        note = render.from_slack(inv.args)
        await services.incidents.act(incident.id, action, actor=inv.user, note=note)
        services.wake_outbox()
        return None  # the channel's note says it, to the person too: one reply, not two

    return handler


async def _sev(services: Services, inv: Invocation) -> Reply:
    severity = parse_severity(inv.args, USAGE["sev"])
    incident = await _here(services, inv)
    text = phrase(
        f"Severity changed from {incident.severity.value} to {severity.value} by ", user(inv.user)
    )
    await services.incidents.update_fields(
        incident.id,
        actor=inv.user,
        kind=SEVERITY_CHANGED,
        text=text,
        unchanged=f"Severity is already {severity.value}.",
        severity=severity,
    )
    services.wake_outbox()
    return None  # the channel's note is the reply


async def _lead(services: Services, inv: Invocation) -> Reply:
    lead = parse_user(inv.args, USAGE["lead"])
    incident = await _here(services, inv)
    text = phrase(user(lead), " is now the incident lead (set by ", user(inv.user), ")")
    await services.incidents.update_fields(
        incident.id,
        actor=inv.user,
        kind="lead",
        text=text,
        unchanged=f"<@{lead}> is already the incident lead.",
        lead=lead,
    )
    services.wake_outbox()
    return None  # the channel's note is the reply


async def _note(services: Services, inv: Invocation) -> Reply:
    if not inv.args.strip():
        raise UserError(f"Write the note after the command. Usage: `{USAGE['note']}`")
    incident = await _here(services, inv)
    await services.incidents.record(
        incident.id, actor=inv.user, kind="note", text=render.from_slack(inv.args.strip()[:3000])
    )
    return ephemeral("Noted on the timeline.")


def _page(inv: Invocation, usage: str) -> int:
    page_text = inv.args.strip() or "1"
    if not page_text.isdigit() or int(page_text) < 1:
        raise UserError(f"Page must be a number from 1. Usage: `{USAGE[usage]}`")
    return int(page_text)


async def _alerts(services: Services, inv: Invocation) -> Reply:
    page = _page(inv, "alerts")
    incident = await _here(services, inv)
    per_page = render_lists.ALERTS_PAGE
    counted = await services.incident_view(incident.id, alerts_shown=0)
    if counted is None:
        raise UserError("This incident no longer exists.")
    pages = render_lists.pages_of(counted.total, per_page)
    page = min(page, pages)
    view = await services.incident_view(
        incident.id, alerts_from=(page - 1) * per_page, alerts_shown=per_page
    )
    if view is None:
        raise UserError("This incident no longer exists.")
    return rendered(render_lists.alerts_page(view, page, pages))


async def _timeline(services: Services, inv: Invocation) -> Reply:
    page = _page(inv, "timeline")
    incident = await _here(services, inv)
    text, _pages = render_lists.timeline_page(await services.incidents.timeline(incident.id), page)
    return rendered(text)


async def _update(services: Services, inv: Invocation) -> Reply:
    text = inv.args.strip()
    if not text:
        raise UserError(f"Write the update after the command. Usage: `{USAGE['update']}`")
    incident = await _here(services, inv)
    message = f":mega: *Update* from <@{inv.user}>: {text[:2500]}"
    jobs: list[OutboxJob] = [note_job(incident.id, f"update:{services.now().isoformat()}", message)]
    if services.alerts_channel:
        jobs.append(
            OutboxJob(
                kind=JobKind.POST_ALERTS_NOTE,
                idem_key=f"alerts_update:{incident.id}:{services.now().isoformat()}",
                incident_id=incident.id,
                payload={"text": f"{message} — <#{incident.channel_id}>"},
            )
        )
    await services.incidents.record(
        incident.id,
        actor=inv.user,
        kind="update",
        text=render.from_slack(text[:3000]),
        jobs=tuple(jobs),
    )
    services.wake_outbox()
    return ephemeral("Update posted.")


async def _split(services: Services, inv: Invocation) -> Reply:
    number = inv.args.strip().lstrip("#")
    if not number.isdigit():
        raise UserError(f"Give the group's number from the storm's card. Usage: `{USAGE['split']}`")
    storm = await _here(services, inv)
    await services.incidents.split(storm.id, int(number), actor=inv.user)
    services.wake_outbox()
    return None  # the storm channel's note is the reply


SUBCOMMANDS: dict[str, Handler] = {
    "help": _help,
    "declare": _declare,
    "list": _list,
    "status": _status,
    "ack": _transition(Action.ACKNOWLEDGE),
    "resolve": _transition(Action.RESOLVE, "resolve"),
    "reopen": _transition(Action.REOPEN),
    "sev": _sev,
    "lead": _lead,
    "note": _note,
    "timeline": _timeline,
    "alerts": _alerts,
    "update": _update,
    "split": _split,
}


async def handle(services: Services, inv: Invocation) -> Reply:
    """Dispatch one /incident call to its subcommand."""
    name, _, rest = inv.args.strip().partition(" ")
    handler = SUBCOMMANDS.get(name.lower() or "help")
    if handler is None:
        return ephemeral(f"Unknown subcommand `{name}`.\n\n{HELP}")
    return await handler(
        services, Invocation(inv.user, inv.channel, rest.strip(), inv.trigger_id, inv.client)
    )


def declare_modal(chosen: Severity = Severity.SEV3) -> dict[str, Any]:
    """The form `/incident declare` opens when given no title, with `chosen` selected."""
    options = [
        {"text": {"type": "plain_text", "text": s.value}, "value": s.value} for s in Severity
    ]
    return {
        "type": "modal",
        "callback_id": ids.DECLARE_MODAL,
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "What is wrong?"},
                "element": {"type": "plain_text_input", "action_id": "value", "max_length": 200},
            },
            {
                "type": "input",
                "block_id": "severity",
                "label": {"type": "plain_text", "text": "Severity"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": options,
                    "initial_option": next(o for o in options if o["value"] == chosen.value),
                },
            },
        ],
    }


def register(app: AsyncApp, services: Services) -> None:
    """Wire /incident and its modal into the Bolt app."""

    async def incident_command(command: dict[str, Any], client: AsyncWebClient) -> Reply:
        inv = Invocation(
            command["user_id"],
            command["channel_id"],
            command.get("text", ""),
            command.get("trigger_id", ""),
            client,
        )
        return await handle(services, inv)

    app.command(ids.INCIDENT_COMMAND)(acknowledged(incident_command))

    @app.view(ids.DECLARE_MODAL)
    async def declare_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        form = read_declare_form(view)
        if isinstance(form, str):
            await ack(response_action="update", view=outdated_form_modal(form))
            return
        title, severity, errors = form
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        await services.incidents.declare(title, severity, actor=body["user"]["id"])
        services.wake_outbox()


DeclareForm = tuple[str, Severity, dict[str, str]]


def _element(values: dict[str, Any], block: str) -> dict[str, Any] | None:
    """The state of a block's one input element, whatever its action id (forms change)."""
    elements = values.get(block)
    if not isinstance(elements, dict) or not elements:
        return None
    element = next(iter(elements.values()))
    return element if isinstance(element, dict) else None


def read_declare_form(view: dict[str, Any]) -> DeclareForm | str:
    """Title, severity and the errors per field of a submitted declare form; or, for a form
    without Tocsin's fields (an old one, another app's with the same callback id), why not."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(values, dict) or not isinstance(values.get("title"), dict):
        return "This form has no title field Tocsin knows."
    errors: dict[str, str] = {}
    title_state = _element(values, "title") or {}
    title = str(title_state.get("value") or "").strip()
    if not title:
        errors["title"] = "Say what is wrong."
    severity = Severity.SEV3  # forms from before severity was asked for
    if "severity" in values:
        option = (_element(values, "severity") or {}).get("selected_option")
        chosen = option.get("value") if isinstance(option, dict) else None
        if not chosen:
            errors["severity"] = "Choose a severity."
        elif chosen not in {s.value for s in Severity}:
            errors["severity"] = f"Unknown severity {str(chosen)[:20]}: choose sev1 to sev4."
        else:
            severity = Severity(chosen)
    return title[:200], severity, errors


def outdated_form_modal(why: str) -> dict[str, Any]:
    """What a person sees instead of a form Tocsin cannot read: what happened and what to do."""
    text = (
        f"{why} It may be from an older version of Tocsin. "
        "Close it and run `/incident declare` again."
    )
    return {
        "type": "modal",
        "callback_id": ids.DECLARE_MODAL,
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }
