"""Ephemeral replies, and the guard that turns errors into a short message instead of a trace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.errors import UserError

log = logging.getLogger(__name__)
Reply = dict[str, Any] | None
SORRY = ":warning: Something went wrong on our side; it has been logged. Try again in a moment."


def ephemeral(text: str) -> dict[str, Any]:
    """A reply only the person who asked sees."""
    return {"response_type": "ephemeral", "text": text, "replace_original": False}


async def run_safely(work: Callable[[], Awaitable[Reply]]) -> Reply:
    """Run a handler: a UserError becomes its own text, anything else a logged apology."""
    try:
        return await work()
    except UserError as exc:
        return ephemeral(f":information_source: {exc}")
    except Exception:
        log.exception("Slack request failed")
        return ephemeral(SORRY)
