"""Supabase diagnostics against the machine's real Postgres and a Kong-like HTTP server."""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.domain.diagnostics import DiagnosticResult, Status
from integrations.supabase import CHECKS, SupabaseDiagnostics, Thresholds
from integrations.supabase_checks import duration, replicas_result, short_query, standby_result
from tests.builders import contract_payload

PG = os.environ.get("TOCSIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
KEY = "anon-key-0123456789abcdef"

Connect = Callable[[], Awaitable[Any]]


def diagnostics(**thresholds: Any) -> SupabaseDiagnostics:
    return SupabaseDiagnostics(db_url=PG, timeout=5, thresholds=Thresholds(**thresholds))


def row_of(result: DiagnosticResult, pid: int) -> tuple[str, ...]:
    assert result.table is not None, result
    rows = [r for r in result.table.rows if r[0] == str(pid)]
    assert rows, f"pid {pid} not in {result.table.rows}"
    return rows[0]


@pytest.fixture
async def scratch() -> AsyncIterator[str]:
    """A table of 5,000 rows with a unique name, dropped afterwards."""
    name = f"tocsin_supabase_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(
            f"CREATE TABLE {name} AS SELECT g AS id, 0 AS v FROM generate_series(1, 5000) g;"
            f"ALTER TABLE {name} ADD PRIMARY KEY (id)"
        )
        yield name
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.close()


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Opens extra connections for the test and closes them all at the end."""
    opened: list[Any] = []

    async def open_one() -> Any:
        conn = await asyncpg.connect(PG)
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        conn.terminate()


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


# --- Postgres checks ------------------------------------------------------------------------


def used_connections(result: DiagnosticResult) -> int:
    match = re.fullmatch(r"(\d+)/(\d+) connections \((\d+)%\)", result.text)
    assert match, result.text
    return int(match[1])


async def test_connections_count_rises_with_new_connections(connect: Connect) -> None:
    diag = diagnostics()
    # Other people's sessions may come and go on this server: allow a few tries.
    for _ in range(5):
        before = used_connections(await diag.connections())
        extra = [await connect() for _ in range(3)]
        after = await diag.connections()
        if used_connections(after) - before >= 3:
            break
        for conn in extra:
            await conn.close()
    else:
        pytest.fail("the count never rose by 3")
    assert after.status is Status.OK
    assert after.table is not None
    assert after.table.columns == ("role", "state", "connections")
    assert ("postgres", "idle") in [r[:2] for r in after.table.rows]


@pytest.mark.parametrize(
    ("warn", "fail", "expected"),
    [(0.0001, 0.9999, Status.WARN), (0.0001, 0.0002, Status.FAIL), (0.9998, 0.9999, Status.OK)],
)
async def test_connections_graded_against_thresholds(
    connect: Connect, warn: float, fail: float, expected: Status
) -> None:
    await connect()
    result = await diagnostics(connections_warn=warn, connections_fail=fail).connections()
    assert result.status is expected, result


async def test_long_running_query_is_reported(connect: Connect) -> None:
    sleeper, admin = await connect(), await connect()
    pid = await sleeper.fetchval("SELECT pg_backend_pid()")
    task = asyncio.create_task(sleeper.execute(f"SELECT pg_sleep(5),   '{KEY}'"))
    try:
        await asyncio.sleep(1.5)
        limits = Thresholds(long_query_seconds=1, long_queries_fail=1000)
        diag = SupabaseDiagnostics(db_url=PG, key=KEY, thresholds=limits)
        result = await diag.long_queries()
        assert result.status is Status.WARN, result
        assert "running longer than 1s" in result.text
        _, running, user, state, query = row_of(result, pid)
        assert re.fullmatch(r"\d+s", running)
        assert (user, state) == ("postgres", "active")
        # Whitespace collapsed, and our own key masked even inside another session's query.
        assert query == "SELECT pg_sleep(5), '***'"
    finally:
        await admin.execute("SELECT pg_cancel_backend($1)", pid)
        with pytest.raises(asyncpg.QueryCanceledError):
            await task


async def test_short_queries_and_our_own_session_are_not_long(connect: Connect) -> None:
    await connect()
    result = await diagnostics(long_query_seconds=3600).long_queries()
    assert (result.status, result.text) == (Status.OK, "no queries running longer than 1h 00m")


async def test_blocked_backend_is_shown_with_its_blocker(scratch: str, connect: Connect) -> None:
    holder, waiter, admin = await connect(), await connect(), await connect()
    holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
    waiter_pid = await waiter.fetchval("SELECT pg_backend_pid()")
    await holder.execute(f"BEGIN; UPDATE {scratch} SET v = v + 1 WHERE id = 1")
    task = asyncio.create_task(waiter.execute(f"UPDATE {scratch} SET v = v + 1 WHERE id = 1"))
    try:

        async def blocked() -> bool:
            pids = await admin.fetchval("SELECT pg_blocking_pids($1)", waiter_pid)
            return bool(pids)

        await wait_until(blocked)
        result = await diagnostics(blocked_fail=1000).locks()
        assert result.status is Status.WARN, result
        assert result.table is not None
        assert result.table.columns == ("pid", "blocked by", "waiting", "user", "query")
        _, blockers, _, _, query = row_of(result, waiter_pid)
        assert str(holder_pid) in blockers.split(", ")
        assert query.startswith(f"UPDATE {scratch}")
        assert f"{holder_pid} (idle in transaction)" in result.text
    finally:
        await holder.execute("ROLLBACK")
        await asyncio.wait_for(task, 5)
    assert (await diagnostics().locks()).text == "no blocked queries"


async def test_size_reports_database_and_largest_tables(scratch: str) -> None:
    result = await diagnostics().size()
    assert result.status is Status.OK, result
    assert re.fullmatch(r"database test is \d+ (bytes|kB|MB|GB|TB)", result.text)
    assert result.table is not None
    assert 1 <= len(result.table.rows) <= 5
    assert all(re.fullmatch(r"\d+ (bytes|kB|MB|GB|TB)", size) for _, size in result.table.rows)


async def test_size_threshold_and_a_locked_table(scratch: str, connect: Connect) -> None:
    holder = await connect()
    await holder.execute(f"BEGIN; LOCK TABLE {scratch} IN ACCESS EXCLUSIVE MODE")
    result = await SupabaseDiagnostics(
        db_url=PG, timeout=30, thresholds=Thresholds(size_warn_bytes=1)
    ).size()
    # The database size still comes back; the lock costs only the table list, not the check
    # (had the check waited for the lock, it would be an error: "no answer within 30s").
    assert result.status is Status.WARN, result
    assert result.text.endswith("table sizes unavailable (a table is locked)")
    await holder.execute("ROLLBACK")


async def test_cache_hit_rate_after_reads(scratch: str, connect: Connect) -> None:
    reader = await connect()
    for _ in range(30):
        await reader.fetchval(f"SELECT sum(v) FROM {scratch}")
    await reader.execute("SELECT pg_stat_force_next_flush()")
    await reader.execute("SELECT 1")
    diag = diagnostics()

    async def counted() -> bool:
        return (await diag.cache_hit()).text != "no table reads yet"

    await wait_until(counted)
    result = await diag.cache_hit()
    assert result.status is Status.OK, result
    match = re.fullmatch(
        r"table cache hit ([\d.]+)%? ?\(([\d,]+) hits, ([\d,]+) disk reads\)", result.text
    )
    assert match, result.text
    assert int(match[2].replace(",", "")) >= 30
    assert result.table is not None and result.table.rows[0][0] == "tables"


async def test_replication_without_replicas() -> None:
    result = await diagnostics().replication()
    assert (result.status, result.text) == (Status.OK, "no replicas")


async def test_the_session_is_read_only_with_timeouts() -> None:
    diag = SupabaseDiagnostics(db_url=PG, timeout=2)
    # The private helper every check runs in: prove it refuses writes.
    async with diag._read_only() as conn:
        assert await conn.fetchval("SHOW transaction_read_only") == "on"
        assert await conn.fetchval("SHOW statement_timeout") == "2s"
        assert await conn.fetchval("SHOW lock_timeout") == "1s"
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("CREATE TABLE tocsin_must_not_exist (id int)")


async def test_run_by_name_and_unknown_names() -> None:
    diag = diagnostics()
    assert (await diag.run("Long-Queries")).title == "Supabase long queries"
    result = await diag.run("DROP TABLE users")
    assert result.status is Status.ERROR
    assert "unknown check 'DROP TABLE users'" in result.text
    assert all(name in result.text for name in (*CHECKS, "rest", "auth"))


async def test_run_all_runs_every_database_check() -> None:
    results = await diagnostics().run_all()
    assert [r.title for r in results] == [
        "Supabase connections",
        "Supabase long queries",
        "Supabase locks",
        "Supabase database size",
        "Supabase cache hit rate",
        "Supabase replication",
    ]
    assert all(r.status is not Status.ERROR and r.source == "supabase" for r in results), results


# --- failures ---------------------------------------------------------------------------------


async def test_not_configured() -> None:
    diag = SupabaseDiagnostics(db_url=None)
    for name in CHECKS:
        result = await diag.run(name)
        assert (result.status, result.text) == (
            Status.ERROR,
            "not configured: set SUPABASE_DB_URL",
        )
    assert (await diag.rest_health()).text == "not configured: set SUPABASE_URL and SUPABASE_KEY"
    [only] = await diag.run_all()
    assert only.status is Status.ERROR and "not configured" in only.text


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://postgres:s3cretpw@127.0.0.1:1/test",
        "postgresql://postgres:s3cretpw@[::1/test",
        "host=127.0.0.1 port=1 user=postgres password=s3cretpw",
        "postgresql://postgres:s3cretpw@127.0.0.1:5432/tocsin_no_such_db",
    ],
)
async def test_connection_errors_are_short_and_secret_free(dsn: str) -> None:
    result = await SupabaseDiagnostics(db_url=dsn, timeout=30).connections()
    assert result.status is Status.ERROR
    # The cause, at once: not the timeout's "no answer within 30s".
    assert "no answer" not in result.text, result.text
    assert "s3cretpw" not in result.text and "\n" not in result.text
    assert "Traceback" not in result.text


@pytest.fixture
async def stalled_port() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_stalled_database_times_out(stalled_port: int) -> None:
    diag = SupabaseDiagnostics(
        db_url=f"postgresql://postgres:s3cretpw@127.0.0.1:{stalled_port}/test", timeout=1
    )
    result = await diag.locks()
    assert (result.status, result.text) == (Status.ERROR, "no answer within 1s")


async def test_stalled_http_times_out(stalled_port: int) -> None:
    diag = SupabaseDiagnostics(
        db_url=None, rest_url=f"http://127.0.0.1:{stalled_port}", key=KEY, timeout=1
    )
    results = await asyncio.gather(diag.rest_health(), diag.auth_health())
    assert [(r.status, r.text) for r in results] == [(Status.ERROR, "no answer within 1s")] * 2
    assert all(KEY not in r.text for r in results)


# --- REST and Auth behind a Kong-like gateway -------------------------------------------------


@pytest.fixture
async def kong() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Kong's key-auth in front of PostgREST and GoTrue; `mode` switches its behaviour."""
    state = {"mode": "ok"}

    def key_problem(request: web.Request) -> web.Response | None:
        given = request.headers.get("apikey")
        if given is None:
            return web.json_response({"message": "No API key found in request"}, status=401)
        if given != KEY:
            # Echo the key back: a careless gateway must not make us leak it.
            return web.json_response({"message": f"Invalid API key {given}"}, status=401)
        if state["mode"] == "down":
            return web.json_response({"message": "An invalid response was received"}, status=502)
        return None

    async def rest(request: web.Request) -> web.Response:
        if problem := key_problem(request):
            return problem
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        return web.json_response({"swagger": "2.0", "paths": {}})

    async def health(request: web.Request) -> web.Response:
        if problem := key_problem(request):
            return problem
        if state["mode"] == "garbage":
            return web.Response(text="<html>hello</html>", content_type="text/html")
        return web.json_response(contract_payload("supabase-auth-health.json"))

    app = web.Application()
    app.router.add_get("/rest/v1/", rest)
    app.router.add_get("/auth/v1/health", health)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/")), state
    await server.close()


async def test_rest_and_auth_healthy(kong: tuple[str, dict[str, str]]) -> None:
    url, _ = kong
    async with aiohttp.ClientSession() as session:
        diag = SupabaseDiagnostics(db_url=None, rest_url=url, key=KEY, session=session)
        rest, auth = await diag.run("rest"), await diag.run("auth")
    assert (rest.status, rest.text) == (Status.OK, "PostgREST answered 200")
    assert (auth.status, auth.text) == (Status.OK, "GoTrue v2.60.7")


async def test_wrong_key_is_an_error_without_the_key(kong: tuple[str, dict[str, str]]) -> None:
    url, _ = kong
    wrong = "wrong-key-abcdef0123456789"
    diag = SupabaseDiagnostics(db_url=None, rest_url=url, key=wrong)
    for result in await diag.run_all():
        assert result.status is Status.ERROR, result
        assert result.text.startswith("HTTP 401: Invalid API key")
        assert "check SUPABASE_KEY" in result.text
        assert wrong not in result.text


async def test_gateway_errors_fail_and_garbage_is_an_error(
    kong: tuple[str, dict[str, str]],
) -> None:
    url, state = kong
    diag = SupabaseDiagnostics(db_url=None, rest_url=url, key=KEY)
    state["mode"] = "down"
    for result in await diag.run_all():
        assert (result.status, result.text) == (
            Status.FAIL,
            "HTTP 502: An invalid response was received",
        )
    state["mode"] = "garbage"
    result = await diag.auth_health()
    assert result.status is Status.ERROR
    assert "unexpected answer" in result.text


async def test_unreachable_http_is_an_error() -> None:
    diag = SupabaseDiagnostics(db_url=None, rest_url="http://127.0.0.1:1", key=KEY, timeout=1)
    result = await diag.auth_health()
    assert result.status is Status.ERROR and result.text.startswith("cannot reach Supabase")


async def test_run_all_with_everything_configured(kong: tuple[str, dict[str, str]]) -> None:
    url, _ = kong
    results = await SupabaseDiagnostics(db_url=PG, rest_url=url, key=KEY).run_all()
    assert len(results) == 8
    assert [r.title for r in results][-2:] == ["Supabase REST", "Supabase Auth"]
    assert all(r.status is not Status.ERROR for r in results), results


# --- grading without a real replica -----------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45.9, "45s"), (65, "1m 05s"), (3720, "1h 02m"), (2 * 86400 + 4 * 3600, "2d 04h")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_short_query_masks_passwords_and_collapses_space() -> None:
    text = short_query("ALTER ROLE app\n   WITH PASSWORD 'hunter2'   ")
    assert text == "ALTER ROLE app WITH PASSWORD '***'"
    token = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl"
    assert short_query(f"SELECT set_config('request.jwt', '{token}', true)") == (
        "SELECT set_config('request.jwt', 'eyJ***', true)"
    )
    assert len(short_query("SELECT " + "x, " * 100)) == 80


@pytest.mark.parametrize(
    ("lag", "state", "expected"),
    [
        (None, "streaming", Status.OK),
        (2.0, "streaming", Status.OK),
        (45.0, "streaming", Status.WARN),
        (400.0, "streaming", Status.FAIL),
        (0.0, "catchup", Status.WARN),
    ],
)
def test_replica_lag_grading(lag: float | None, state: str, expected: Status) -> None:
    row = {"name": "replica-1", "state": state, "sync_state": "async", "lag": lag}
    result = replicas_result("Supabase replication", [row], Thresholds())
    assert result.status is expected
    assert result.text.startswith("1 replica, max replay lag")


def test_standby_lag_grading() -> None:
    assert standby_result("r", 5.0, Thresholds()).status is Status.OK
    assert standby_result("r", 600.0, Thresholds()).status is Status.FAIL
    assert standby_result("r", None, Thresholds()).status is Status.WARN
