"""The Bolt app: listeners for Slack requests, wired to the aiohttp route /slack/events."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from commands import ids

log = logging.getLogger(__name__)

_COMING_SOON = {
    ids.ACKNOWLEDGE: "Acknowledge",
    ids.ESCALATE: "Escalate",
    ids.RESOLVE: "Resolve",
    ids.SILENCE_1H: "Silence 1h",
    ids.RUN_DIAGNOSTICS: "Run diagnostics",
}


def build_bolt_app(*, client: AsyncWebClient, signing_secret: str) -> AsyncApp:
    """A Bolt app that verifies every request with the signing secret."""
    app = AsyncApp(client=client, signing_secret=signing_secret, process_before_response=False)
    for action_id, label in _COMING_SOON.items():
        app.action(action_id)(_coming_soon(label))

    @app.error
    async def _on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("Slack request failed: %s (%s)", type(error).__name__, body.get("type"))

    return app


def _coming_soon(label: str) -> Any:
    async def handler(ack: Any, respond: Any) -> None:
        await ack()
        await respond(
            text=f"{label} is coming soon: this button is not wired up yet.",
            response_type="ephemeral",
            replace_original=False,
        )

    return handler


def slack_route(app: AsyncApp) -> Any:
    """The aiohttp handler for POST /slack/events."""

    async def handler(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    return handler
