"""The alert card's buttons: each click is acknowledged at once, then acted on or explained."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.incidents import Action
from bot.errors import UserError
from bot.services.container import Services
from bot.slack import ids
from bot.slack.replies import Reply, acknowledged, ephemeral, refused

Click = Callable[[Services, int, str, str | None], Awaitable[Reply]]


def _incident_id(body: dict[str, Any]) -> int:
    value = str(body["actions"][0].get("value", ""))
    if not value.isdigit():
        raise UserError(
            "This button belongs to an old card; use `/incident status` for a fresh one."
        )
    return int(value)


def _transition(action: Action, permission: str | None) -> Click:
    async def click(services: Services, incident_id: int, user: str, where: str | None) -> Reply:
        incident = await services.incidents.get(incident_id)
        if permission and not await services.permits(permission, user, incident.id):
            return refused(services, permission)
        outcome = await services.incidents.act(incident_id, action, actor=user)
        # In the incident's channel everyone, the clicker too, reads the channel's note; a
        # click on a copy of the card (a DM) is answered where it was made.
        return None if where == incident.channel_id else ephemeral(outcome.message)

    return click


async def _escalate(services: Services, incident_id: int, user: str, _where: str | None) -> Reply:
    incident = await services.incidents.get(incident_id)
    if not await services.permits("escalate", user, incident.id):
        return refused(services, "escalate")
    return ephemeral(await services.escalation.escalate(incident.id, actor=user))


async def _silence(services: Services, incident_id: int, user: str, _where: str | None) -> Reply:
    incident = await services.incidents.get(incident_id)
    if not await services.permits("silence", user, incident.id):
        return refused(services, "silence")
    outcome = await services.silences.silence(incident_id, actor=user)
    return ephemeral(outcome.message)


async def _unsilence(services: Services, incident_id: int, user: str, _where: str | None) -> Reply:
    incident = await services.incidents.get(incident_id)
    if not await services.permits("silence", user, incident.id):
        return refused(services, "silence")
    outcome = await services.silences.unsilence(incident_id, actor=user)
    return ephemeral(outcome.message)


async def _diagnostics(
    services: Services, incident_id: int, user: str, _where: str | None
) -> Reply:
    await services.diagnostics.request(incident_id, actor=user)
    return ephemeral("Running diagnostics: results appear in the channel as they arrive.")


CLICKS: dict[str, Click] = {
    ids.ACKNOWLEDGE: _transition(Action.ACKNOWLEDGE, None),
    ids.RESOLVE: _transition(Action.RESOLVE, "resolve"),
    ids.REOPEN: _transition(Action.REOPEN, None),
    ids.ESCALATE: _escalate,
    ids.SILENCE_1H: _silence,
    ids.UNSILENCE: _unsilence,
    ids.RUN_DIAGNOSTICS: _diagnostics,
}


def register(app: AsyncApp, services: Services) -> None:
    """Wire the card's buttons into the Bolt app."""
    for action_id, click in CLICKS.items():
        app.action(action_id)(_listener(services, click))


def _listener(services: Services, click: Click) -> Any:
    async def work(body: dict[str, Any], _client: Any) -> Reply:
        where = (body.get("channel") or {}).get("id")
        reply = await click(services, _incident_id(body), body["user"]["id"], where)
        services.wake_outbox()
        return reply

    return acknowledged(work)
