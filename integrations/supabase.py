"""Supabase: Postgres health diagnostics over fixed read-only queries, and REST/Auth probes.

Each Postgres check opens one short-lived connection, starts a READ ONLY transaction,
sets statement_timeout and lock_timeout for it, runs constant SQL from
`integrations.supabase_checks`, and closes the connection. Nothing a user types ever
reaches SQL. A check that cannot run returns `DiagnosticResult.error` with a one-line
reason (never the DSN password or the API key) within its timeout; no check raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import asyncpg  # type: ignore[import-untyped]

from bot.domain.diagnostics import DiagnosticResult, Status, Table, one_line, redact
from bot.domain.playbooks import SUPABASE_HTTP_CHECKS, SUPABASE_SQL_CHECKS, SUPABASE_TITLES
from bot.errors import IntegrationError
from integrations import supabase_checks as q
from integrations.supabase_checks import Thresholds

__all__ = ["CHECKS", "HTTP_CHECKS", "SupabaseDiagnostics", "Thresholds"]

CHECKS = SUPABASE_SQL_CHECKS
HTTP_CHECKS = SUPABASE_HTTP_CHECKS

_TITLES = SUPABASE_TITLES
_MAX_STATEMENT_S = 5.0
_MAX_LOCK_WAIT_S = 1.0


class SupabaseDiagnostics:
    """Health checks of one Supabase project: its Postgres and its Kong-fronted APIs."""

    def __init__(
        self,
        *,
        db_url: str | None,
        rest_url: str | None = None,
        key: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        thresholds: Thresholds = Thresholds(),  # noqa: B008 - frozen, so a shared default is safe
    ) -> None:
        self._db_url = (
            db_url.replace("postgresql+asyncpg://", "postgresql://", 1) if db_url else None
        )
        self._rest_url = rest_url.rstrip("/") if rest_url else None
        self._key = key or None
        self._session = session
        self._timeout = timeout
        self.thresholds = thresholds
        self._secrets = _secrets_of(self._db_url, self._key)

    async def run(self, check: str) -> DiagnosticResult:
        """Run one check by name (one of CHECKS or HTTP_CHECKS)."""
        name = check.strip().lower().replace("-", "_")
        method = self._checks().get(name)
        if method is None:
            valid = ", ".join(CHECKS + HTTP_CHECKS)
            shown = " ".join(check.split())[:40]
            return DiagnosticResult.error(
                "Supabase", f"unknown check {shown!r}; valid checks: {valid}", source=q.SOURCE
            )
        return await method()

    async def run_all(self) -> list[DiagnosticResult]:
        """Every configured check, concurrently, each within its own timeout."""
        names: list[str] = []
        if self._db_url:
            names += CHECKS
        if self._rest_url or self._key:
            names += HTTP_CHECKS
        if not names:
            reason = "not configured: set SUPABASE_DB_URL, or SUPABASE_URL and SUPABASE_KEY"
            return [DiagnosticResult.error("Supabase", reason, source=q.SOURCE)]
        checks = self._checks()
        return list(await asyncio.gather(*(checks[name]() for name in names)))

    def _checks(self) -> dict[str, Callable[[], Awaitable[DiagnosticResult]]]:
        return {
            "connections": self.connections,
            "long_queries": self.long_queries,
            "locks": self.locks,
            "size": self.size,
            "cache_hit": self.cache_hit,
            "replication": self.replication,
            "rest": self.rest_health,
            "auth": self.auth_health,
        }

    # --- Postgres checks -------------------------------------------------------------------

    async def connections(self) -> DiagnosticResult:
        """Client connections in use (ours excluded) against max_connections."""

        async def check(conn: Any, title: str) -> DiagnosticResult:
            max_connections = int(await conn.fetchval(q.MAX_CONNECTIONS_SQL))
            rows = await conn.fetch(q.CONNECTIONS_SQL)
            return q.connections_result(title, rows, max_connections, self.thresholds)

        return await self._db_check("connections", check)

    async def long_queries(self) -> DiagnosticResult:
        """Client queries (not idle) running longer than the threshold."""

        async def check(conn: Any, title: str) -> DiagnosticResult:
            rows = await conn.fetch(q.LONG_QUERIES_SQL, float(self.thresholds.long_query_seconds))
            return q.long_queries_result(title, rows, self.thresholds)

        return await self._db_check("long_queries", check)

    async def locks(self) -> DiagnosticResult:
        """Backends blocked by another backend's lock, with who blocks them."""

        async def check(conn: Any, title: str) -> DiagnosticResult:
            rows = await conn.fetch(q.LOCKS_SQL)
            roots = q.root_blockers(rows)[:3]
            states = await conn.fetch(q.BACKENDS_SQL, roots) if roots else []
            by_pid = {int(r["pid"]): str(r["state"]) for r in states}
            return q.locks_result(title, rows, by_pid, self.thresholds)

        return await self._db_check("locks", check)

    async def size(self) -> DiagnosticResult:
        """The database size and its five largest tables."""

        async def check(conn: Any, title: str) -> DiagnosticResult:
            database = await conn.fetchrow(q.DATABASE_SIZE_SQL)
            tables = None
            # A savepoint, so a table held by an ACCESS EXCLUSIVE lock costs only the table list.
            with contextlib.suppress(asyncpg.LockNotAvailableError):
                async with conn.transaction():
                    tables = await conn.fetch(q.TOP_TABLES_SQL)
            return q.size_result(title, database, tables, self.thresholds)

        return await self._db_check("size", check)

    async def cache_hit(self) -> DiagnosticResult:
        """Shared-buffer hit rate of table reads since the statistics were last reset."""

        async def check(conn: Any, title: str) -> DiagnosticResult:
            row = await conn.fetchrow(q.CACHE_HIT_SQL)
            return q.cache_hit_result(title, row, self.thresholds)

        return await self._db_check("cache_hit", check)

    async def replication(self) -> DiagnosticResult:
        """Replay lag: of each replica on a primary, or of this server if it is a standby."""

        async def check(conn: Any, title: str) -> DiagnosticResult:
            recovery = await conn.fetchrow(q.RECOVERY_SQL)
            if recovery["standby"]:
                return q.standby_result(title, recovery["replay_lag"], self.thresholds)
            rows = await conn.fetch(q.REPLICAS_SQL)
            return q.replicas_result(title, rows, self.thresholds)

        return await self._db_check("replication", check)

    async def _db_check(
        self, name: str, check: Callable[[Any, str], Awaitable[DiagnosticResult]]
    ) -> DiagnosticResult:
        title = _TITLES[name]
        if not self._db_url:
            return DiagnosticResult.error(
                title, "not configured: set SUPABASE_DB_URL", source=q.SOURCE
            )

        async def body() -> DiagnosticResult:
            async with self._read_only() as conn:
                result = await check(conn, title)
            # Query texts come from other sessions: mask our own secrets if one shows up there.
            table = result.table and Table(
                result.table.columns,
                tuple(tuple(self._scrub(c) for c in row) for row in result.table.rows),
            )
            return replace(result, text=self._scrub(result.text), table=table)

        return await self._guarded(title, body())

    @contextlib.asynccontextmanager
    async def _read_only(self) -> AsyncIterator[Any]:
        """A fresh connection inside a READ ONLY transaction with statement and lock timeouts."""
        statement_s = min(self._timeout, _MAX_STATEMENT_S)
        conn = await asyncpg.connect(
            self._db_url,
            timeout=self._timeout,
            command_timeout=self._timeout,
            statement_cache_size=0,  # transaction-mode poolers (Supavisor, PgBouncer)
            server_settings={"application_name": q.APP_NAME},
        )
        try:
            await conn.transaction(readonly=True).start()
            await conn.execute(
                q.SESSION_LIMITS_SQL,
                f"{int(statement_s * 1000)}ms",
                f"{int(min(statement_s, _MAX_LOCK_WAIT_S) * 1000)}ms",
            )
            yield conn
        except BaseException:
            conn.terminate()  # no round trip: the server may be the reason we are failing
            raise
        # Closing ends the read-only transaction; there is nothing to commit.
        await conn.close(timeout=self._timeout)

    # --- HTTP probes -----------------------------------------------------------------------

    async def rest_health(self) -> DiagnosticResult:
        """PostgREST behind Kong answers GET /rest/v1/ with the API key."""
        title = _TITLES["rest"]
        if not (self._rest_url and self._key):
            return self._http_not_configured(title)
        headers = {"apikey": self._key, "Authorization": f"Bearer {self._key}"}

        async def body() -> DiagnosticResult:
            status, text = await self._get(f"{self._rest_url}/rest/v1/", headers)
            if status == 200:
                return self._ok(title, "PostgREST answered 200")
            return self._http_failure(title, status, text)

        return await self._guarded(title, body())

    async def auth_health(self) -> DiagnosticResult:
        """GoTrue behind Kong answers GET /auth/v1/health (which needs the apikey header)."""
        title = _TITLES["auth"]
        if not (self._rest_url and self._key):
            return self._http_not_configured(title)
        url, headers = f"{self._rest_url}/auth/v1/health", {"apikey": self._key}

        async def body() -> DiagnosticResult:
            status, text = await self._get(url, headers)
            if status != 200:
                return self._http_failure(title, status, text)
            data = _json_object(text)
            version, name = data.get("version"), data.get("name") or "Auth"
            if not isinstance(version, str) or not isinstance(name, str):
                return self._error(title, "unexpected answer from /auth/v1/health (no version)")
            return self._ok(title, one_line(f"{name} {version}", 80))

        return await self._guarded(title, body())

    async def _get(self, url: str, headers: dict[str, str]) -> tuple[int, str]:
        if self._session is not None:
            return await self._fetch(self._session, url, headers)
        async with aiohttp.ClientSession() as session:
            return await self._fetch(session, url, headers)

    async def _fetch(
        self, session: aiohttp.ClientSession, url: str, headers: dict[str, str]
    ) -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with session.get(
            url, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            return response.status, await response.text(errors="replace")

    def _http_failure(self, title: str, status: int, text: str) -> DiagnosticResult:
        data = _json_object(text)
        message = data.get("message") or data.get("msg")
        detail = f"HTTP {status}" + (f": {message}" if isinstance(message, str) else "")
        if status in (401, 403):
            return self._error(title, f"{detail} (check SUPABASE_KEY)")
        if status >= 500:
            text = self._scrub(one_line(redact(detail), 200))
            return DiagnosticResult(title=title, status=Status.FAIL, text=text, source=q.SOURCE)
        return self._error(title, detail)

    def _http_not_configured(self, title: str) -> DiagnosticResult:
        missing = [
            n for n, v in (("SUPABASE_URL", self._rest_url), ("SUPABASE_KEY", self._key)) if not v
        ]
        return self._error(title, "not configured: set " + " and ".join(missing))

    # --- shared ----------------------------------------------------------------------------

    async def _guarded(self, title: str, work: Awaitable[DiagnosticResult]) -> DiagnosticResult:
        """Run a check within the timeout; any failure becomes an error result."""
        try:
            async with asyncio.timeout(self._timeout):
                return await work
        except Exception as exc:
            return self._error(title, self._reason(exc))

    def _reason(self, exc: Exception) -> str:
        """One line that says what went wrong, without a stack trace."""
        if isinstance(exc, TimeoutError):
            return f"no answer within {self._timeout:g}s"
        if isinstance(exc, asyncpg.QueryCanceledError):
            return f"query cancelled: {exc}"
        if isinstance(exc, asyncpg.PostgresError):
            return f"database error: {exc}"
        if isinstance(exc, aiohttp.ClientError):
            return f"cannot reach Supabase: {type(exc).__name__}: {exc}"
        if isinstance(exc, OSError):
            return f"cannot connect: {exc}"
        if isinstance(exc, ValueError | asyncpg.ClientConfigurationError):
            return f"invalid settings: {exc}"
        return f"{type(exc).__name__}: {exc}"

    async def values_for(
        self, sql: str, windows: Sequence[tuple[datetime, datetime]]
    ) -> list[float | None]:
        """A KPI: the operator's SELECT once per window, `:start` and `:end` bound, read-only.

        Raises IntegrationError with a one-line reason (secrets masked).
        """
        if not self._db_url:
            raise IntegrationError("not configured: set SUPABASE_DB_URL")
        statement, names = bind_names(sql)
        try:
            async with asyncio.timeout(self._timeout), self._read_only() as conn:
                values: list[float | None] = []
                for start, end in windows:
                    bounds = {"start": start, "end": end}
                    row = await conn.fetchrow(statement, *(bounds[n] for n in names))
                    values.append(_number(row))
                return values
        except IntegrationError:
            raise
        except Exception as exc:
            raise IntegrationError(self._scrub(one_line(self._reason(exc), 200))) from None

    def _ok(self, title: str, text: str) -> DiagnosticResult:
        text = self._scrub(redact(text))
        return DiagnosticResult(title=title, status=Status.OK, text=text, source=q.SOURCE)

    def _error(self, title: str, reason: str) -> DiagnosticResult:
        return DiagnosticResult.error(title, self._scrub(reason), source=q.SOURCE)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _secrets_of(db_url: str | None, key: str | None) -> tuple[str, ...]:
    """The literal secrets to mask wherever they might be echoed back."""
    found: list[str] = [key] if key else []
    if db_url:
        with contextlib.suppress(ValueError):
            password = urlsplit(db_url).password
            if password:
                found += [password, unquote(password)]
    return tuple(s for s in found if len(s) >= 3)


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


_NAMED = re.compile(r"(?<!:):(start|end)\b")


def bind_names(sql: str) -> tuple[str, list[str]]:
    """`:start` / `:end` as numbered parameters, only those the SQL uses, in first-use order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}::timestamptz"

    return _NAMED.sub(number, sql), names


def _number(row: Any) -> float | None:
    if row is None or len(row) != 1:
        raise IntegrationError("the KPI's SELECT must return one row with one number")
    value = row[0]
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise IntegrationError(
            f"the KPI's SELECT returned {type(value).__name__}, not a number"
        ) from None
