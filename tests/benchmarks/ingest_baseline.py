"""Benchmark: Tocsin's webhook ingest on SQLite against the bare baseline, side by side.

The baseline (`../shared/bench/baseline_ingest.py`) is an aiohttp endpoint that parses the
Alertmanager JSON and commits one SQLite row per alert: the physical limit of this stack. Both
servers take the same load in the same run, one after the other, for `--rounds` rounds (the
order alternates, so neither always gets the warmer machine):

  * `--connections` concurrent connections (default 16) from a child process of its own;
  * 1 alert per post, every post a new alert (a new instance label) of one alert group.

Tocsin runs as a real `python -m bot serve` process on a fresh migrated SQLite file, against a
SlackEmulator served from this process; a warm-up opens the incident first. Reported: posts per
second of each, per round, and the ratio Tocsin / baseline (the median of the rounds' ratios).

Output: one JSON object on stdout; progress on stderr. Run from the repository root:

    python tests/benchmarks/ingest_baseline.py [--posts 4000] [--rounds 3]
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
import statistics  # noqa: E402
import subprocess  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402

from tests.benchmarks.ingest import (  # noqa: E402
    LoadResult,
    Profiler,
    _ms,
    cpu_seconds,
    drive,
    drive_in_child,
    machine,
    percentile,
    report_of,
    start_server,
    stop_server,
)
from tests.builders import make_alert, make_payload  # noqa: E402
from tests.harness import running_emulator  # noqa: E402
from tests.realservers import free_port  # noqa: E402

log = logging.getLogger("bench.ingest_baseline")

BASELINE = REPO.parent / "shared" / "bench" / "baseline_ingest.py"
GROUP = "BaselineLoad"


def bodies(start: int, count: int) -> list[bytes]:
    """`count` posts of one alert each, every one a new alert of the one group."""
    return [
        json.dumps(
            make_payload(
                [make_alert(GROUP, instance=f"host-{n:06d}", service="checkout")], group=GROUP
            )
        ).encode()
        for n in range(start, start + count)
    ]


def summary(result: LoadResult, posts: int, server_cpu: float) -> dict[str, Any]:
    """Throughput, latency and the server's CPU time per post of one measured load (the CPU
    figure varies less than throughput when the machine's speed does)."""
    latencies = sorted(result.latencies)
    return {
        "posts_per_second": round(posts / result.elapsed, 1),
        "server_cpu_ms_per_post": round(1000 * server_cpu / posts, 3),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "errors": result.errors,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
    }


async def wait_ready(url: str) -> None:
    """Until the baseline answers /healthz."""
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("the baseline did not start")


async def run_baseline(workdir: Path, name: str, load: list[bytes], connections: int) -> Any:
    """The baseline on a fresh SQLite file, under `load`."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(BASELINE), str(port), str(workdir / f"{name}.db")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url)
        cpu = cpu_seconds(proc.pid)
        result = await drive_in_child(url, load, connections=connections)
        return summary(result, len(load), cpu_seconds(proc.pid) - cpu)
    finally:
        proc.terminate()
        proc.wait(10)


async def run_tocsin(
    workdir: Path,
    name: str,
    warmup: list[bytes],
    load: list[bytes],
    connections: int,
    profile: Path | None = None,
) -> Any:
    """`tocsin serve` on a fresh migrated SQLite file, warmed, under `load`."""
    database_url = f"sqlite+aiosqlite:///{workdir / (name + '.db')}"
    async with running_emulator() as (_emulator, emulator_url):
        serve = await start_server(workdir, name, database_url, emulator_url)
        try:
            connector = aiohttp.TCPConnector(limit=connections)
            async with aiohttp.ClientSession(connector=connector) as session:
                await drive(session, serve.url, warmup)
            await asyncio.sleep(1.0)
            assert serve.proc is not None
            profiler = Profiler(profile / f"{name}.txt" if profile else None, serve.proc.pid)
            cpu = cpu_seconds(serve.proc.pid)
            try:
                result = await drive_in_child(serve.url, load, connections=connections)
            finally:
                profiler.stop()
            return summary(result, len(load), cpu_seconds(serve.proc.pid) - cpu)
        finally:
            stop_server(serve)


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Every round, both servers."""
    rounds = []
    for n in range(args.rounds):
        warmup = bodies(0, args.warmup)
        load = bodies(args.warmup, args.posts)
        first, second = ("baseline", "tocsin") if n % 2 == 0 else ("tocsin", "baseline")
        measured: dict[str, Any] = {}
        for which in (first, second):
            log.info("round %d: %s, %d posts", n + 1, which, len(load))
            if which == "baseline":
                measured[which] = await run_baseline(workdir, f"b{n}", load, args.connections)
            else:
                measured[which] = await run_tocsin(
                    workdir, f"t{n}", warmup, load, args.connections, args.profile
                )
        ratio = measured["tocsin"]["posts_per_second"] / measured["baseline"]["posts_per_second"]
        measured["ratio"] = round(ratio, 3)
        log.info("round %d: %s", n + 1, json.dumps(measured))
        rounds.append(measured)
    return {
        "machine": machine(),
        "load": {
            "connections": args.connections,
            "alerts_per_post": 1,
            "posts": args.posts,
            "traffic": "every post a new alert of one group",
        },
        "rounds": rounds,
        "ratio_median": round(statistics.median(r["ratio"] for r in rounds), 3),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--posts", type=int, default=4000, help="measured posts per server")
    parser.add_argument("--warmup", type=int, default=200, help="Tocsin's warm-up posts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-temp", action="store_true", help="keep databases and logs")
    parser.add_argument("--profile", type=Path, help="write py-spy raw profiles of Tocsin here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its JSON report."""
    return report_of(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
