"""Ephemeral replies, and the guard that turns errors into a short message instead of a trace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.domain.text import Rich, phrase
from bot.errors import UserError
from bot.services.container import Services
from bot.slack.render import slack_text

log = logging.getLogger(__name__)
Reply = dict[str, Any] | None
SORRY = ":warning: Something went wrong on our side; it has been logged. Try again in a moment."


def ephemeral(text: Rich | str) -> dict[str, Any]:
    """A reply only the person who asked sees, of plain text (with references, or mentions and
    links as Slack's tokens): escaped for Slack here, once."""
    return rendered(slack_text(text))


def rendered(text: str) -> dict[str, Any]:
    """A reply only the person who asked sees, of text already rendered as Slack mrkdwn."""
    return {"response_type": "ephemeral", "text": text, "replace_original": False}


def refused(services: Services, action: str) -> dict[str, Any]:
    """The reply to someone not allowed to `action`: who is."""
    allowed_people = services.permissions.describe(action)
    return ephemeral(
        phrase(f":no_entry: You may not {action} incidents. Allowed: ", allowed_people, ".")
    )


async def run_safely(work: Callable[[], Awaitable[Reply]]) -> Reply:
    """Run a handler: a UserError becomes its own text, anything else a logged apology."""
    try:
        return await work()
    except UserError as exc:
        return ephemeral(f":information_source: {exc}")
    except Exception:
        log.exception("Slack request failed")
        return ephemeral(SORRY)


Work = Callable[[dict[str, Any], Any], Awaitable[Reply]]


def acknowledged(work: Work) -> Callable[..., Awaitable[None]]:
    """A Bolt listener: acknowledge at once (Slack allows 3 s), then run `work(body, client)`
    guarded by `run_safely`, then answer the person through the request's response_url."""

    async def listener(ack: Any, body: dict[str, Any], respond: Any, client: Any) -> None:
        await ack()
        reply = await run_safely(lambda: work(body, client))
        if reply is not None:
            await respond(**reply)

    return listener
