"""KPI sources against real servers: a Prometheus backfilled with ten known days, the machine's
Postgres with a throwaway table of messages, and one digest built from both plus the store's
incident statistics.

Every day is UTC and every rate is constant within its day, so `increase(...[1d])` at a day's
end sees exactly that day's samples (Prometheus 2.x ranges include both ends): no extrapolation,
and the expected figures are exact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from pydantic import ValidationError

from bot.config.digest import DigestSettings, KpiConfig
from bot.domain.digest_schedule import ScheduledDigest
from bot.domain.incidents import IncidentStatus, Severity
from bot.domain.kpi import KpiDef, Level, Unit, day_windows
from bot.errors import IntegrationError
from bot.services.digest import DigestBuilder, KpiSources
from bot.slack.render.digest import render_digest
from bot.store.digest import DigestStore
from bot.store.repository import Database, SqlIncidentTransaction
from integrations.prometheus import PrometheusDiagnostics
from integrations.supabase import SupabaseDiagnostics
from tests.integrations.test_prometheus import diagnostics  # noqa: F401 - a fixture
from tests.integrations.test_supabase import PG
from tests.realservers import PrometheusServer, free_port, require_binaries

STEP = timedelta(minutes=15)
REQUESTS_PER_STEP = 100.0  # 9,600 a day
# Errors per step on each of the ten backfilled days, oldest first: the day's error rate in %.
ERRORS_PER_STEP = (1.0, 2.0, 0.5, 0.0, 3.0, 1.5, 1.0, 2.5, 4.0, 1.2)
ERROR_RATE = "Error rate"  # the shipped KPI, run as shipped
TOTAL = "sum(increase(http_requests_total[1d]))"
MESSAGES_PER_DAY = (3, 0, 5, 2, 7, 1, 4, 6)  # the eight digest days, oldest first
PASSWORD = "kpi-s3cret-pw"


def end_of_yesterday() -> datetime:
    """Midnight UTC today: the end of the last whole day, and of the backfill."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# -- Prometheus with ten known days -----------------------------------------------------------


@dataclass(frozen=True)
class Prom:
    url: str
    end: datetime  # the last sample; day i of the backfill ends at end - (9 - i) days


def _openmetrics(end: datetime) -> str:
    """http_requests_total for code 200 and 500, one sample every STEP over the ten days."""
    start = end - timedelta(days=len(ERRORS_PER_STEP))
    steps = int((end - start) / STEP)
    per_day = int(timedelta(days=1) / STEP)
    lines = ["# TYPE http_requests counter"]
    for code in ("200", "500"):
        value = 1000.0
        for i in range(steps + 1):
            lines.append(
                f'http_requests_total{{code="{code}"}} {value} {(start + i * STEP).timestamp():.0f}'
            )
            errors = ERRORS_PER_STEP[min(i // per_day, len(ERRORS_PER_STEP) - 1)]
            value += errors if code == "500" else REQUESTS_PER_STEP - errors
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    require_binaries("prometheus", "promtool")
    tmp = tmp_path_factory.mktemp("prometheus-kpi")
    server = PrometheusServer(tmp, scrape_targets=[])
    end = end_of_yesterday()
    # test_prometheus's backfill writes its own fixed series, so only the promtool call is ours.
    source = tmp / "days.om"
    source.write_text(_openmetrics(end))
    server.storage_path.mkdir(parents=True)
    promtool = shutil.which("promtool") or "promtool"
    subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(source),
            str(server.storage_path),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with server:
        yield Prom(server.url, end)


@pytest.fixture
def metrics(
    prom: Prom,
    diagnostics: Callable[..., PrometheusDiagnostics],  # noqa: F811
) -> PrometheusDiagnostics:
    return diagnostics(prom.url, timeout=10.0)


def shipped(name: str) -> KpiDef:
    return next(k for k in DigestSettings().definitions() if k.name == name)


def day_ends(end: datetime, days: int) -> list[datetime]:
    return [end - timedelta(days=days - 1 - i) for i in range(days)]


@pytest.mark.integration
async def test_error_rate_at_each_day_end(metrics: PrometheusDiagnostics, prom: Prom) -> None:
    values = await metrics.values_at(shipped(ERROR_RATE).query, day_ends(prom.end, 8))

    # The last eight backfilled days; the first two only feed the windows before them.
    assert values == pytest.approx([e / REQUESTS_PER_STEP for e in ERRORS_PER_STEP[2:]], abs=1e-9)
    assert values[1] == 0.0  # the day without errors is 0, not "no data"


@pytest.mark.integration
async def test_total_requests_a_day_and_days_without_data(
    metrics: PrometheusDiagnostics, prom: Prom
) -> None:
    moments = [prom.end - timedelta(days=20), prom.end - timedelta(days=10), *day_ends(prom.end, 3)]

    values = await metrics.values_at(TOTAL, moments)

    # Before the data and at its very first sample (one sample: no increase) there is nothing.
    assert values[:2] == [None, None]
    assert values[2:] == pytest.approx([9600.0] * 3, rel=1e-9)


@pytest.mark.integration
async def test_nan_is_no_value(metrics: PrometheusDiagnostics, prom: Prom) -> None:
    errors = 'sum(increase(http_requests_total{code="500"}[1d]))'
    moments = day_ends(prom.end, 8)[:2]  # 0.5 % of traffic, then the day without errors

    values = await metrics.values_at(f"{errors} / {errors}", moments)

    assert values == [pytest.approx(1.0), None]  # 0/0 on the second day


@pytest.mark.integration
async def test_several_series_must_be_aggregated(
    metrics: PrometheusDiagnostics, prom: Prom
) -> None:
    with pytest.raises(IntegrationError) as caught:
        await metrics.values_at("sum by (code) (increase(http_requests_total[1d]))", [prom.end])

    assert str(caught.value) == ("the query gives 2 series, not one: aggregate it (sum, avg, max)")


@pytest.mark.integration
async def test_bad_query_is_one_line(metrics: PrometheusDiagnostics, prom: Prom) -> None:
    with pytest.raises(IntegrationError) as caught:
        await metrics.values_at("sum(increase(http_requests_total[1d])", [prom.end])

    text = str(caught.value)
    assert text.startswith("Prometheus bad_data: ") and "parse error" in text, text
    assert "\n" not in text and "Traceback" not in text


async def test_prometheus_down_is_a_connection_error_not_a_timeout(
    diagnostics: Callable[..., PrometheusDiagnostics],  # noqa: F811
) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(IntegrationError) as caught:
        await diagnostics(url, timeout=30.0).values_at(TOTAL, day_ends(end_of_yesterday(), 8))

    # Refused at once: waiting out the timeout would say "timed out after 30s".
    assert str(caught.value) == f"cannot connect to {url}: connection refused"


# -- Postgres with a table of messages --------------------------------------------------------


@dataclass(frozen=True)
class Messages:
    table: str  # schema-qualified
    end: datetime

    def count_sql(self) -> str:
        return f"select count(*) from {self.table} where created_at >= :start and created_at < :end"


@pytest.fixture
async def messages() -> AsyncIterator[Messages]:
    """MESSAGES_PER_DAY over the eight days before today (UTC), plus one row on each side."""
    schema = f"tocsin_kpi_{uuid.uuid4().hex[:10]}"
    end = end_of_yesterday()
    first = end - timedelta(days=len(MESSAGES_PER_DAY))
    stamps = [first - timedelta(microseconds=1), end]  # just outside the eight days
    for day, count in enumerate(MESSAGES_PER_DAY):
        # The first of a day sits exactly on its start, which belongs to it.
        stamps += [first + timedelta(days=day, minutes=97 * i) for i in range(count)]
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(
            f"CREATE SCHEMA {schema};"
            f"CREATE TABLE {schema}.messages (id serial PRIMARY KEY, created_at timestamptz)"
        )
        await conn.executemany(
            f"INSERT INTO {schema}.messages (created_at) VALUES ($1)", [(s,) for s in stamps]
        )
        yield Messages(f"{schema}.messages", end)
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def supabase(dsn: str = PG, timeout: float = 5.0) -> SupabaseDiagnostics:
    return SupabaseDiagnostics(db_url=dsn, timeout=timeout)


def windows_to(end: datetime) -> list[tuple[datetime, datetime]]:
    return day_windows((end - timedelta(days=1)).date(), UTC, len(MESSAGES_PER_DAY))


async def test_messages_a_day(messages: Messages) -> None:
    values = await supabase().values_for(messages.count_sql(), windows_to(messages.end))

    assert values == [float(n) for n in MESSAGES_PER_DAY]


async def test_the_shipped_query_shapes_work(messages: Messages) -> None:
    """Arithmetic on the bound window and a NULL result, as the shipped KPIs write them."""
    database = supabase()
    windows = windows_to(messages.end)[-1:]

    assert await database.values_for("select extract(epoch from :end - :start)", windows) == [
        86400.0
    ]
    nothing = (
        f"select avg(id) from {messages.table} where created_at between :start and :end and false"
    )
    assert await database.values_for(nothing, windows) == [None]


@pytest.mark.parametrize(
    ("select", "reason"),
    [
        ("count(*), max(id)", "the KPI's SELECT must return one row with one number"),
        ("'many'::text", "the KPI's SELECT returned str, not a number"),
    ],
)
async def test_not_one_number_is_an_error(messages: Messages, select: str, reason: str) -> None:
    sql = f"select {select} from {messages.table} where created_at >= :start and created_at < :end"

    with pytest.raises(IntegrationError) as caught:
        await supabase().values_for(sql, windows_to(messages.end))

    assert str(caught.value) == reason


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        # Two statements: refused by the extended query protocol before anything runs.
        (
            "{count}; delete from {table}",
            "database error: cannot insert multiple commands into a prepared statement",
        ),
        # One statement that writes: refused by the READ ONLY transaction.
        (
            "with gone as (delete from {table} where created_at >= :start and created_at < :end"
            " returning 1) select count(*) from gone",
            # Postgres names the statement's top-level command, SELECT, not the DELETE.
            "database error: cannot execute SELECT in a read-only transaction",
        ),
    ],
)
async def test_writes_are_refused(messages: Messages, sql: str, reason: str) -> None:
    statement = sql.format(count=messages.count_sql(), table=messages.table)

    with pytest.raises(IntegrationError) as caught:
        await supabase().values_for(statement, windows_to(messages.end))

    assert str(caught.value) == reason
    conn = await asyncpg.connect(PG)
    try:
        assert await conn.fetchval(f"select count(*) from {messages.table}") == 2 + sum(
            MESSAGES_PER_DAY
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("where", ["created_at < :end", "created_at >= :start", "true"])
async def test_a_running_total_needs_only_one_bound(messages: Messages, where: str) -> None:
    sql = f"select count(*) from {messages.table} where {where}"

    values = await supabase().values_for(sql, windows_to(messages.end)[-1:])

    assert values[0] is not None


def test_config_refuses_a_second_statement() -> None:
    with pytest.raises(ValidationError, match="single SELECT"):
        KpiConfig(name="Sneaky", source="supabase", sql="select 1; delete from public.messages")


@pytest.mark.parametrize(
    ("dsn", "sql"),
    [
        # Trust auth ignores the password: the connection works and the error quotes the SQL.
        (
            f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/test",
            f"select '{PASSWORD}'::int where :start < :end",
        ),
        (f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/test", "select :start < :end"),
        (
            f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/tocsin_no_such_db",
            "select :start < :end",
        ),
        (f"postgresql://postgres:{PASSWORD}@[::1/test", "select :start < :end"),
    ],
)
async def test_errors_never_show_the_password(dsn: str, sql: str) -> None:
    with pytest.raises(IntegrationError) as caught:
        await supabase(dsn, timeout=30.0).values_for(sql, windows_to(end_of_yesterday()))

    text = str(caught.value)
    assert "no answer" not in text, text  # the cause, at once: not the 30 s timeout
    assert PASSWORD not in text and "s3cret" not in text, text
    assert "\n" not in text and "Traceback" not in text


async def test_database_not_configured() -> None:
    with pytest.raises(IntegrationError, match="not configured: set SUPABASE_DB_URL"):
        await SupabaseDiagnostics(db_url=None).values_for("select 1", [])


# -- one digest from every source -------------------------------------------------------------


async def add_incidents(db: Database, end: datetime) -> None:
    """Yesterday (the day before `end`): A and B opened, A and C resolved, B still open."""
    day = timedelta(days=1)
    hour, minute = timedelta(hours=1), timedelta(minutes=1)
    # (severity, opened, acknowledged, resolved)
    rows: Sequence[tuple[Severity, datetime, datetime | None, datetime | None]] = [
        (Severity.SEV1, end - day + hour, end - day + hour + 10 * minute, end - day + 3 * hour),
        (Severity.SEV2, end - day + 5 * hour, end - day + 5 * hour + 20 * minute, None),
        (Severity.SEV3, end - 3 * day, end - 3 * day + 5 * minute, end - day + 3 * hour),
        (
            Severity.SEV3,
            end - 2 * day + hour,
            end - 2 * day + 90 * minute,
            end - 2 * day + 2 * hour,
        ),
        (Severity.SEV4, end - 30 * day, None, end - 20 * day),  # long gone
    ]
    async with db.session() as session:
        store = SqlIncidentTransaction(session)
        for n, (severity, opened, acked, resolved) in enumerate(rows):
            incident = await store.declare_incident(
                title=f"incident {n}", severity=severity, actor="U0TEST", at=opened
            )
            status = IncidentStatus.RESOLVED if resolved else IncidentStatus.ACKNOWLEDGED
            changed = replace(incident, acknowledged_at=acked, resolved_at=resolved, status=status)
            await store.save_incident(changed, at=resolved or acked or opened)


def digest_kpis(messages: Messages) -> list[KpiDef]:
    names = (ERROR_RATE, "Incidents opened", "Incidents still open", "MTTA", "MTTR")
    return [
        *(shipped(name) for name in names),
        KpiDef("Requests", "prometheus", TOTAL),
        KpiDef("Messages sent", "supabase", messages.count_sql(), chart=True),
    ]


@pytest.mark.integration
async def test_digest_from_every_source(
    db: Database, messages: Messages, metrics: PrometheusDiagnostics
) -> None:
    await add_incidents(db, messages.end)
    builder = DigestBuilder(
        runs=DigestStore(db),
        sources=KpiSources(metrics=metrics, database=supabase()),
        kpis=digest_kpis(messages),
    )

    digest = await builder.build(ScheduledDigest(), (messages.end - timedelta(days=1)).date())

    by_name = {v.kpi.name: v for v in digest.values}
    assert all(v.error is None for v in digest.values), [v.error for v in digest.values]
    errors = by_name[ERROR_RATE]
    assert errors.series == pytest.approx([e / 100 for e in ERRORS_PER_STEP[2:]], abs=1e-9)
    assert (errors.kpi.unit, errors.level) == (Unit.PERCENT, Level.WARN)  # 1.2 %: warn at 1 %
    assert by_name["Requests"].series == pytest.approx([9600.0] * 8)
    assert by_name["Messages sent"].series == tuple(float(n) for n in MESSAGES_PER_DAY)
    assert by_name["Incidents opened"].series == (0, 0, 0, 0, 0, 1, 1, 2)
    assert by_name["Incidents still open"].series == (0, 0, 0, 0, 0, 1, 1, 1)
    assert by_name["MTTA"].value == pytest.approx((10 + 20) * 60 / 2)
    assert by_name["MTTR"].value == pytest.approx((2 * 3600 + (2 * 86400 + 3 * 3600)) / 2)
    assert (digest.stats.opened, digest.stats.resolved, digest.stats.still_open) == (2, 2, 1)
    assert [i.title for i in digest.incidents] == ["incident 0", "incident 1"]


async def test_a_failing_source_marks_only_its_kpis(
    db: Database,
    messages: Messages,
    diagnostics: Callable[..., PrometheusDiagnostics],  # noqa: F811
) -> None:
    await add_incidents(db, messages.end)
    down = f"http://127.0.0.1:{free_port()}"
    builder = DigestBuilder(
        runs=DigestStore(db),
        sources=KpiSources(metrics=diagnostics(down, timeout=30.0), database=supabase()),
        kpis=digest_kpis(messages),
    )

    digest = await builder.build(ScheduledDigest(), (messages.end - timedelta(days=1)).date())

    # Refused, not waited out: a timeout would read "timed out after 30s".
    failed = {v.kpi.name: v.error for v in digest.values if v.error is not None}
    reason = f"cannot connect to {down}: connection refused"
    assert failed == {ERROR_RATE: reason, "Requests": reason}
    by_name = {v.kpi.name: v for v in digest.values}
    assert by_name[ERROR_RATE].value is None and by_name[ERROR_RATE].level is Level.OK
    assert by_name["Messages sent"].value == MESSAGES_PER_DAY[-1]
    assert by_name["Incidents opened"].value == 2
    assert [v.kpi.name for v in digest.charted] == ["Messages sent"]
    assert f"*{ERROR_RATE}*\\n_unavailable: {reason}_" in json.dumps(render_digest(digest))
