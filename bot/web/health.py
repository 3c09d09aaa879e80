"""GET /healthz, /readyz and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.observability.metrics import CONTENT_TYPE, Metrics
from bot.web.webhooks import DependencyReport, ReadinessCheck


def healthz(
    dead_loops: Callable[[], dict[str, str]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Alive while every background loop runs: 503 naming each one that ended for good, which
    only a restart brings back (a store that is down is /readyz's business, not this)."""

    async def handler(_request: web.Request) -> web.Response:
        dead = dead_loops()
        if dead:
            return web.json_response({"ok": False, "dead_loops": dict(dead)}, status=503)
        return web.json_response({"ok": True})

    return handler


def readyz(
    check: ReadinessCheck, dependencies: DependencyReport | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Ready when what the bot needs to run is (`checks`); the configured outside dependencies
    are reported beside them (`dependencies`), as information: a replica that cannot reach
    Prometheus still takes webhooks."""

    async def handler(_request: web.Request) -> web.Response:
        if dependencies is not None:
            report, outside = await asyncio.gather(check(), dependencies())
        else:
            report, outside = await check(), {}
        ready = all(part.get("ok") for part in report.values())
        answer = {"ok": ready, "checks": report, "dependencies": outside}
        return web.json_response(answer, status=200 if ready else 503)

    return handler


def metrics_route(
    metrics: Metrics, refresh: Callable[[], Awaitable[Any]] | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The metrics, `refresh`ed first: what every replica says of the outbox it shares."""

    async def handler(_request: web.Request) -> web.Response:
        if refresh is not None:
            await refresh()
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    return handler
