"""Prometheus diagnostics against a real Prometheus, and against servers that misbehave.

One Prometheus serves the whole module: it scrapes a MetricSource with known gauges plus a
target where nothing listens, evaluates one alerting rule, and starts on a data folder that
``promtool`` backfilled with two hours of a known series.  Failure cases use small aiohttp
servers (stalled, garbage) or a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import requests
from aiohttp import web
from PIL import Image

from bot.domain.diagnostics import DiagnosticResult, Status
from integrations.prometheus import (
    PrometheusDiagnostics,
    choose_step,
    format_value,
    legend_labels,
    render_graph,
    shorten_labels,
)
from tests.realservers import MetricSource, PrometheusServer, free_port, require_binaries

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
READY_DEADLINE_S = 30.0
BACKFILL_METRIC = "tocsin_backfill_latency_seconds"
BACKFILL_LAST = {"api": 4.2, "chat": 1.5}
BACKFILL_PEAK = 7.5  # once, in the middle of the api series
ERRORS = {("api", "500"): 5.0, ("chat", "500"): 2.0, ("web", "502"): 1.0}
RULES = """\
groups:
  - name: tocsin-test
    rules:
      - alert: HighErrorRate
        expr: http_requests_errors > 3
        for: 0s
        labels:
          severity: critical
"""


@dataclass(frozen=True)
class Fixture:
    url: str
    dead_target: str
    backfill_end: datetime


# -- the shared Prometheus --------------------------------------------------------------------


def _openmetrics(end: datetime) -> str:
    """Two hours of BACKFILL_METRIC for api and chat, one sample a minute up to ``end``."""
    stamps = [end.timestamp() - 60 * i for i in range(120, -1, -1)]
    lines = [f"# TYPE {BACKFILL_METRIC} gauge"]
    for service, last in BACKFILL_LAST.items():
        for i, stamp in enumerate(stamps):
            value = last  # chat is flat; api wobbles, peaks once, and ends on its last value
            if service == "api" and i < len(stamps) - 1:
                value = BACKFILL_PEAK if i == len(stamps) // 2 else 1.0 + (i % 10) / 10
            lines.append(f'{BACKFILL_METRIC}{{service="{service}"}} {value} {stamp:.3f}')
    return "\n".join([*lines, "# EOF", ""])


def _backfill(tmp: Path, data_dir: Path, end: datetime) -> None:
    source = tmp / "backfill.om"
    source.write_text(_openmetrics(end))
    data_dir.mkdir(parents=True, exist_ok=True)
    promtool = shutil.which("promtool") or "promtool"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _api(url: str, path: str, **params: str) -> object:
    with requests.Session() as session:
        session.trust_env = False  # no proxies for loopback
        response = session.get(url + path, params=params, timeout=5)
        response.raise_for_status()
        return response.json()["data"]


def _settled(url: str) -> bool:
    """Gauges scraped, both targets scraped once, the rule fired, the backfill visible."""
    try:
        errors = _api(url, "/api/v1/query", query="count(http_requests_errors)")
        backfill = _api(url, "/api/v1/query", query=f"count({BACKFILL_METRIC})")
        targets = _api(url, "/api/v1/targets", state="active")
        alerts = _api(url, "/api/v1/alerts")
    except requests.RequestException:
        return False
    assert isinstance(targets, dict) and isinstance(alerts, dict)
    return (
        _count(errors) == 3
        and _count(backfill) == 2
        and all(t["health"] != "unknown" for t in targets["activeTargets"])
        and any(a["state"] == "firing" for a in alerts["alerts"])
    )


def _count(data: object) -> int:
    assert isinstance(data, dict)
    result = data["result"]
    return int(result[0]["value"][1]) if result else 0


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    require_binaries("prometheus", "promtool")
    tmp = tmp_path_factory.mktemp("prometheus")
    with MetricSource() as source:
        for (service, code), value in ERRORS.items():
            source.set("http_requests_errors", value, {"service": service, "code": code})
        dead = f"127.0.0.1:{free_port()}"
        server = PrometheusServer(tmp, scrape_targets=[source.url, dead], rules=RULES)
        backfill_end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
        _backfill(tmp, server.storage_path, backfill_end)
        with server:
            deadline = time.monotonic() + READY_DEADLINE_S
            while not _settled(server.url):
                if time.monotonic() > deadline:
                    pytest.fail(f"Prometheus did not settle; log:\n{server.log()[-3000:]}")
                time.sleep(0.2)
            yield Fixture(server.url, dead, backfill_end)


@pytest.fixture
def diagnostics() -> Iterator[Callable[..., PrometheusDiagnostics]]:
    """Makes PrometheusDiagnostics and closes them after the test."""
    made: list[PrometheusDiagnostics] = []

    def make(url: str, timeout: float) -> PrometheusDiagnostics:
        made.append(PrometheusDiagnostics(url, timeout=timeout))
        return made[-1]

    yield make
    for diag in made:
        diag.close()


@pytest.fixture
def diag(prom: Fixture, diagnostics: Callable[..., PrometheusDiagnostics]) -> PrometheusDiagnostics:
    return diagnostics(prom.url, timeout=10.0)


# -- instant queries --------------------------------------------------------------------------


@pytest.mark.integration
async def test_instant_lists_series_by_value_descending(diag: PrometheusDiagnostics) -> None:
    result = await diag.instant("sum by (service) (http_requests_errors)", title="Errors")

    assert result.status is Status.OK
    assert result.text == "3 series; max 5 (service=api)"
    assert result.table is not None
    assert result.table.columns == ("series", "value")
    assert result.table.rows == (("service=api", "5"), ("service=chat", "2"), ("service=web", "1"))
    assert result.source == "prometheus"


@pytest.mark.integration
async def test_instant_keeps_only_labels_that_differ(diag: PrometheusDiagnostics) -> None:
    result = await diag.instant("http_requests_errors", title="Errors", unit="req")

    assert result.table is not None
    assert result.table.rows == (
        ("service=api, code=500", "5 req"),
        ("service=chat, code=500", "2 req"),
        ("service=web, code=502", "1 req"),
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("warn", "fail", "expected"),
    [
        (None, None, Status.OK),
        (10.0, None, Status.OK),
        (3.0, None, Status.WARN),
        (3.0, 6.0, Status.WARN),
        (3.0, 5.0, Status.FAIL),  # the max (5) reaches the fail threshold
        (None, 4.0, Status.FAIL),
    ],
)
async def test_instant_grades_the_highest_value(
    diag: PrometheusDiagnostics, warn: float | None, fail: float | None, expected: Status
) -> None:
    result = await diag.instant(
        "sum by (service) (http_requests_errors)", title="E", warn_above=warn, fail_above=fail
    )

    assert result.status is expected


@pytest.mark.integration
async def test_instant_top_cuts_rows(diag: PrometheusDiagnostics) -> None:
    result = await diag.instant("sum by (service) (http_requests_errors)", title="E", top=2)

    assert result.table is not None
    assert result.table.rows == (("service=api", "5"), ("service=chat", "2"))
    assert result.text == "3 series; max 5 (service=api); top 2 shown"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("query", "rows", "text"),
    [
        # A series without labels is named after the step's title, never "{}".
        ("scalar(sum(http_requests_errors))", (("Errors", "8"),), "1 series; max 8"),
        ("sum(http_requests_errors) / 0", (("Errors", "+Inf"),), "1 series; max +Inf"),
        ("vector(0) / 0", (("Errors", "NaN"),), "1 series; max NaN"),
    ],
)
async def test_instant_scalars_and_special_values(
    diag: PrometheusDiagnostics, query: str, rows: tuple[tuple[str, str], ...], text: str
) -> None:
    result = await diag.instant(query, title="Errors", warn_above=1.0)

    assert result.table is not None
    assert result.table.rows == rows
    assert result.text == text


@pytest.mark.integration
async def test_instant_without_data_is_ok(diag: PrometheusDiagnostics) -> None:
    result = await diag.instant("no_such_metric_anywhere", title="Nothing", fail_above=0)

    assert (result.status, result.text, result.table) == (Status.OK, "no data", None)


@pytest.mark.integration
async def test_bad_promql_is_an_error_with_prometheus_message(diag: PrometheusDiagnostics) -> None:
    now = datetime.now(UTC)
    results = [
        await diag.instant("sum(rate(http_requests_errors[5m]", title="Bad"),
        await diag.graph("sum(", title="Bad", start=now - timedelta(hours=1), end=now),
    ]

    for result in results:
        assert result.status is Status.ERROR
        assert result.text.startswith("Prometheus bad_data: ")
        assert "parse error" in result.text
        assert result.text.endswith("(HTTP 400)")


# -- graphs -----------------------------------------------------------------------------------


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return image.size


@pytest.mark.integration
async def test_graph_of_backfilled_series(diag: PrometheusDiagnostics, prom: Fixture) -> None:
    end = prom.backfill_end + timedelta(seconds=30)
    result = await diag.graph(
        BACKFILL_METRIC,
        title="Latency",
        start=end - timedelta(hours=2),
        end=end,
        marker=end - timedelta(minutes=30),
        warn_above=4.0,
        fail_above=5.0,
        unit="s",
    )

    assert result.status is Status.WARN, result.text  # api's latest value 4.2 is above 4
    assert result.text == "2 series over 2h; highest last 4.2 s (service=api)"
    assert result.table is not None
    assert result.table.columns == ("series", "last", "max")
    assert result.table.rows == (
        ("service=api", "4.2 s", "7.5 s"),
        ("service=chat", "1.5 s", "1.5 s"),
    )
    assert result.image_png is not None
    assert _png_size(result.image_png) == (1000, 500)


@pytest.mark.integration
async def test_graph_step_stays_within_prometheus_limit(
    diag: PrometheusDiagnostics, prom: Fixture
) -> None:
    end = prom.backfill_end
    result = await diag.graph(
        BACKFILL_METRIC, title="Fine", start=end - timedelta(hours=2), end=end, step=0.1
    )

    assert result.status is Status.OK, result.text
    assert "last 4.2" in result.text


@pytest.mark.integration
async def test_graph_without_data_is_ok(diag: PrometheusDiagnostics) -> None:
    now = datetime.now(UTC)
    result = await diag.graph(
        "no_such_metric_anywhere", title="None", start=now - timedelta(minutes=90), end=now
    )

    assert (result.status, result.text, result.image_png) == (Status.OK, "no data over 1h30m", None)


def test_render_graph_draws_the_marker() -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()
    points = [(start + 15 * i, 1 + math.sin(i / 10)) for i in range(240)]
    points[100:110] = []  # a gap: not bridged by a line
    series = [("service=api", points), ("service=chat", [(t, v / 2) for t, v in points])]
    marker = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)

    plain = render_graph(series, title="Latency", marker=None, unit="s")
    marked = render_graph(
        series, title="Latency", marker=marker, unit="s", thresholds=[("warn", 1.5)]
    )

    assert _png_size(plain) == _png_size(marked) == (1000, 500)
    # The dashed black line: some pixel column has far more black pixels than without it.
    extra_black = _black_per_column(marked) - _black_per_column(plain)
    assert extra_black.max() > 100


def _black_per_column(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    return (pixels.sum(axis=2) < 60).sum(axis=0)


def test_render_graph_without_series() -> None:
    png = render_graph([], title="Empty", marker=None, unit="")

    assert _png_size(png) == (1000, 500)


# -- targets, alerts, health ------------------------------------------------------------------


@pytest.mark.integration
async def test_targets_up_lists_the_down_target(diag: PrometheusDiagnostics, prom: Fixture) -> None:
    result = await diag.targets_up()

    assert result.status is Status.FAIL
    assert result.text == "1/2 targets up; 1 down"
    assert result.table is not None
    assert result.table.columns == ("job", "instance", "last error")
    [(job, instance, error)] = result.table.rows
    assert (job, instance) == ("tocsin-test", prom.dead_target)
    assert "connection refused" in error


@pytest.mark.integration
async def test_firing_alerts_warns(diag: PrometheusDiagnostics) -> None:
    result = await diag.firing_alerts()

    assert result.status is Status.WARN
    assert result.text == "1 firing (HighErrorRate)"
    assert result.table is not None
    [(name, labels, state, since)] = result.table.rows
    assert (name, state) == ("HighErrorRate", "firing")
    assert "service=api" in labels and "severity=critical" in labels
    assert since.endswith(" UTC")


@pytest.mark.integration
async def test_health_ok(diag: PrometheusDiagnostics) -> None:
    result = await diag.health()

    assert result.status is Status.OK
    assert result.text.startswith("ready (")


# -- failures ---------------------------------------------------------------------------------


def _every_check(diag: PrometheusDiagnostics) -> list[Awaitable[DiagnosticResult]]:
    now = datetime.now(UTC)
    return [
        diag.instant("up", title="instant"),
        diag.graph("up", title="graph", start=now - timedelta(hours=1), end=now),
        diag.targets_up(),
        diag.firing_alerts(),
        diag.health(),
    ]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def _serve(handler: Handler) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_unreachable_is_a_connection_error_not_a_timeout(
    diagnostics: Callable[..., PrometheusDiagnostics],
) -> None:
    port = free_port()
    # A refused connection is reported as such at once; waiting out the timeout would say
    # "timed out after 30s" instead.
    diag = diagnostics(f"http://127.0.0.1:{port}", timeout=30.0)

    results = await asyncio.gather(*_every_check(diag))

    for result in results:
        assert result.status is Status.ERROR
        assert result.text == f"cannot connect to http://127.0.0.1:{port}: connection refused"


async def test_stalled_server_times_out(diagnostics: Callable[..., PrometheusDiagnostics]) -> None:
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="too late")

    async with _serve(stall) as port:
        diag = diagnostics(f"http://user:hunter2pw@127.0.0.1:{port}", timeout=1.0)
        results = await asyncio.gather(*_every_check(diag))
        release.set()

    for result in results:
        assert result.status is Status.ERROR
        assert result.text == f"http://127.0.0.1:{port} timed out after 1s"


@pytest.mark.parametrize(
    ("status", "content_type", "body", "reason"),
    [
        (200, "text/html", "<html><body>Login</body></html>", "answered something that is not"),
        (502, "text/html", "<html>Bad Gateway</html>", "HTTP 502 from http://127.0.0.1:"),
        (404, "text/plain", "404 page not found", "not found"),
        (200, "application/json", '{"hello": "world"}', "unexpected answer from"),
        (200, "application/json", '{"status": "success", "data": "x"}', "unexpected"),
        (500, "application/json", '{"status": "error"', "HTTP 500 from http://127.0.0.1:"),
    ],
)
async def test_garbage_answers_are_errors_without_secrets(
    diagnostics: Callable[..., PrometheusDiagnostics],
    status: int,
    content_type: str,
    body: str,
    reason: str,
) -> None:
    seen_auth: list[str] = []

    async def garbage(request: web.Request) -> web.Response:
        seen_auth.append(request.headers.get("Authorization", ""))
        ready = request.path == "/-/ready" and status == 200
        return (
            web.Response(status=status, text=body, content_type=content_type)
            if not ready
            else (web.Response(text="Prometheus Server is Ready."))
        )

    async with _serve(garbage) as port:
        diag = diagnostics(f"http://tocsin:hunter2pw@127.0.0.1:{port}/", timeout=5.0)
        *api_results, health = await asyncio.gather(*_every_check(diag))

    for result in api_results:
        assert result.status is Status.ERROR, result
        assert reason in result.text
        assert "hunter2" not in result.text and "pw" not in result.text
        assert "Traceback" not in result.text and "\n" not in result.text
    assert health.status is (Status.OK if status == 200 else Status.ERROR)
    expected = "Basic " + base64.b64encode(b"tocsin:hunter2pw").decode()
    assert seen_auth and set(seen_auth) == {expected}


async def test_credentials_never_reach_the_text(
    diagnostics: Callable[..., PrometheusDiagnostics],
) -> None:
    port = free_port()
    diag = diagnostics(f"http://admin:pw@127.0.0.1:{port}", timeout=2.0)

    results = await asyncio.gather(*_every_check(diag))

    for result in results:
        assert result.status is Status.ERROR
        assert ":pw" not in result.text and "admin" not in result.text


# -- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (5.0, "", "5"),
        (0.123456, "", "0.123"),
        (12.345, "ms", "12.3 ms"),
        (999.7, "", "1k"),
        (1_234_567.0, "B", "1.23M B"),
        (0.5, "%", "0.5%"),
        (-0.0, "", "0"),
        (1.5e-5, "", "1.5e-05"),
        (2e15, "", "2e+15"),
        (math.nan, "", "NaN"),
        (math.inf, "s", "+Inf s"),
        (-math.inf, "", "-Inf"),
    ],
)
def test_format_value(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_shorten_labels() -> None:
    long_value = "x" * 60
    metrics = [
        {"__name__": "up", "job": "api", "instance": "a:1", "env": "prod"},
        {"__name__": "up", "job": "api", "instance": "b:1", "env": "prod"},
        {"__name__": "up", "job": "db", "instance": long_value, "env": "prod"},
    ]

    assert shorten_labels(metrics) == [
        "instance=a:1, job=api",
        "instance=b:1, job=api",
        "instance=" + "x" * 39 + "…, job=db",
    ]
    assert shorten_labels([{"__name__": "up", "job": "api"}]) == ["job=api"]
    assert shorten_labels([{"__name__": "a"}, {"__name__": "b"}]) == ["a", "b"]
    assert shorten_labels([{}]) == ["{}"]


@pytest.mark.parametrize(
    ("metrics", "names"),
    [
        ([{}], ["5xx ratio"]),  # sum(...) / sum(...): no labels left, named after the title
        ([{"__name__": "up"}], ["5xx ratio"]),
        ([{"service": "api"}], ["service=api"]),
        (
            [{"service": "api", "code": "500"}, {"service": "web", "code": "500"}],
            ["service=api", "service=web"],
        ),
        (
            [{"service": "api", "code": "500"}, {"service": "web", "code": "502"}],
            ["code=500, service=api", "code=502, service=web"],
        ),
        ([{"service": "api"}, {}], ["service=api", "5xx ratio"]),
    ],
)
def test_legend_labels_never_read_empty_braces(
    metrics: list[dict[str, str]], names: list[str]
) -> None:
    assert legend_labels(metrics, "5xx ratio") == names


@pytest.mark.parametrize(
    ("span", "step", "expected"),
    [
        (timedelta(hours=2), None, 24),
        (timedelta(minutes=1), None, 1),
        (timedelta(hours=1), 0.1, 1),  # whole seconds
        (timedelta(hours=1), 14.5, 15),
        (timedelta(days=30), None, 8640),
        (timedelta(days=30), 60.0, 236),  # 2,592,000 s / 10,999 points, rounded up
    ],
)
def test_choose_step(span: timedelta, step: float | None, expected: int) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)

    chosen = choose_step(start, start + span, step)

    assert chosen == expected
    assert span.total_seconds() / chosen <= 11_000
