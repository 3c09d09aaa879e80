"""The aiohttp application of `tocsin serve`: webhooks, Slack events, health and metrics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.web.answers import problem
from bot.web.health import healthz, metrics_route, readyz
from bot.web.webhooks import AlertmanagerRoute, SentryRoute, WebDeps

log = logging.getLogger(__name__)


def build_web_app(deps: WebDeps) -> web.Application:
    """The HTTP application of `tocsin serve`."""
    app = web.Application(client_max_size=deps.max_body + 1, middlewares=[_no_stack_traces])
    app.router.add_post("/webhooks/alertmanager", AlertmanagerRoute(deps).handle)
    app.router.add_post("/webhooks/sentry", SentryRoute(deps).handle)
    app.router.add_get("/healthz", healthz(deps.dead_loops))
    app.router.add_get("/readyz", readyz(deps.readiness, deps.dependencies))
    app.router.add_get("/metrics", metrics_route(deps.metrics, deps.refresh_metrics))
    if deps.slack_handler is not None:
        app.router.add_post("/slack/events", deps.slack_handler)
    return app


@web.middleware
async def _no_stack_traces(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal error; it has been logged")
