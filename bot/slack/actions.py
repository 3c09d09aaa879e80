"""The alert card's buttons: each click is acknowledged at once, then acted on or explained."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.incidents import Action
from bot.errors import UserError
from bot.services.container import Services
from bot.slack import ids
from bot.slack.replies import Reply, acknowledged, ephemeral, refused


@dataclass(frozen=True)
class Clicker:
    """Who clicked, where: their user id and name, and the conversation of the message."""

    user: str
    name: str | None
    where: str | None


Click = Callable[[Services, int, Clicker], Awaitable[Reply]]


def _incident_id(body: dict[str, Any]) -> int:
    value = str(body["actions"][0].get("value", ""))
    if not value.isdigit():
        raise UserError(
            "This button belongs to an old card; use `/incident status` for a fresh one."
        )
    return int(value)


def _transition(action: Action, permission: str | None) -> Click:
    async def click(services: Services, incident_id: int, by: Clicker) -> Reply:
        incident = await services.incidents.get(incident_id)
        if permission and not await services.permits(permission, by.user, incident.id):
            return refused(services, permission)
        outcome = await services.incidents.act(incident_id, action, actor=by.user)
        # In the incident's channel everyone, the clicker too, reads the channel's note; a
        # click on a copy of the card (a DM) is answered where it was made.
        return None if by.where == incident.channel_id else ephemeral(outcome.message)

    return click


async def _escalate(services: Services, incident_id: int, by: Clicker) -> Reply:
    incident = await services.incidents.get(incident_id)
    if not await services.permits("escalate", by.user, incident.id):
        return refused(services, "escalate")
    return ephemeral(await services.escalation.escalate(incident.id, actor=by.user))


async def _silence(services: Services, incident_id: int, by: Clicker) -> Reply:
    incident = await services.incidents.get(incident_id)
    if not await services.permits("silence", by.user, incident.id):
        return refused(services, "silence")
    outcome = await services.silences.silence(incident_id, actor=by.user, actor_name=by.name)
    return ephemeral(outcome.message)


async def _silence_flapping(services: Services, incident_id: int, by: Clicker) -> Reply:
    incident = await services.incidents.get(incident_id)
    if not await services.permits("silence", by.user, incident.id):
        return refused(services, "silence")
    outcome = await services.silences.silence(
        incident_id, actor=by.user, actor_name=by.name, flapping=True
    )
    return ephemeral(outcome.message)


async def _split(services: Services, group_id: int, by: Clicker) -> Reply:
    group = await services.incidents.get(group_id)
    if group.storm_id is None:
        return ephemeral(f"#{group_id} is out of the storm already: it has a channel of its own.")
    await services.incidents.split(group.storm_id, group_id, actor=by.user)
    return None  # the storm channel's note says it


async def _unsilence(services: Services, incident_id: int, by: Clicker) -> Reply:
    incident = await services.incidents.get(incident_id)
    if not await services.permits("silence", by.user, incident.id):
        return refused(services, "silence")
    outcome = await services.silences.unsilence(incident_id, actor=by.user)
    return ephemeral(outcome.message)


async def _diagnostics(services: Services, incident_id: int, by: Clicker) -> Reply:
    await services.diagnostics.request(incident_id, actor=by.user)
    return ephemeral("Running diagnostics: results appear in the channel as they arrive.")


CLICKS: dict[str, Click] = {
    ids.ACKNOWLEDGE: _transition(Action.ACKNOWLEDGE, None),
    ids.RESOLVE: _transition(Action.RESOLVE, "resolve"),
    ids.REOPEN: _transition(Action.REOPEN, None),
    ids.ESCALATE: _escalate,
    ids.SILENCE_1H: _silence,
    ids.SILENCE_FLAPPING: _silence_flapping,
    ids.SPLIT_GROUP: _split,
    ids.UNSILENCE: _unsilence,
    ids.RUN_DIAGNOSTICS: _diagnostics,
}


def register(app: AsyncApp, services: Services) -> None:
    """Wire the card's buttons into the Bolt app."""
    for action_id, click in CLICKS.items():
        app.action(action_id)(_listener(services, click))


def _listener(services: Services, click: Click) -> Any:
    async def work(body: dict[str, Any], _client: Any) -> Reply:
        person = body["user"]
        by = Clicker(
            user=person["id"],
            name=person.get("username") or person.get("name"),
            where=(body.get("channel") or {}).get("id"),
        )
        reply = await click(services, _incident_id(body), by)
        services.wake_outbox()
        return reply

    return acknowledged(work)
