"""A Prometheus look-alike: the HTTP API paths Tocsin's Prometheus client calls, over the
demo world (`/api/v1/query`, `/api/v1/query_range`, `/api/v1/targets`, `/api/v1/alerts`,
`/-/ready`), in Prometheus's JSON envelope; a query it cannot run gets Prometheus's error
shape (`{"status": "error", "errorType": "bad_data", ...}`, HTTP 400)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.demo.evaluate import evaluate
from bot.demo.promql import Unsupported, parse
from bot.demo.world import Episode, firing, world

Episodes = Callable[[], Awaitable[Sequence[Episode]]]
MAX_POINTS = 11_000  # as Prometheus: more points per series are refused


def prometheus_app(episodes: Episodes, now: Callable[[], datetime]) -> web.Application:
    """The demo Prometheus as an aiohttp application."""

    async def query(request: web.Request) -> web.Response:
        params = await _params(request)
        at = _time(params.get("time"), now())
        try:
            result = await _run(params, episodes, lambda q, w: _instant(q, at, w))
        except Unsupported as exc:
            return _error(str(exc))
        return _success(result)

    async def query_range(request: web.Request) -> web.Response:
        params = await _params(request)
        try:
            start, end = _time(params.get("start"), None), _time(params.get("end"), None)
            step = float(params.get("step", "0"))
            if step <= 0 or end < start:
                raise Unsupported("invalid parameter: step must be positive and end after start")
            if (end - start) / step + 1 > MAX_POINTS:
                raise Unsupported("exceeded maximum resolution of 11,000 points per timeseries")
            result = await _run(params, episodes, lambda q, w: _range(q, start, end, step, w))
        except (Unsupported, ValueError) as exc:
            return _error(str(exc))
        return _success(result)

    async def targets(request: web.Request) -> web.Response:
        at = now().timestamp()
        active = [_target(s.labels, s.value(at)) for s in world(await episodes()) if _is_up(s)]
        return web.json_response(
            {"status": "success", "data": {"activeTargets": active, "droppedTargets": []}}
        )

    async def alerts(request: web.Request) -> web.Response:
        at = now().timestamp()
        found = [_alert(e) for e in await episodes() if firing(at, e)]
        return web.json_response({"status": "success", "data": {"alerts": found}})

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="Prometheus Server is Ready.\n")

    app = web.Application()
    for path, handler in (("/api/v1/query", query), ("/api/v1/query_range", query_range)):
        app.router.add_get(path, handler)
        app.router.add_post(path, handler)
    app.router.add_get("/api/v1/targets", targets)
    app.router.add_get("/api/v1/alerts", alerts)
    app.router.add_get("/-/ready", ready)
    return app


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    if request.method == "POST":
        params |= {k: str(v) for k, v in (await request.post()).items()}
    return params


async def _run(
    params: dict[str, str], episodes: Episodes, work: Callable[[str, Any], Any]
) -> dict[str, Any]:
    text = params.get("query", "").strip()
    if not text:
        raise Unsupported('invalid parameter "query": empty query')
    series = world(await episodes())
    # A graph reads thousands of points: off the event loop, as a real server would be.
    result: dict[str, Any] = await asyncio.to_thread(work, text, series)
    return result


def _instant(text: str, at: float, series: Any) -> dict[str, Any]:
    value = evaluate(parse(text), at, series)
    if isinstance(value, float):
        return {"resultType": "scalar", "result": [at, _number(value)]}
    return {
        "resultType": "vector",
        "result": [{"metric": m, "value": [at, _number(v)]} for m, v in value],
    }


def _range(text: str, start: float, end: float, step: float, series: Any) -> dict[str, Any]:
    node = parse(text)
    rows: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
    for i in range(int((end - start) // step) + 1):
        at = start + i * step
        value = evaluate(node, at, series)
        points = [({}, value)] if isinstance(value, float) else value
        for metric, number in points:
            rows.setdefault(tuple(sorted(metric.items())), []).append([at, _number(number)])
    result = [{"metric": dict(key), "values": values} for key, values in rows.items()]
    return {"resultType": "matrix", "result": result}


def _time(raw: str | None, default: datetime | None) -> float:
    if raw is None or raw == "":
        if default is None:
            raise Unsupported("invalid parameter: start and end are required")
        return default.timestamp()
    try:
        return float(raw)
    except ValueError:
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise Unsupported(
                f"invalid parameter: cannot parse {raw!r} to a valid timestamp"
            ) from None


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _is_up(series: Any) -> bool:
    return bool(series.labels.get("__name__") == "up")


def _target(labels: Any, value: float) -> dict[str, Any]:
    job, instance = labels["job"], labels["instance"]
    healthy = value >= 1
    return {
        "discoveredLabels": {"__address__": instance, "job": job},
        "labels": {"instance": instance, "job": job},
        "scrapePool": job,
        "scrapeUrl": f"http://{instance}/metrics",
        "lastError": "" if healthy else f'Get "http://{instance}/metrics": connection refused',
        "health": "up" if healthy else "down",
    }


def _alert(episode: Episode) -> dict[str, Any]:
    return {
        "labels": {**episode.labels, "alertname": episode.alertname},
        "annotations": {},
        "state": "firing",
        "activeAt": datetime.fromtimestamp(episode.start, UTC).isoformat(),
        "value": "1e+00",
    }


def _success(data: dict[str, Any]) -> web.Response:
    return web.json_response({"status": "success", "data": data})


def _error(reason: str) -> web.Response:
    body = {"status": "error", "errorType": "bad_data", "error": f"demo data: {reason}"}
    return web.json_response(body, status=400)
