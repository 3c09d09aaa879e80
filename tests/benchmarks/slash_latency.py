"""Benchmark: slash-command acknowledgement latency while an alert storm is processed.

Tocsin runs as a real `python -m bot serve` process (SQLite) against the Slack emulator set to
Slack's documented rate limits, so its outbox is busy pacing Slack calls. The script sends
correctly signed `/incident list` and `/incident help` commands through the emulator's helper and
measures the HTTP round trip of each (what Slack's 3-second deadline applies to), first on an
idle bot, then while 2,000 alerts in 100 groups (and repeats of them) pour into the webhook from
a separate process, as fast as 16 connections can post them, and last while another process
holds SQLite's write lock for `--lock-seconds` (default 10; as `tocsin db upgrade` or a backup
would), with a webhook posted every 0.2 s meanwhile (answered once the lock is let go, or 503).

Prints one JSON object. Run from the repository root:

    python tests/benchmarks/slash_latency.py [--commands 300] [--storm-connections 16]

`--no-storm-mode` runs Tocsin with storm mode and flapping off, to compare its figures with
runs from before those existed.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402

from bot.slack.emulator import SlackEmulator, documented_rate_limits  # noqa: E402
from bot.store import schema  # noqa: E402
from tests.builders import make_alert, make_payload  # noqa: E402
from tests.harness import ServeProcess, bot_env, running_emulator  # noqa: E402
from tests.realservers import free_port  # noqa: E402

log = logging.getLogger("bench.slash")
USER = "U0BENCH001"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(elapsed: list[float], statuses: list[int]) -> dict[str, Any]:
    """Latency figures in milliseconds."""
    ms = [e * 1000 for e in elapsed]
    return {
        "commands": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "non_200": sum(1 for s in statuses if s != 200),
        "over_3000_ms": sum(1 for m in ms if m > 3000),
    }


async def send_commands(
    emulator: SlackEmulator, url: str, count: int, gap: float, stop: asyncio.Event | None = None
) -> dict[str, Any]:
    """Send `count` signed commands one after another, `gap` seconds apart."""
    elapsed: list[float] = []
    statuses: list[int] = []
    for i in range(count):
        if stop is not None and stop.is_set():
            break
        text = "list" if i % 2 == 0 else "help"
        reply = await emulator.send_slash_command(
            f"{url}/slack/events", "/incident", text, user_id=USER, channel_id="C0GENERAL1"
        )
        elapsed.append(reply.elapsed)
        statuses.append(reply.status)
        await asyncio.sleep(gap)
    return summary(elapsed, statuses)


def storm_alone(url: str, connections: int, seconds: float) -> dict[str, Any]:
    """`storm` for `seconds`, in a process of its own (run by a process pool).

    The emulator answering Tocsin's Slack calls and the command sender share this script's event
    loop; a storm client on it too would delay the commands' sending and their timing, and the
    delay would be charged to Tocsin.
    """

    async def go() -> dict[str, Any]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stop.set)
        return await storm(url, connections, stop)

    return asyncio.run(go())


async def storm(url: str, connections: int, stop: asyncio.Event) -> dict[str, Any]:
    """2,000 alerts in 100 groups, then the same groups again (re-fired), until told to stop."""
    posted = 0
    errors = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=connections * 4)

    async def produce() -> None:
        round_ = 0
        while not stop.is_set():
            for alert in range(20):
                for group in range(100):
                    starts = f"2026-11-26T{10 + round_ % 10:02d}:00:{alert:02d}Z"
                    body = make_payload(
                        [make_alert(f"Storm{group}", starts_at=starts, instance=f"i{alert}")],
                        group=f"Storm{group}",
                    )
                    await queue.put(json.dumps(body).encode())
                    if stop.is_set():
                        return
            round_ += 1

    async def consume(session: aiohttp.ClientSession) -> None:
        nonlocal posted, errors
        while not stop.is_set():
            try:
                body = await asyncio.wait_for(queue.get(), timeout=1)
            except TimeoutError:
                continue
            async with session.post(
                f"{url}/webhooks/alertmanager",
                data=io.BytesIO(body),
                headers={"Content-Type": "application/json"},
            ) as response:
                await response.read()
                posted += 1
                errors += response.status != 200

    started = time.monotonic()
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        producer = asyncio.create_task(produce())
        await asyncio.gather(*(consume(session) for _ in range(connections)))
        producer.cancel()  # it may be waiting for room in the queue no one empties now
    seconds = time.monotonic() - started
    return {"posts": posted, "errors": errors, "posts_per_second": round(posted / seconds, 1)}


HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE alembic_version SET version_num = version_num")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


async def while_locked(
    emulator: SlackEmulator, url: str, database: Path, seconds: float
) -> dict[str, Any]:
    """Commands, and a webhook every 0.2 s, while another process holds the write lock."""
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD_LOCK,
        str(database),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert await holder.stdout.readline() == b"locked\n"
    stop = asyncio.Event()
    statuses: Counter[int] = Counter()

    async def webhooks() -> None:
        async with aiohttp.ClientSession() as session:
            n = 0
            tasks = []
            while not stop.is_set():
                body = make_payload([make_alert("Locked", instance=f"l{n}")], group="Locked")
                tasks.append(asyncio.ensure_future(post(session, json.dumps(body).encode())))
                n += 1
                await asyncio.sleep(0.2)
            await asyncio.gather(*tasks)

    async def post(session: aiohttp.ClientSession, body: bytes) -> None:
        async with session.post(
            f"{url}/webhooks/alertmanager",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as response:
            statuses[response.status] += 1

    posting = asyncio.ensure_future(webhooks())
    commands = asyncio.ensure_future(send_commands(emulator, url, 10_000, 0.05, stop))
    await holder.wait()
    stop.set()
    figures = await commands
    await posting
    return {
        "lock_held_seconds": seconds,
        **figures,
        "webhook_statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run both phases against one Tocsin process."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite+aiosqlite:///{folder / 'tocsin.db'}"
        await asyncio.to_thread(schema.upgrade, url)
        config = folder / "tocsin.yml"
        storm_mode = "" if args.storm_mode else "storm: false\nflapping: false\n"
        config.write_text("alerts_channel: alerts\n" + storm_mode)
        async with running_emulator(rate_limits=documented_rate_limits()) as (emulator, api):
            emulator.add_user(USER, "bench")
            emulator.add_channel("general", members=[USER])
            serve = ServeProcess(bot_env(url, api), free_port(), folder / "tocsin.log")
            serve.env["TOCSIN_CONFIG"] = str(config)
            await serve.start()
            try:
                idle = await send_commands(emulator, serve.url, args.commands, 0.02)
                # Long enough for the build-up and every command even if each took 100 ms.
                seconds = 2 + args.commands * 0.15
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    storm_run = asyncio.get_running_loop().run_in_executor(
                        pool, storm_alone, serve.url, args.storm_connections, seconds
                    )
                    await asyncio.sleep(2)  # let the storm build up
                    stop = asyncio.Event()
                    storm_run.add_done_callback(lambda _: stop.set())
                    loaded = await send_commands(emulator, serve.url, args.commands, 0.05, stop)
                    storm_figures = await storm_run
                locked = await while_locked(
                    emulator, serve.url, folder / "tocsin.db", args.lock_seconds
                )
            finally:
                serve.stop()
        return {
            "machine": {"python": sys.version.split()[0]},
            "deadline_ms": 3000,
            "idle": idle,
            "during_storm": loaded,
            "storm": storm_figures,
            "while_another_process_holds_the_write_lock": locked,
            "slack_429s": sum(1 for c in emulator.calls if c.status == 429),
            "slack_429s_by_method": dict(
                Counter(c.method for c in emulator.calls if c.status == 429).most_common()
            ),
            "slack_violations": len(emulator.violations),
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--storm-connections", type=int, default=16)
    parser.add_argument("--lock-seconds", type=float, default=10.0)
    parser.add_argument(
        "--no-storm-mode",
        dest="storm_mode",
        action="store_false",
        help="run Tocsin with `storm: false` and `flapping: false` (as before they existed)",
    )
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
