"""`tocsin drill`: a realistic drill notification through the real webhook, and its report."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import aiohttp
import pytest

from bot.config import load_settings
from bot.drills.alerts import drill_payload
from bot.main import load_playbooks
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload, utc
from tests.harness import running_bot, running_emulator

TOKEN = "drill-test-token"


@pytest.mark.parametrize("alertname", ["HighErrorRate", "WebhookFailure", "DatabaseConnectionLoss"])
def test_drill_payload_is_a_valid_notification_that_matches_its_playbook(alertname: str) -> None:
    playbooks = {p.name: p for p in load_playbooks(load_settings({"TOCSIN_CONFIG": ""}))}
    playbook = playbooks[alertname]
    payload = drill_payload(playbook, drill_id="drill-abc123", now=utc("2026-11-26T10:00:00Z"))
    group = parse_webhook(json.dumps(payload).encode())
    assert group.title.startswith("[DRILL] ")
    assert group.slug_source == f"{alertname} drill-abc123"
    assert playbook.matches(group.common_labels, "alertmanager")
    assert group.alerts[0].labels["drill"] == "drill-abc123"


async def drill(url: str, *args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    env = {**os.environ, "TOCSIN_CONFIG": ""}
    env.pop("TOCSIN_WEBHOOK_TOKEN", None)
    if token is not None:
        env["TOCSIN_WEBHOOK_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "drill",
        *args,
        "--url",
        url,
        "--wait",
        "20",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_drill_against_a_real_workspace_marks_the_channel_and_times_each_step(
    database_url: str,
) -> None:
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(database_url, emulator, emulator_url, TOCSIN_WEBHOOK_TOKEN=TOKEN) as bot,
    ):
        code, out, err = await drill(bot.url, "HighErrorRate")
        assert code == 0, out + err
        lines = out.splitlines()
        assert "HighErrorRate -> incident #" in lines[0] and "-higherrorrate-drill-" in lines[0]
        for step in ("webhook accepted", "channel created", "card posted", "first diagnostic"):
            assert any(
                line.strip().startswith(step) and "not reached" not in line for line in lines
            )
        assert any("last diagnostic" in line and "(3 of 3)" in line for line in lines)
        assert any(line.strip().startswith("escalation") for line in lines)
        assert "(resolved)" in lines[0]  # the report done, the drill is over
        assert lines[-1].split() == ["drill", "over", "incident", "resolved"]

        (channel,) = [c for c in emulator.state.channels.values() if c.name.startswith("inc-")]
        assert "-drill-" in channel.name
        assert "[DRILL]" in channel.topic

        incident = int(lines[0].split("incident #")[1].split()[0])
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{bot.url}/drills/{incident}") as r:
                assert r.status == 401
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with s.get(f"{bot.url}/drills/{incident}", headers=headers) as r:
                report = await r.json()
                assert r.status == 200 and report["done"] and report["channel"] == channel.name
                assert report["status"] == "resolved"


async def test_drill_status_is_only_for_drills(database_url: str) -> None:
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(database_url, emulator, emulator_url) as bot,
    ):
        status, answer = await bot.post_alerts(make_payload([make_alert()]))
        assert status == 200
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{bot.url}/drills/{answer['incident']}") as r:
                assert r.status == 404 and "no drill incident" in (await r.json())["error"]
            async with s.get(f"{bot.url}/drills/x1") as r:
                assert r.status == 400


async def test_drill_names_the_playbooks_when_the_alert_is_unknown() -> None:
    code, out, err = await drill("http://127.0.0.1:9", "NoSuchAlert", token=None)
    assert code == 1 and out == ""
    assert "no playbook for 'NoSuchAlert'" in err and "HighErrorRate" in err


async def test_drill_says_when_tocsin_is_not_running() -> None:
    code, _out, err = await drill("http://127.0.0.1:9", token=None)
    assert code == 1 and "cannot reach Tocsin at http://127.0.0.1:9" in err


def _at(lines: list[str], step: str) -> float:
    """A step's time in the report as a person reads it: "+850 ms" or "+1.52 s"."""
    (line,) = [line for line in lines if line.strip().startswith(step)]
    value, unit = line.split("+", 1)[1].split()[:2]
    return float(value) / 1000 if unit == "ms" else float(value)


async def test_the_first_diagnostic_is_when_its_message_appeared_below_the_card(
    database_url: str,
) -> None:
    # The results are ready at once (no Prometheus: each says so), but nothing is posted in the
    # channel before the card, and the channel is slow to come: people see them after the card.
    async with (
        running_emulator(latency={"conversations.create": 1.0}) as (emulator, emulator_url),
        running_bot(database_url, emulator, emulator_url, TOCSIN_WEBHOOK_TOKEN=TOKEN) as bot,
    ):
        code, out, err = await drill(bot.url, "HighErrorRate")
    assert code == 0, out + err
    lines = out.splitlines()
    card = _at(lines, "card posted")
    assert _at(lines, "channel created") >= 1.0
    assert _at(lines, "first diagnostic") >= card
    assert _at(lines, "last diagnostic") >= _at(lines, "first diagnostic")
    assert any("last diagnostic" in line and "(3 of 3)" in line for line in lines)
