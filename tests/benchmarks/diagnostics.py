"""Benchmark: from the Alertmanager webhook to the incident's last automatic diagnostic in Slack.

Tocsin runs in this process (`tests.harness.running_bot`: the real composition root, aiohttp
server, outbox worker and timer scheduler) on a fresh SQLite store, against the Slack emulator
(no emulator rate limits or latency; Tocsin keeps its own pacing unless a scenario says
otherwise). Emulator, fake Sentry and Tocsin share one event loop; Prometheus is the real
binary, scraping a MetricSource whose counters grow with time (as in
tests/end_to_end/test_diagnostics_e2e.py, whose helpers this script uses). Supabase points at
the machine's Postgres.

Each run posts one HighErrorRate alert of a new alert group (so a new incident, channel and
playbook run) and waits until its three diagnostic results and its graph uploads have reached
the incident channel, then starts the next run. Times, in seconds from just before the POST
(time.monotonic; the emulator records the arrival time of every Web API call):

  * card_pinned       pins.add of the incident's card
  * results_ready     the last diagnostic timeline event, minus the incident's opened_at: when
                      the slowest step had an answer (Tocsin's own work, before Slack pacing)
  * last_diagnostic   the chat.postMessage that brought the last result into the incident
                      channel (results ready together share one message)
  * last_upload       files.completeUploadExternal of the last graph into the incident channel

and how many runs had a diagnostic posted in the channel before the incident's card.

Scenarios (each with a fresh bot, store and emulator):

  * healthy          every source answers; Tocsin's default pacing of one post per second per
                     channel (Slack's guidance), so the results ready together wait one slot
                     after the card
  * healthy_unpaced  the same with outbox.per_channel_per_second = 100: Tocsin's own latency
  * stalled          Sentry never answers; the playbook's sentry step has `timeout: T`
                     (default 3 s); `minus_timeout` = last_diagnostic - T
  * stalled_unpaced  the same, unpaced

Percentiles are nearest-rank (p95 of 10 runs is the slowest run). Prints one JSON object on
stdout; progress on stderr. Run from the repository root:

    python tests/benchmarks/diagnostics.py [--runs 10] [--stalled-runs 5] [--timeout 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import yaml  # noqa: E402

from bot.config import Settings  # noqa: E402
from tests.end_to_end.test_diagnostics_e2e import (  # noqa: E402
    BUCKET_METRIC,
    SENTRY_PROJECT,
    TrafficSource,
    _prom_query,
    alert_payload,
    diagnostic_events,
    diagnostic_messages,
    post_time,
    quick_sentry_playbooks,
    sources,
    uploads_to,
)
from tests.fakes.sentry import FakeSentry  # noqa: E402
from tests.harness import RunningBot, eventually, running_bot, running_emulator  # noqa: E402
from tests.realservers import PrometheusServer, binary_available  # noqa: E402

log = logging.getLogger("bench.diagnostics")
STEPS = 3  # HighErrorRate: two Prometheus steps and one Sentry step
WAIT_S = 60.0


@dataclass(frozen=True)
class Scenario:
    name: str
    runs: int
    stalled: bool
    per_channel_per_second: float | None  # None: Tocsin's default (1 post/s per channel)


@dataclass(frozen=True)
class Run:
    webhook: float
    card_pinned: float
    results_ready: float
    last_diagnostic: float
    last_upload: float
    card_after_a_result: bool


def start_prometheus(folder: Path) -> tuple[TrafficSource, PrometheusServer]:
    """A real Prometheus whose rate() queries have data two seconds back."""
    source = TrafficSource()
    source.start()
    server = PrometheusServer(folder, scrape_targets=[source.url])
    server.start()
    ratio = 'sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))'
    p95 = f"histogram_quantile(0.95, sum by (le) (rate({BUCKET_METRIC}[5m])))"
    deadline = time.monotonic() + WAIT_S
    while not (_prom_query(server.url, ratio, ago=2) and _prom_query(server.url, p95, ago=2)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Prometheus has no rate data; log:\n{server.log()[-2000:]}")
        time.sleep(0.2)
    return source, server


async def one_run(bot: RunningBot, index: int, scenario: Scenario, graphs: int) -> Run:
    emulator = bot.emulator
    payload = alert_payload(group=f"bench-{scenario.name}-{index}")
    began = time.monotonic()
    status, body = await bot.post_alerts(payload)
    webhook = time.monotonic() - began
    if status != 200 or not isinstance(body, dict) or body.get("incident") is None:
        raise RuntimeError(f"webhook answered {status}: {body}")
    incident_id = int(body["incident"])

    async def channel() -> bool:
        return (await bot.app.services.incidents.get(incident_id)).channel_id is not None

    await eventually(channel, timeout=WAIT_S, what="the incident channel")
    incident = await bot.app.services.incidents.get(incident_id)
    assert incident.channel_id is not None
    room = incident.channel_id

    def complete() -> bool:
        return (
            len(diagnostic_messages(emulator, room)) >= STEPS
            and len(uploads_to(emulator, room)) >= graphs
        )

    try:
        await eventually(complete, timeout=WAIT_S, what="every diagnostic and both graphs")
    except AssertionError:
        shown = [(p.title, p.status, p.text) for p in diagnostic_messages(emulator, room)]
        raise RuntimeError(
            f"run {index}: posted {shown}, uploads {len(uploads_to(emulator, room))}"
        ) from None
    posted = diagnostic_messages(emulator, room)
    if len(posted) != STEPS:
        raise RuntimeError(f"expected {STEPS} diagnostic messages, got {len(posted)}")
    pins = [c.at for c in emulator.calls_to("pins.add") if c.params.get("channel") == room]
    upload = [
        c.at
        for c in emulator.calls_to("files.completeUploadExternal")
        if c.params.get("channel_id") == room and c.response.get("ok")
    ]
    card = (await bot.app.services.incidents.get(incident_id)).card_ts
    card_at = post_time(emulator, room, card) if card else math.inf
    first = min(post_time(emulator, room, p.message.ts) for p in posted)
    events = await diagnostic_events(bot, incident_id)
    ready = max((e.at - incident.opened_at).total_seconds() for e in events)
    return Run(
        webhook=webhook,
        card_pinned=min(pins) - began,
        results_ready=ready,
        last_diagnostic=max(post_time(emulator, room, p.message.ts) for p in posted) - began,
        last_upload=max(upload) - began,
        card_after_a_result=card_at > first,
    )


def graphs_of(playbooks: Path) -> int:
    """How many of HighErrorRate's steps draw a graph (the shipped playbook: both Prometheus
    steps; the stalled scenarios' copy: one)."""
    playbook = yaml.safe_load((playbooks / "high-error-rate.yml").read_text())
    checks = [next(iter(step.values())) for step in playbook["diagnostics"]]
    return sum(1 for check in checks if isinstance(check, dict) and "graph" in check)


async def run_scenario(
    scenario: Scenario, prometheus_url: str, folder: Path, timeout: float
) -> dict[str, Any]:
    sentry = FakeSentry(token="sntrys_bench_token", org="acme")
    await sentry.start()
    seen = datetime.now(UTC) - timedelta(minutes=5)
    for number, count in (("101", 420), ("102", 37), ("103", 5)):
        sentry.add_issue(SENTRY_PROJECT, number, count=count, last_seen=seen)
    sentry.stall = scenario.stalled
    playbooks = (
        quick_sentry_playbooks(folder / f"playbooks-{scenario.name}", timeout=f"{timeout:g}s")
        if scenario.stalled
        else None
    )
    graphs = graphs_of(playbooks or REPO / "playbooks")
    configure = sources(
        prometheus=prometheus_url, sentry=sentry, supabase=True, playbooks=playbooks
    )

    def tweak(settings: Settings) -> None:
        configure(settings)
        if scenario.per_channel_per_second is not None:
            settings.outbox.per_channel_per_second = scenario.per_channel_per_second

    store = folder / f"{scenario.name}.db"
    runs: list[Run] = []
    try:
        async with (
            running_emulator() as (emulator, emulator_url),
            running_bot(f"sqlite+aiosqlite:///{store}", emulator, emulator_url, tweak=tweak) as bot,
        ):
            for index in range(scenario.runs):
                run = await one_run(bot, index, scenario, graphs)
                runs.append(run)
                log.info("%s #%d: %s", scenario.name, index + 1, run)
    finally:
        await sentry.stop()
    report: dict[str, Any] = {
        "runs": len(runs),
        "stalled_sentry_timeout_s": timeout if scenario.stalled else None,
        "per_channel_per_second": scenario.per_channel_per_second or 1.0,
    }
    for field in ("webhook", "card_pinned", "results_ready", "last_diagnostic", "last_upload"):
        report[f"{field}_s"] = summary([getattr(r, field) for r in runs])
    report["runs_with_card_after_a_result"] = sum(r.card_after_a_result for r in runs)
    if scenario.stalled:
        report["minus_timeout_s"] = summary([r.last_diagnostic - timeout for r in runs])
        report["results_ready_minus_timeout_s"] = summary([r.results_ready - timeout for r in runs])
    return report


def summary(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {
        "p50": round(rank(0.50), 3),
        "p95": round(rank(0.95), 3),
        "max": round(ordered[-1], 3),
        "min": round(ordered[0], 3),
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    scenarios = [
        Scenario("healthy", args.runs, stalled=False, per_channel_per_second=None),
        Scenario("healthy_unpaced", args.runs, stalled=False, per_channel_per_second=100.0),
        Scenario("stalled", args.stalled_runs, stalled=True, per_channel_per_second=None),
        Scenario("stalled_unpaced", args.stalled_runs, stalled=True, per_channel_per_second=100.0),
    ]
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-diag-") as tmp:
        folder = Path(tmp)
        source, server = await asyncio.to_thread(start_prometheus, folder / "prometheus")
        try:
            report: dict[str, Any] = {}
            for scenario in scenarios:
                if args.only and scenario.name not in args.only:
                    continue
                report[scenario.name] = await run_scenario(
                    scenario, server.url, folder, args.timeout
                )
                log.info("%s: %s", scenario.name, json.dumps(report[scenario.name]))
        finally:
            await asyncio.to_thread(server.stop)
            source.stop()
    healthy = report.get("healthy", {}).get("last_diagnostic_s", {})
    return {
        "benchmark": "diagnostics",
        "mode": "in-process running_bot, SQLite store, Slack emulator, real Prometheus, "
        "FakeSentry, real Postgres (Supabase)",
        "playbook": "HighErrorRate (2 Prometheus steps, each a graph, 1 Sentry step; "
        "the stalled scenarios' copy graphs one)",
        "target_healthy_s": 2.0,
        "healthy_p95_meets_target": (healthy.get("p95", math.inf) < 2.0) if healthy else None,
        "scenarios": report,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each healthy scenario")
    parser.add_argument("--stalled-runs", type=int, default=5, help="runs of each stalled one")
    parser.add_argument("--timeout", type=float, default=3.0, help="stalled step timeout (s)")
    parser.add_argument("--only", nargs="*", help="scenario names to run")
    args = parser.parse_args(argv)
    if not binary_available("prometheus"):
        print(json.dumps({"error": "prometheus not installed"}))
        return 1
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    log.setLevel(logging.INFO)
    result = asyncio.run(bench(args))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
