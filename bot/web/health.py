"""GET /healthz, /readyz and /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.observability.metrics import CONTENT_TYPE, Metrics
from bot.web.webhooks import ReadinessCheck


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def readyz(check: ReadinessCheck) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_request: web.Request) -> web.Response:
        report = await check()
        ready = all(part.get("ok") for part in report.values())
        return web.json_response({"ok": ready, "checks": report}, status=200 if ready else 503)

    return handler


def metrics_route(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_request: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    return handler
