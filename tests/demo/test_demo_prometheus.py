"""The demo Prometheus answers the real client as Prometheus would, and follows the alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from bot.demo.prometheus import prometheus_app
from bot.demo.world import Episode
from bot.domain.diagnostics import Status
from integrations.prometheus import PrometheusDiagnostics
from tests.realservers import free_port

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
RATIO = (
    'sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))'
    " / sum by (service) (rate(http_requests_total[5m]))"
)


@pytest.fixture
async def demo() -> AsyncIterator[tuple[PrometheusDiagnostics, list[Episode]]]:
    episodes: list[Episode] = []

    async def current() -> Sequence[Episode]:
        return episodes

    runner = web.AppRunner(prometheus_app(current, lambda: NOW))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = PrometheusDiagnostics(f"http://127.0.0.1:{port}")
    try:
        yield client, episodes
    finally:
        client.close()
        await runner.cleanup()


async def api_ratio(client: PrometheusDiagnostics, at: datetime) -> float:
    (value,) = await client.values_at(
        'sum(rate(http_requests_total{service="api",code=~"5.."}[5m]))'
        ' / sum(rate(http_requests_total{service="api"}[5m]))',
        [at],
    )
    assert value is not None
    return value


async def test_the_5xx_ratio_rises_from_a_high_error_rate_alert_and_stays_low_otherwise(
    demo: tuple[PrometheusDiagnostics, list[Episode]],
) -> None:
    client, episodes = demo
    quiet = await api_ratio(client, NOW)
    assert quiet < 0.01
    episodes.append(Episode("HighErrorRate", {"service": "api"}, NOW.timestamp()))
    before = await api_ratio(client, NOW - timedelta(minutes=20))
    during = await api_ratio(client, NOW + timedelta(minutes=5))
    assert before < 0.01 and during > 0.05
    assert await api_ratio(client, NOW + timedelta(minutes=5)) == during  # deterministic


async def test_a_graph_of_the_playbook_query_shows_the_rise_and_a_table(
    demo: tuple[PrometheusDiagnostics, list[Episode]],
) -> None:
    client, episodes = demo
    episodes.append(Episode("HighErrorRate", {"service": "api"}, NOW.timestamp()))
    result = await client.graph(
        RATIO,
        title="5xx ratio by service",
        start=NOW - timedelta(minutes=30),
        end=NOW + timedelta(minutes=2),
        marker=NOW,
        warn_above=0.02,
        fail_above=0.05,
    )
    assert result.status is Status.FAIL, result.text
    assert result.image_png is not None and result.table is not None
    assert result.table.rows[0][0] == "service=api"


async def test_an_unknown_query_gets_prometheus_error_shape(
    demo: tuple[PrometheusDiagnostics, list[Episode]],
) -> None:
    client, _ = demo
    result = await client.instant("topk(3, up)", title="top")
    assert result.status is Status.ERROR
    assert result.text.startswith("Prometheus bad_data: demo data:")
    assert "(HTTP 400)" in result.text
    broken = await client.instant("sum(rate(up[5m]", title="broken")
    assert broken.status is Status.ERROR and "bad_data" in broken.text


async def test_targets_alerts_and_readiness_answer(
    demo: tuple[PrometheusDiagnostics, list[Episode]],
) -> None:
    client, episodes = demo
    episodes.append(Episode("DatabaseConnectionLoss", {"job": "supabase-db"}, NOW.timestamp()))
    targets = await client.targets_up()
    assert targets.status is Status.FAIL and "supabase-db" in str(targets.table)
    alerts = await client.firing_alerts()
    assert "DatabaseConnectionLoss" in alerts.text
    assert (await client.health()).status is Status.OK
