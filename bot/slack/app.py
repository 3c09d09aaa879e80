"""The Bolt app: listeners for Slack requests, wired to the aiohttp route /slack/events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.container import Services
from bot.slack.render import unescape

log = logging.getLogger(__name__)


Register = Callable[[AsyncApp, Services], None]


def build_bolt_app(
    *,
    client: AsyncWebClient,
    signing_secret: str,
    services: Services,
    listeners: Sequence[Register],
) -> AsyncApp:
    """A Bolt app that verifies every request with the signing secret (5-minute window), with
    the commands' and the card's listeners (each module's `register`)."""
    app = AsyncApp(client=client, signing_secret=signing_secret, process_before_response=False)
    app.use(plain_command_text)
    for register in listeners:
        register(app, services)

    @app.error
    async def _on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("Slack request failed: %s (%s)", type(error).__name__, body.get("type"))

    return app


async def plain_command_text(req: Any, resp: Any, next: Any) -> Any:
    """Slack sends slash-command text with `&`, `<`, `>` escaped: every command gets it plain,
    made so here, once (mentions and links stay Slack's tokens)."""
    body = req.body
    if isinstance(body, dict) and "command" in body and isinstance(body.get("text"), str):
        body["text"] = unescape(body["text"])
    return await next()


def slack_route(app: AsyncApp) -> Any:
    """The aiohttp handler for POST /slack/events."""

    async def handler(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    return handler
