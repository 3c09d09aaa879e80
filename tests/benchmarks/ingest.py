"""Benchmark: Alertmanager webhook ingest on SQLite, and an alert storm under Slack's rate limits.

Tocsin runs as a real `python -m bot serve` process (tests.harness.ServeProcess) talking to a
SlackEmulator served from this process. The measured ingest load comes from aiohttp in a child
process of its own (the emulator's work in this one would make posts leave late); warm-up and the
storm are posted from this process. All of them share the machine's two cores.

Part 1, "ingest" (no Slack rate limits in the emulator; Tocsin keeps its own default pacing):
for 1 and for 50 alerts per post, a fresh SQLite file migrated with `schema.upgrade` and a fresh
server. A warm-up opens the 100 incidents and warms the connections, then a fixed number of posts
goes through `--connections` concurrent connections of one ClientSession. Traffic: 100 alert
groups (distinct alertname, so distinct groupKey) taken in turn. Every alert an instance sends
alternates firing -> resolved -> firing again with a later startsAt, so no body is a duplicate:
  * 1_alert: each group has 10 instances; a post carries one of them, one step further.
  * 50_alerts: each group has 50 instances; a post carries all 50, of which 10 (in rotation)
    changed state since the group's previous post, as Alertmanager resends a whole group.

With 1 alert per post the same server then takes posts open-loop at each `--rates` rate (default
100, 500, 800 and 1,000 posts/s, 5 s each): every post leaves at its own time whatever the
answers, and its latency counts from that time. The closed loop keeps `--connections` posts in
flight (default 8: Alertmanager sends one notification per group at a time, so a few Alertmanagers
make a handful of concurrent posts; 8 already keep the server busy). Its latency includes the
queue the connections make (connections / throughput: 32 connections add ~25 ms at 1,200/s); the
open-loop figures are the latency an Alertmanager (or several) sees at that load.

Part 2, "storm": 2,000 alerts in 100 groups, sent by default as 100 posts of 20 alerts (one
notification per group, as Alertmanager's group_wait batches them; `--storm-alerts-per-post 1`
sends 2,000 single-alert posts instead), against an emulator with Slack's documented limits
(`documented_rate_limits()`). Reports the time from the first post until 100 incident channels
exist and until 100 cards are pinned, the ratio of the shortest time Slack's Tier 2 allows for
100 conversations.create calls to the measured one, the 429s and the calls made during a
Retry-After (violations).

`--scale X` divides every emulator window by X (and multiplies the per-channel posting rate by X)
for a quick run. Tocsin's pacing window is a constant (`bot.slack.ratelimit.WINDOW`, 60 s) that no
setting changes, so for X != 1 the benchmark makes the server process set that constant to 60/X
through a `sitecustomize` module on its PYTHONPATH (a test-side patch; no product file changes),
and passes `outbox.per_channel_per_second` = X in tocsin.yml. At the default scale 1 nothing is
patched and Tocsin runs on its defaults, which match Slack's documented tiers.

Output: one JSON object on stdout; progress on stderr. Run from the repository root:

    python tests/benchmarks/ingest.py [--ingest-only | --storm-only] [--scale 10]
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
import multiprocessing  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Coroutine, Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from bot.slack.emulator import SlackEmulator  # noqa: E402
from bot.store import schema  # noqa: E402
from tests.builders import make_alert, make_payload  # noqa: E402
from tests.harness import ServeProcess, bot_env, running_emulator  # noqa: E402
from tests.pacing import SLACK_WINDOW, scaled_limits, scaled_server  # noqa: E402
from tests.realservers import free_port  # noqa: E402

log = logging.getLogger("bench.ingest")

WEBHOOK = "/webhooks/alertmanager"
HEADERS = {"Content-Type": "application/json"}
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
GROUPS = 100
TIER2_PER_MINUTE = 20


# --- traffic ----------------------------------------------------------------------------------


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Traffic:
    """Webhook bodies over `groups` alert groups; each post moves some alerts one state further.

    An instance's state k means: firing (k even) or resolved (k odd), since BASE_TIME + k//2
    times 5 minutes. The first time an instance is sent it fires (k = 0).
    """

    prefix: str
    instances: int
    alerts_per_post: int
    changes_per_post: int
    groups: int = GROUPS
    posts_made: int = 0
    _state: dict[tuple[int, int], int] = field(default_factory=dict)

    def _alert(self, group: int, instance: int) -> dict[str, Any]:
        k = self._state[(group, instance)]
        starts = BASE_TIME + timedelta(minutes=5 * (k // 2), seconds=group)
        firing = k % 2 == 0
        return make_alert(
            self.group_name(group),
            status="firing" if firing else "resolved",
            starts_at=_stamp(starts),
            ends_at=_stamp(starts + timedelta(minutes=2)) if not firing else "0001-01-01T00:00:00Z",
            instance=f"host-{instance:02d}",
            service=f"svc-{group:03d}",
        )

    def group_name(self, group: int) -> str:
        """The alertname (and so the groupKey) of a group."""
        return f"{self.prefix}{group:03d}"

    def _advance(self, group: int, instance: int) -> None:
        key = (group, instance)
        self._state[key] = self._state[key] + 1 if key in self._state else 0

    def next_body(self) -> bytes:
        """The next post, as JSON bytes."""
        n = self.posts_made
        self.posts_made += 1
        group, round_ = n % self.groups, n // self.groups
        carried = [
            (round_ * self.alerts_per_post + j) % self.instances
            for j in range(self.alerts_per_post)
        ]
        changed = {
            (round_ * self.changes_per_post + j) % self.instances
            for j in range(self.changes_per_post)
        }
        for instance in carried:
            if instance in changed or (group, instance) not in self._state:
                self._advance(group, instance)
        alerts = [self._alert(group, i) for i in carried]
        return json.dumps(make_payload(alerts, group=self.group_name(group))).encode()

    def bodies(self, count: int) -> list[bytes]:
        """The next `count` posts."""
        return [self.next_body() for _ in range(count)]


def storm_bodies(alerts_per_group: int, alerts_per_post: int) -> list[bytes]:
    """A storm: every group's firing alerts, chunked into posts, groups interleaved."""
    posts: list[bytes] = []
    for start in range(0, alerts_per_group, alerts_per_post):
        for group in range(GROUPS):
            name = f"Storm{group:03d}"
            alerts = [
                make_alert(
                    name,
                    starts_at=_stamp(BASE_TIME + timedelta(seconds=i)),
                    instance=f"host-{i:02d}",
                    service=f"svc-{group:03d}",
                )
                for i in range(start, min(start + alerts_per_post, alerts_per_group))
            ]
            posts.append(json.dumps(make_payload(alerts, group=name)).encode())
    return posts


# --- load -------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What one batch of posts measured on the client side."""

    latencies: list[float]
    statuses: Counter[int]
    elapsed: float
    late: list[float] = field(default_factory=list)  # open loop: how late posts left (sorted)
    cpu_seconds: float = 0.0  # the client process's CPU time while posting

    @property
    def errors(self) -> int:
        """Posts not answered 200 (0 = connection error or timeout)."""
        return sum(count for status, count in self.statuses.items() if status != 200)


async def post_once(session: aiohttp.ClientSession, url: str, body: bytes) -> int:
    """POST one webhook body; its HTTP status, or 0 for a connection error or timeout."""
    try:
        async with session.post(url + WEBHOOK, data=body, headers=HEADERS) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("post failed: %s", type(exc).__name__)
        return 0


async def drive(session: aiohttp.ClientSession, url: str, bodies: Sequence[bytes]) -> LoadResult:
    """POST every body, as many at once as the session's connector allows."""
    connector = session.connector
    workers = connector.limit if connector is not None and connector.limit else 1
    latencies = [0.0] * len(bodies)
    statuses: Counter[int] = Counter()
    work = iter(enumerate(bodies))  # shared by the workers: one event loop, no locking needed

    async def worker() -> None:
        for index, body in work:
            started = time.perf_counter()
            status = await post_once(session, url, body)
            latencies[index] = time.perf_counter() - started
            statuses[status] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return LoadResult(latencies, statuses, time.perf_counter() - started)


async def drive_at_rate(
    session: aiohttp.ClientSession, url: str, bodies: Sequence[bytes], rate: float
) -> LoadResult:
    """POST the bodies open-loop at `rate` per second, each at its own time whatever the answers.

    Latency is counted from when a post was due, not when it left, so a server that falls behind
    is charged for the wait it causes (no coordinated omission).
    """
    latencies = [0.0] * len(bodies)
    late = [0.0] * len(bodies)
    statuses: Counter[int] = Counter()
    started = time.perf_counter()

    async def post(index: int, body: bytes, due: float) -> None:
        late[index] = time.perf_counter() - due
        status = await post_once(session, url, body)
        latencies[index] = time.perf_counter() - due
        statuses[status] += 1

    tasks = []
    for index, body in enumerate(bodies):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(index, body, due)))
    await asyncio.gather(*tasks)
    return LoadResult(latencies, statuses, time.perf_counter() - started, sorted(late))


def _drive_alone(
    url: str, bodies: Sequence[bytes], rate: float | None, connections: int
) -> LoadResult:
    """drive (closed loop, rate None) or drive_at_rate, in a process of its own."""

    async def go() -> LoadResult:
        connector = aiohttp.TCPConnector(limit=connections)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            cpu = time.process_time()
            if rate is None:
                result = await drive(session, url, bodies)
            else:
                result = await drive_at_rate(session, url, bodies, rate)
            result.cpu_seconds = time.process_time() - cpu
            return result

    return asyncio.run(go())


async def drive_in_child(
    url: str, bodies: Sequence[bytes], *, rate: float | None = None, connections: int = 100
) -> LoadResult:
    """Post from a separate process: the emulator serving Tocsin's Slack calls lives in this one,
    and its work would make posts leave late (and be counted as server latency)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return await asyncio.get_running_loop().run_in_executor(
            pool, _drive_alone, url, list(bodies), rate, connections
        )


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# --- the server process -----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def scrape(session: aiohttp.ClientSession, url: str) -> dict[str, list[Any]]:
    """The server's /metrics: samples by metric family name."""
    async with session.get(url + "/metrics") as response:
        text = await response.text()
    return {family.name: list(family.samples) for family in text_string_to_metric_families(text)}


def histogram_delta(
    before: dict[str, list[Any]], after: dict[str, list[Any]], name: str
) -> dict[str, Any] | None:
    """Count, mean and bucket-bounded p50/p99 of a histogram between two scrapes."""

    def values(scrape_: dict[str, list[Any]]) -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels.get("le", "")): float(s.value)
            for s in scrape_.get(name, [])
            if s.labels.get("source", "alertmanager") == "alertmanager"
        }

    b, a = values(before), values(after)
    count = a.get((f"{name}_count", ""), 0.0) - b.get((f"{name}_count", ""), 0.0)
    total = a.get((f"{name}_sum", ""), 0.0) - b.get((f"{name}_sum", ""), 0.0)
    if count <= 0:
        return None
    buckets = sorted(
        (float(le), value - b.get((metric, le), 0.0))
        for (metric, le), value in a.items()
        if metric == f"{name}_bucket"
    )

    def bound(p: float) -> float:
        rank = p / 100 * count
        return next((le for le, cumulative in buckets if cumulative >= rank), math.inf)

    return {
        "count": int(count),
        "mean_ms": _ms(total / count),
        "p50_le_ms": _ms(bound(50)),
        "p99_le_ms": _ms(bound(99)),
    }


def counter_total(scraped: dict[str, list[Any]], name: str, **labels: str) -> float:
    """Sum of a counter's samples whose labels match."""
    return sum(
        float(s.value)
        for s in scraped.get(name, [])
        if s.name == f"{name}_total" and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def start_server(
    workdir: Path,
    name: str,
    database_url: str,
    emulator_url: str,
    scale: float = 1.0,
    config: dict[str, Any] | None = None,
) -> ServeProcess:
    """A migrated SQLite store and `tocsin serve` on it (with `config` in its tocsin.yml),
    ready."""
    await asyncio.to_thread(schema.upgrade, database_url)
    config_path, extra_env = scaled_server(workdir, scale, config)
    serve = ServeProcess(
        bot_env(database_url, emulator_url, **extra_env), free_port(), workdir / f"{name}.log"
    )
    serve.env["TOCSIN_CONFIG"] = str(config_path)  # ServeProcess blanks it; we want our file
    try:
        await serve.start()
    except BaseException:
        stop_server(serve)
        raise
    return serve


def stop_server(serve: ServeProcess) -> None:
    """Stop the server; say where its log was if it misbehaved."""
    serve.stop()
    if serve.proc is not None and serve.proc.returncode not in (0, None):
        log.warning("tocsin serve exited %s; log tail:", serve.proc.returncode)
        log.warning("%s", serve.log_path.read_text(errors="replace")[-2000:])


class Profiler:
    """py-spy recording the server while a phase runs (optional)."""

    def __init__(self, out: Path | None, pid: int, *, native: bool = False) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if out is None:
            return
        exe = shutil.which("py-spy")
        if exe is None:
            log.warning("--profile: py-spy is not installed (pip install py-spy); not profiling")
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "250"]
        self.proc = subprocess.Popen(
            [*command, *(["--native"] if native else []), "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # let it attach

    def stop(self) -> None:
        """Stop recording and write the profile."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# --- part 1: ingest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One ingest scenario."""

    name: str
    alerts_per_post: int
    instances: int
    changes_per_post: int
    warmup: int
    posts: int


async def run_ingest(
    scenario: Scenario,
    *,
    connections: int,
    workdir: Path,
    profile_dir: Path | None,
    profile_native: bool = False,
    rates: Sequence[float] = (),
    rate_seconds: float = 5.0,
) -> dict[str, Any]:
    """Throughput and latency of POST /webhooks/alertmanager for one scenario.

    First closed-loop through `connections` at once (throughput at saturation; latency there is
    mostly queueing: connections / throughput), then open-loop at each of `rates` posts per
    second for `rate_seconds` (latency at a given load).
    """
    traffic = Traffic(
        prefix="Bench",
        instances=scenario.instances,
        alerts_per_post=scenario.alerts_per_post,
        changes_per_post=scenario.changes_per_post,
    )
    warmup, measured = traffic.bodies(scenario.warmup), traffic.bodies(scenario.posts)
    database_url = f"sqlite+aiosqlite:///{workdir / (scenario.name + '.db')}"
    log.info("ingest %s: %d warm-up + %d posts", scenario.name, scenario.warmup, scenario.posts)
    async with running_emulator() as (emulator, emulator_url):
        serve = await start_server(workdir, scenario.name, database_url, emulator_url)
        try:
            assert serve.proc is not None
            connector = aiohttp.TCPConnector(limit=connections)
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                warm = await drive(session, serve.url, warmup)
                if warm.errors:
                    log.warning("warm-up errors: %s", dict(warm.statuses))
                await asyncio.sleep(1.0)
                before = await scrape(session, serve.url)
                profile = Profiler(
                    profile_dir / f"ingest-{scenario.name}.txt" if profile_dir else None,
                    serve.proc.pid,
                    native=profile_native,
                )
                server_cpu = cpu_seconds(serve.proc.pid)
                calls_before = len(emulator.calls)
                try:
                    result = await drive_in_child(serve.url, measured, connections=connections)
                finally:
                    server_cpu = cpu_seconds(serve.proc.pid) - server_cpu
                    profile.stop()
                slack_calls = Counter(call.method for call in emulator.calls[calls_before:])
                after = await scrape(session, serve.url)
                at_rate = {}
                for rate in rates:
                    bodies = traffic.bodies(int(rate * rate_seconds))
                    start = await scrape(session, serve.url)
                    paced = await drive_in_child(serve.url, bodies, rate=rate)
                    end = await scrape(session, serve.url)
                    at_rate[f"{rate:g}_per_second"] = {
                        **_latency_summary(paced),
                        "server_tocsin_webhook_seconds": histogram_delta(
                            start, end, "tocsin_webhook_seconds"
                        ),
                    }
                    await asyncio.sleep(1.0)
        finally:
            stop_server(serve)
    latencies = sorted(result.latencies)
    return {
        "alerts_per_post": scenario.alerts_per_post,
        "alerts_changed_per_post": scenario.changes_per_post,
        "connections": connections,
        "warmup_posts": scenario.warmup,
        "posts": scenario.posts,
        "seconds": round(result.elapsed, 3),
        "posts_per_second": round(scenario.posts / result.elapsed, 1),
        "alerts_per_second": round(scenario.posts * scenario.alerts_per_post / result.elapsed, 1),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p90_ms": _ms(percentile(latencies, 90)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(latencies[-1]),
        "mean_ms": _ms(sum(latencies) / len(latencies)),
        "errors": result.errors,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "server_cpu_percent": round(100 * server_cpu / result.elapsed, 1),
        "client_process_cpu_percent": round(100 * result.cpu_seconds / result.elapsed, 1),
        "server_tocsin_webhook_seconds": histogram_delta(before, after, "tocsin_webhook_seconds"),
        "slack_calls_meanwhile": dict(slack_calls.most_common()),
        "open_loop": at_rate,
    }


def _latency_summary(result: LoadResult) -> dict[str, Any]:
    latencies = sorted(result.latencies)
    return {
        "posts": len(latencies),
        "achieved_per_second": round(len(latencies) / result.elapsed, 1),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(latencies[-1]),
        "errors": result.errors,
        "client_late_p99_ms": _ms(percentile(result.late, 99)),
    }


# --- part 2: storm ----------------------------------------------------------------------------


@dataclass
class StormProgress:
    """Arrival times (emulator clock = time.monotonic) of successful creates and pins."""

    created: list[float] = field(default_factory=list)
    pinned: list[float] = field(default_factory=list)
    seen: int = 0

    def update(self, emulator: SlackEmulator) -> None:
        """Look at the calls recorded since the last look."""
        calls = emulator.calls[self.seen :]
        self.seen += len(calls)
        for call in calls:
            if not call.response.get("ok"):
                continue
            name = str(call.params.get("name", ""))
            if call.method == "conversations.create" and name.startswith("inc-"):
                self.created.append(call.at)
            elif call.method == "pins.add":
                self.pinned.append(call.at)


async def outbox_depth(session: aiohttp.ClientSession, url: str) -> int | None:
    """The server's outbox depth, as /readyz reports it."""
    try:
        async with session.get(url + "/readyz") as response:
            report = await response.json()
        depth = report["checks"]["outbox"]["depth"]
        return int(depth) if depth is not None else None
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
        return None


async def run_storm(
    *,
    scale: float,
    alerts_per_group: int,
    alerts_per_post: int,
    connections: int,
    timeout: float,
    workdir: Path,
) -> dict[str, Any]:
    """2,000 alerts in 100 groups against Slack's documented limits."""
    bodies = storm_bodies(alerts_per_group, alerts_per_post)
    window = SLACK_WINDOW / scale
    min_possible = (math.ceil(GROUPS / TIER2_PER_MINUTE) - 1) * window
    database_url = f"sqlite+aiosqlite:///{workdir / 'storm.db'}"
    progress = StormProgress()
    log.info(
        "storm: %d alerts in %d posts, scale %g (Tier 2 window %.1fs, best case %.0fs)",
        GROUPS * alerts_per_group,
        len(bodies),
        scale,
        window,
        min_possible,
    )
    async with running_emulator() as (emulator, emulator_url):
        for method, limit in scaled_limits(scale).items():
            emulator.set_rate_limit(method, limit)  # also restarts windows used by the set-up
        serve = await start_server(workdir, "storm", database_url, emulator_url, scale)
        try:
            connector = aiohttp.TCPConnector(limit=connections)
            async with aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=60)
            ) as session:
                first_post = time.monotonic()
                posted = await drive(session, serve.url, bodies)
                log.info("storm posted in %.2fs (%s)", posted.elapsed, dict(posted.statuses))
                deadline = first_post + timeout
                next_report = 0.0
                while time.monotonic() < deadline:
                    progress.update(emulator)
                    if len(progress.created) >= GROUPS and len(progress.pinned) >= GROUPS:
                        break
                    if time.monotonic() >= next_report:
                        log.info(
                            "storm t=%.0fs: %d channels, %d pins",
                            time.monotonic() - first_post,
                            len(progress.created),
                            len(progress.pinned),
                        )
                        next_report = time.monotonic() + 15
                    await asyncio.sleep(0.2)
                depth_at_pins = await outbox_depth(session, serve.url)
                drain_deadline = time.monotonic() + max(10.0, 120.0 / scale)
                drained_at: float | None = None
                depth = depth_at_pins
                while time.monotonic() < drain_deadline and depth != 0:
                    await asyncio.sleep(0.5)
                    depth = await outbox_depth(session, serve.url)
                if depth == 0:
                    drained_at = time.monotonic()
                scraped = await scrape(session, serve.url)
        finally:
            stop_server(serve)
    progress.update(emulator)
    return storm_report(
        emulator=emulator,
        progress=progress,
        first_post=first_post,
        posted=posted,
        min_possible=min_possible,
        window=window,
        depth_at_pins=depth_at_pins,
        depth_end=depth,
        drained_at=drained_at,
        scraped=scraped,
        scale=scale,
        alerts=GROUPS * alerts_per_group,
        alerts_per_post=alerts_per_post,
    )


def storm_report(
    *,
    emulator: SlackEmulator,
    progress: StormProgress,
    first_post: float,
    posted: LoadResult,
    min_possible: float,
    window: float,
    depth_at_pins: int | None,
    depth_end: int | None,
    drained_at: float | None,
    scraped: dict[str, list[Any]],
    scale: float,
    alerts: int,
    alerts_per_post: int,
) -> dict[str, Any]:
    """The storm's figures."""

    def nth(times: list[float], n: int) -> float | None:
        return round(sorted(times)[n - 1] - first_post, 2) if len(times) >= n else None

    to_channels, to_pins = nth(progress.created, GROUPS), nth(progress.pinned, GROUPS)
    limited = [c for c in emulator.calls if c.status == 429]
    return {
        "scale": scale,
        "tocsin_window_patched": scale != 1.0,
        "alerts": alerts,
        "posts": len(posted.latencies),
        "alerts_per_post": alerts_per_post,
        "post_errors": posted.errors,
        "posting_seconds": round(posted.elapsed, 3),
        "channels_created": len(progress.created),
        "cards_pinned": len(progress.pinned),
        "seconds_to_100_channels": to_channels,
        "seconds_to_100_pins": to_pins,
        "min_possible_seconds": min_possible,
        "ratio": round(min_possible / to_channels, 3) if to_channels else None,
        "tier2_window_seconds": window,
        "channel_n_at_seconds": {
            str(n): nth(progress.created, n) for n in (1, 20, 21, 40, 41, 60, 61, 80, 81, 100)
        },
        "pin_n_at_seconds": {str(n): nth(progress.pinned, n) for n in (1, 20, 40, 60, 80, 100)},
        "responses_429": len(limited),
        "responses_429_by_method": dict(Counter(c.method for c in limited)),
        "violations": len(emulator.violations),
        "slack_calls_by_method": dict(Counter(c.method for c in emulator.calls)),
        "outbox_depth_at_100_pins": depth_at_pins,
        "outbox_depth_end": depth_end,
        "seconds_to_outbox_empty": round(drained_at - first_post, 2) if drained_at else None,
        "outbox_jobs_failed": counter_total(scraped, "tocsin_outbox_jobs", outcome="failed"),
        "local_pacing_waits": counter_total(
            scraped, "tocsin_slack_rate_limited_waits", reason="local"
        ),
    }


# --- main -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "aiohttp": aiohttp.__version__,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--ingest-only", action="store_true", help="skip the alert storm")
    only.add_argument("--storm-only", action="store_true", help="skip the webhook load test")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="storm only: divide every rate-limit window by this (quick runs)",
    )
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--rates",
        type=lambda text: [float(r) for r in text.split(",") if r],
        default=[100.0, 500.0, 800.0, 1000.0],
        help="open-loop rates (posts/s, comma-separated) for 1-alert latency; '' for none",
    )
    parser.add_argument("--posts-1", type=int, default=5000, help="measured 1-alert posts")
    parser.add_argument("--posts-50", type=int, default=1000, help="measured 50-alert posts")
    parser.add_argument("--warmup-1", type=int, default=500, help="1-alert warm-up posts")
    parser.add_argument("--warmup-50", type=int, default=200, help="50-alert warm-up posts")
    parser.add_argument("--storm-alerts-per-post", type=int, default=20, choices=(1, 2, 5, 10, 20))
    parser.add_argument("--storm-connections", type=int, default=16)
    parser.add_argument("--storm-timeout", type=float, default=900.0, help="seconds, at scale 1")
    parser.add_argument("--profile", type=Path, help="write py-spy raw profiles of ingest here")
    parser.add_argument("--profile-native", action="store_true", help="py-spy --native")
    parser.add_argument("--keep-temp", action="store_true", help="keep databases and logs")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    return args


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Both parts, as asked."""
    report: dict[str, Any] = {"machine": machine()}
    if not args.storm_only:
        scenarios = [
            Scenario("1_alert", 1, 10, 1, args.warmup_1, args.posts_1),
            Scenario("50_alerts", 50, 50, 10, args.warmup_50, args.posts_50),
        ]
        report["ingest"] = {}
        for scenario in scenarios:
            report["ingest"][scenario.name] = await run_ingest(
                scenario,
                connections=args.connections,
                workdir=workdir,
                profile_dir=args.profile,
                profile_native=args.profile_native,
                rates=args.rates if scenario.alerts_per_post == 1 else (),
            )
            log.info("%s: %s", scenario.name, json.dumps(report["ingest"][scenario.name]))
    if not args.ingest_only:
        report["storm"] = await run_storm(
            scale=args.scale,
            alerts_per_group=20,
            alerts_per_post=args.storm_alerts_per_post,
            connections=args.storm_connections,
            timeout=max(60.0, args.storm_timeout / args.scale),
            workdir=workdir,
        )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its JSON report."""
    return report_of(run, parse_args(argv))


def report_of(
    run: Callable[[argparse.Namespace, Path], Coroutine[Any, Any, dict[str, Any]]],
    args: argparse.Namespace,
) -> int:
    """`run(args, workdir)` in a temporary folder (kept with --keep-temp); its JSON report on
    stdout, progress on stderr."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the emulator's access log
    workdir = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))
    try:
        report = asyncio.run(run(args, workdir))
    finally:
        if args.keep_temp:
            log.info("kept %s", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
