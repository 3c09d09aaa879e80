"""The digest as people see it: posted into a channel through the outbox, and `/kpi` on demand."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Settings
from bot.config.digest import DigestConfig, DigestSettings, KpiConfig
from bot.domain.digest import Digest
from bot.domain.incidents import Severity
from bot.domain.kpi import IncidentStats, KpiDef, KpiValue, Unit
from bot.slack import ids
from bot.slack.emulator.blocks import validate_blocks
from bot.slack.render.digest import render_digest
from tests.commands.conftest import Launch, Workspace
from tests.harness import eventually

PNG = b"\x89PNG\r\n\x1a\n"


def digest_settings(settings: Settings) -> None:
    settings.prometheus_url = "http://127.0.0.1:9"  # nothing listens there: a failing source
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)  # the schedule stays out of the way
    settings.digest = DigestSettings(
        kpis=[
            KpiConfig(name="Incidents opened", source="incidents", stat="opened", chart=True),
            KpiConfig(name="Still open", source="incidents", stat="still_open", good="down"),
            KpiConfig(
                name="Error rate",
                source="prometheus",
                query="sum(rate(http_requests_total[1d]))",
                unit="percent",
                good="down",
                warn="1%",
            ),
        ],
        digests=[DigestConfig(channels=["alerts"], time=f"{three_hours_ago:%H:%M}")],
    )


@pytest.fixture
async def kpi_ws(launch: Launch) -> Workspace:
    return await launch(digest_settings)


async def test_the_digest_posts_with_a_failing_source_and_its_chart(kpi_ws: Workspace) -> None:
    ws = kpi_ws
    opened = await ws.declare("Checkout is slow", "sev1")
    digests = ws.bot.app.digests
    assert digests is not None
    today = datetime.now(UTC).date()
    queued = await digests.post_now(day=today)
    alerts = ws.channel_named("alerts")
    assert [channel for channel, _ in queued] == ["alerts"]

    message = await ws.wait_for_message(alerts, "Daily digest")
    blocks = message.blocks or []
    assert validate_blocks(blocks) == []
    assert blocks[0]["type"] == "header" and today.strftime("%d %b %Y") in blocks[0]["text"]["text"]
    everything = json.dumps(blocks)
    fields = [f["text"] for b in blocks if b["type"] == "section" for f in b.get("fields", [])]
    opened_field = next(f for f in fields if f.startswith("*Incidents opened*"))
    assert opened_field.split("\n")[1] == "1"
    error_field = next(f for f in fields if f.startswith("*Error rate*"))
    assert "unavailable: cannot connect to http://127.0.0.1:9" in error_field
    assert f"<#{opened.channel}>" in everything and "sev1" in everything
    assert "Traceback" not in everything

    async def chart_uploaded() -> bool:
        return any(
            c.params.get("channel_id") == alerts and c.response.get("ok")
            for c in ws.emulator.calls_to("files.completeUploadExternal")
        )

    await eventually(chart_uploaded, timeout=10, what="the digest's chart")
    stored = [f for f in ws.emulator.state.files.values() if f.uploaded]
    assert stored and base64.b64decode(stored[-1].content_b64).startswith(PNG)


async def test_kpi_shows_the_digest_only_to_the_asker(kpi_ws: Workspace) -> None:
    body = await kpi_ws.command("", command=ids.KPI_COMMAND)
    assert body.get("response_type") == "ephemeral"
    assert body["blocks"][0]["type"] == "header"
    assert "Daily digest" in body["blocks"][0]["text"]["text"]
    alerts = kpi_ws.channel_named("alerts")
    assert not any("Daily digest" in (m.text or "") for m in kpi_ws.messages_in(alerts))


async def test_kpi_with_a_name_gives_its_seven_day_trend(kpi_ws: Workspace) -> None:
    await kpi_ws.declare("Queue backlog")
    body = await kpi_ws.command("still open", command=ids.KPI_COMMAND)
    text = body["text"]
    assert text.startswith("*Still open*:"), text
    assert "7 days:" in text and "d/d" in text and "w/w" in text

    failing = await kpi_ws.command("ERROR RATE", command=ids.KPI_COMMAND)
    assert "unavailable: cannot connect" in failing["text"]


async def test_kpi_with_an_unknown_name_says_how_to_list_them(kpi_ws: Workspace) -> None:
    body = await kpi_ws.command("revenue", command=ids.KPI_COMMAND)
    assert "No KPI named" in body["text"] and "/kpi list" in body["text"]
    listed = await kpi_ws.command("list", command=ids.KPI_COMMAND)
    assert "Incidents opened" in listed["text"] and "Error rate" in listed["text"]


def test_a_long_digest_stays_within_block_kit_limits() -> None:
    values = []
    for n in range(45):
        kpi = KpiDef(f"KPI {n} " + "x" * 50, "prometheus", "q", Unit.PERCENT, warn=0.5, fail=0.2)
        if n % 3 == 0:
            values.append(KpiValue(kpi, error="e" * 400))
        else:
            values.append(KpiValue(kpi, tuple([0.1 * (n % 9)] * 8)))
    digest = Digest(
        name="daily",
        day=datetime(2026, 11, 28).date(),
        timezone="Europe/Paris",
        values=values,
        stats=IncidentStats(opened=40, by_severity={Severity.SEV1: 40}),
        late=True,
    )
    blocks = render_digest(digest)
    assert validate_blocks(blocks) == []
    assert len(blocks) <= 50
    assert "posted late" in json.dumps(blocks)
    attention = next(b for b in blocks if b["type"] == "section" and "text" in b)
    assert attention["text"]["text"].startswith("*Needs attention*")
