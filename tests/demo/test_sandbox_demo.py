"""The sandbox with no settings shows the product on demo data: a drill's diagnostics have
tables and graphs, the digest has numbers, and everything says it is demo data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.clock import FakeClock
from bot.config import load_settings
from bot.drills.alerts import drill_payload
from bot.main import Tocsin, build_app, load_playbooks
from commands import kpi
from tests.harness import eventually, post_webhook, running_bot, running_emulator
from tests.realservers import free_port

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


@asynccontextmanager
async def sandbox(database_url: str, **env: str) -> AsyncIterator[tuple[str, Tocsin]]:
    """Tocsin as `tocsin serve` runs it with no Slack token, on a clock that stands still."""
    settings = load_settings({"TOCSIN_DATABASE_URL": database_url, "TOCSIN_CONFIG": "", **env})
    port = free_port()
    app = await build_app(settings, public_url=f"http://127.0.0.1:{port}", clock=FakeClock(NOW))
    runner = web.AppRunner(app.web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await app.start_background()
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await app.close()
        await runner.cleanup()


def incident_channel(app: Tocsin) -> str | None:
    assert app.slack.emulator is not None
    state = app.slack.emulator.state
    return next((c.id for c in state.channels.values() if c.name.startswith("inc-")), None)


def diagnostics_messages(app: Tocsin, channel: str) -> list[str]:
    """Each diagnostics message's text as a person reads it: every block's text together."""
    assert app.slack.emulator is not None
    found = []
    for message in app.slack.emulator.state.messages:
        if message.channel != channel:
            continue
        if (message.metadata or {}).get("event_type") != "tocsin_diagnostics":
            continue
        found.append(json.dumps(message.blocks))
    return found


def uploads(app: Tocsin, channel: str) -> list[tuple[str, bytes]]:
    assert app.slack.emulator is not None
    return [
        (f.title, f.content())
        for f in app.slack.emulator.state.files.values()
        if channel in f.channels and f.completed
    ]


async def fire_drill(url: str, alertname: str) -> None:
    playbooks = {p.name: p for p in load_playbooks(load_settings({"TOCSIN_CONFIG": ""}))}
    payload = drill_payload(playbooks[alertname], drill_id="drill-demo01", now=NOW)
    status, body = await post_webhook(url, payload)
    assert status == 200, body


async def test_a_drill_in_the_sandbox_shows_tables_and_graphs_of_demo_data(
    database_url: str,
) -> None:
    async with sandbox(database_url) as (url, app):
        await fire_drill(url, "HighErrorRate")
        await eventually(lambda: incident_channel(app) is not None, what="the incident channel")
        channel = incident_channel(app)
        assert channel is not None

        def everything_posted() -> bool:
            text = " ".join(diagnostics_messages(app, channel))
            titles = ("5xx ratio by service", "p95 latency", "Top unresolved Sentry issues")
            return all(t in text for t in titles) and len(uploads(app, channel)) >= 2

        await eventually(everything_posted, what="three diagnostics and two graphs")
        text = " ".join(diagnostics_messages(app, channel))
        assert "not configured" not in text and ":grey_question:" not in text  # no check failed
        assert text.count("(demo data)") >= 3 and "demo data, not a real system" in text
        assert "service" in text and "api" in text  # the 5xx table names the services
        assert "```" in text  # a table
        graphs = uploads(app, channel)
        assert all("(demo data)" in title for title, _ in graphs)
        assert all(png.startswith(b"\x89PNG") for _, png in graphs)


def kpi_fields(reply: dict[str, Any]) -> list[str]:
    return [f["text"] for b in reply["blocks"] for f in b.get("fields", [])]


async def test_the_digest_shows_demo_numbers_instead_of_not_configured(
    database_url: str,
) -> None:
    async with sandbox(database_url) as (_url, app):
        reply = await kpi.handle(app.services, "")
        fields = kpi_fields(reply)
        assert len(fields) == 16
        assert not [f for f in fields if "unavailable" in f]
        demo = [f for f in fields if "_demo data_" in f]
        assert len(demo) == 11  # Prometheus and Supabase KPIs; the incident ones are real
        context = json.dumps(reply["blocks"][1])
        assert "demo data" in context
        assert "demo data" in json.dumps(reply["blocks"][-1]) or any(
            "Sentry" in json.dumps(b) and "(demo data)" in json.dumps(b) for b in reply["blocks"]
        )


async def test_a_configured_prometheus_is_used_and_the_demo_one_is_not(
    database_url: str,
) -> None:
    async with sandbox(database_url, PROMETHEUS_URL="http://127.0.0.1:9") as (_url, app):
        sources = app.services.diagnostics.sources
        assert sources.metrics is not None and not hasattr(sources.metrics, "kpis")
        assert sources.errors is not None and sources.database is not None  # still demo
        assert app.digests is not None
        assert app.digests.builder.sources.demo == frozenset({"sentry", "supabase"})
        reply = await kpi.handle(app.services, "error rate")
        assert "127.0.0.1:9" in reply["text"] and "demo data" not in reply["text"]


async def test_with_a_slack_token_no_demo_source_runs(database_url: str) -> None:
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(database_url, emulator, emulator_url) as bot,
    ):
        sources = bot.app.services.diagnostics.sources
        assert sources.metrics is None and sources.errors is None and sources.database is None
        paths = [r.canonical for r in bot.app.web_app.router.resources()]
        assert not any(p.startswith("/sandbox/demo") for p in paths)
        reply = await kpi.handle(bot.app.services, "")
        fields = kpi_fields(reply)
        assert len([f for f in fields if "not configured" in f]) == 11
        assert "demo data" not in json.dumps(reply)
