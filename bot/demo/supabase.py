"""Demo database health: Supabase's HTTP APIs as a look-alike server, its Postgres as
answers at the service level.

The REST and Auth probes are real HTTP: `supabase_app` answers `/rest/v1/` and
`/auth/v1/health` as Kong in front of PostgREST and GoTrue does, and the real client calls it.
The Postgres checks and the KPIs' SELECTs need a Postgres connection, which a demo has not:
`DemoDatabase` answers them with the rows a small busy database would give, graded by the
same functions that grade a real server's rows. While a DatabaseConnectionLoss alert fires,
the database is saturated: connections near the limit, long queries and a lock chain.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.demo.world import Episode, surge, trouble, wiggle
from bot.domain.diagnostics import DiagnosticResult
from bot.domain.playbooks import SUPABASE_TITLES
from bot.errors import IntegrationError
from integrations import supabase_checks as q
from integrations.supabase import CHECKS, HTTP_CHECKS, SupabaseDiagnostics

Episodes = Callable[[], Awaitable[Sequence[Episode]]]
KEY = "demo-anon-key"
NOT_SHIPPED = (
    "demo data: the demo database answers only the shipped KPIs' SELECTs; "
    "set SUPABASE_DB_URL to run this one"
)


def supabase_app() -> web.Application:
    """The demo Supabase HTTP APIs: PostgREST's root and GoTrue's health, behind an API key."""

    def keyed(request: web.Request) -> bool:
        return request.headers.get("apikey") == KEY

    async def rest(request: web.Request) -> web.Response:
        if not keyed(request):
            return web.json_response({"message": "No API key found in request"}, status=401)
        return web.json_response({"swagger": "2.0", "info": {"title": "PostgREST API"}})

    async def auth(request: web.Request) -> web.Response:
        if not keyed(request):
            return web.json_response({"message": "No API key found in request"}, status=401)
        return web.json_response(
            {
                "version": "v2.164.0",
                "name": "GoTrue",
                "description": "GoTrue is a user registration and authentication API",
            }
        )

    app = web.Application()
    app.router.add_get("/rest/v1/", rest)
    app.router.add_get("/auth/v1/health", auth)
    return app


class DemoDatabase:
    """Database health and KPI numbers of the demo app; HTTP probes go to `http`."""

    def __init__(
        self, http: SupabaseDiagnostics, episodes: Episodes, now: Callable[[], datetime]
    ) -> None:
        self.http = http
        self.episodes = episodes
        self.now = now
        self.thresholds = q.Thresholds()

    async def run(self, check: str) -> DiagnosticResult:
        """One check by name: HTTP probes for real, Postgres checks from demo rows."""
        name = check.strip().lower().replace("-", "_")
        if name not in CHECKS:
            return await self.http.run(check)
        return self._graded(name, await self._saturation())

    async def run_all(self) -> list[DiagnosticResult]:
        """Every check, as a project with both a database and its HTTP APIs."""
        return list(await asyncio.gather(*(self.run(name) for name in CHECKS + HTTP_CHECKS)))

    async def values_for(
        self, sql: str, windows: Sequence[tuple[datetime, datetime]]
    ) -> list[float | None]:
        """The shipped KPIs' numbers for each day; any other SELECT is refused."""
        text = " ".join(sql.lower().split())
        kinds = (
            ("cohort", 0.34, 0.04),
            ("public.messages", 52_000.0, 0.12),
            ("avg(extract(epoch", 1_260.0, 0.08),
            ("count(distinct user_id)", 1_840.0, 0.1),
        )
        for marker, base, spread in kinds:
            if marker in text:
                return [
                    base * (1 + spread * (wiggle(end.timestamp(), len(marker)) - 1) * 3)
                    for _, end in windows
                ]
        raise IntegrationError(NOT_SHIPPED)

    async def _saturation(self) -> float:
        at = self.now().timestamp()
        lost = trouble(await self.episodes(), "DatabaseConnectionLoss", "job", "supabase-db")
        return max((surge(at, e) for e in lost), default=0.0)

    def _graded(self, name: str, bad: float) -> DiagnosticResult:
        title, t = SUPABASE_TITLES[name], self.thresholds
        if name == "connections":
            busy = 6 + math.floor(44 * bad)
            rows = [
                {"role": "authenticator", "state": "active", "n": busy},
                {"role": "authenticator", "state": "idle", "n": 14},
                {"role": "supabase_admin", "state": "idle", "n": 3},
            ]
            return q.connections_result(title, rows, 60, t)
        if name == "long_queries":
            return q.long_queries_result(title, _long_queries() if bad > 0.5 else [], t)
        if name == "locks":
            rows = _locks() if bad > 0.5 else []
            return q.locks_result(title, rows, {4711: "idle in transaction"}, t)
        if name == "size":
            database = {"name": "postgres", "bytes": 1_930_000_000, "pretty": "1841 MB"}
            tables = [
                {"schema": "public", "name": "messages", "pretty": "1204 MB"},
                {"schema": "auth", "name": "sessions", "pretty": "311 MB"},
                {"schema": "public", "name": "attachments", "pretty": "187 MB"},
                {"schema": "auth", "name": "users", "pretty": "42 MB"},
                {"schema": "public", "name": "channels", "pretty": "9 MB"},
            ]
            return q.size_result(title, database, tables, t)
        if name == "cache_hit":
            row = {
                "heap_hit": 98_412_330,
                "heap_read": 401_220,
                "idx_hit": 220_118_004,
                "idx_read": 90_114,
            }
            return q.cache_hit_result(title, row, t)
        lag = 0.4 + 40 * bad
        replicas = [{"name": "replica-1", "state": "streaming", "sync_state": "async", "lag": lag}]
        return q.replicas_result(title, replicas, t)


def _long_queries() -> list[dict[str, Any]]:
    query = "UPDATE public.channels SET last_message_at = now() WHERE id = $1"
    return [
        {
            "pid": 4712,
            "seconds": 94.0,
            "role": "authenticator",
            "state": "active",
            "query": query,
            "total": 2,
        },
        {
            "pid": 4718,
            "seconds": 41.0,
            "role": "authenticator",
            "state": "active",
            "query": "SELECT * FROM public.messages WHERE channel_id = $1 ORDER BY created_at",
            "total": 2,
        },
    ]


def _locks() -> list[dict[str, Any]]:
    query = "UPDATE public.channels SET last_message_at = now() WHERE id = $1"
    return [
        {
            "pid": 4712,
            "blockers": [4711],
            "seconds": 94.0,
            "role": "authenticator",
            "query": query,
            "total": 3,
        },
        {
            "pid": 4715,
            "blockers": [4711],
            "seconds": 63.0,
            "role": "authenticator",
            "query": query,
            "total": 3,
        },
        {
            "pid": 4719,
            "blockers": [4712],
            "seconds": 12.0,
            "role": "authenticator",
            "query": query,
            "total": 3,
        },
    ]
