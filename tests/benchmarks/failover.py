"""Benchmark: two `tocsin serve` replicas on one Postgres, one Slack at its documented limits.

Failover: the replica holding the outbox lease is killed (SIGKILL) and a notification is sent
to the other at once; measured is the time from the kill to the next Slack call, which only
the other can make (goal: <= 10 s). Five runs; after each a fresh replica joins as the
standby. The lease's TTL (6 s) and the standby's look every TTL / 3 bound it.

Storm pace: 40 alert groups arrive at once, each at one of the two replicas (every fourth at
both); each needs a channel, and conversations.create is Tier 2 (20 a minute, fixed windows
from the first call), so the 40th channel can exist no sooner than one window after the first
webhook. Reported: that shortest time over the time taken (goal >= 0.9), channels made, and
the 429s Slack answered (goal 0).

Output: one JSON object on stdout; progress on stderr. Needs Postgres on 127.0.0.1:5432
(tests/replicas.py). Run from the repository root:

    python tests/benchmarks/failover.py [--runs 5] [--groups 40]   # 0 skips that part
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
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

from bot.slack.emulator import SlackEmulator, documented_rate_limits  # noqa: E402
from tests.harness import ServeProcess, post_webhook, running_emulator  # noqa: E402
from tests.pacing import SLACK_WINDOW  # noqa: E402
from tests.realservers import free_port  # noqa: E402
from tests.replicas import (  # noqa: E402
    answered_429,
    cards,
    group_payload,
    incident_channels,
    own_database,
    replicas,
    sender,
)

log = logging.getLogger("failover")
TIER2_PER_MINUTE = 20
CONFIG: dict[str, Any] = {}


async def wait_for_sender(processes: list[ServeProcess], timeout: float = 30.0) -> ServeProcess:
    """The replica that sends to Slack, once one does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await sender(processes)
        if found is not None:
            return found
        await asyncio.sleep(0.1)
    raise TimeoutError("no replica took the outbox lease")


async def next_call_after(emulator: SlackEmulator, since: float, timeout: float = 60.0) -> float:
    """Seconds from `since` (the emulator's clock) to the first Slack call made after it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        made = [c.at for c in emulator.calls if c.at > since]
        if made:
            return min(made) - since
        await asyncio.sleep(0.01)
    raise TimeoutError("no Slack call after the kill")


async def failovers(runs: int) -> list[float]:
    """Kill the sender `runs` times; each time, seconds until the other replica's first call."""
    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tocsin-failover-") as tmp:
        workdir = Path(tmp)
        async with (
            own_database() as url,
            running_emulator(rate_limits=documented_rate_limits()) as (emulator, api),
            replicas(url, api, workdir, CONFIG) as processes,
        ):
            for run in range(runs):
                holder = await wait_for_sender(processes)
                standby = next(p for p in processes if p is not holder and p.proc is not None)
                # Whatever the holder had to send is sent (the card of the last run, say).
                await asyncio.sleep(3)
                killed_at = time.monotonic()
                holder.kill()
                code, _ = await post_webhook(standby.url, group_payload(f"Failover{run:02d}"))
                assert code == 200, code
                took = await next_call_after(emulator, killed_at)
                seconds.append(round(took, 3))
                log.info("run %d: the standby's first Slack call %.2fs after the kill", run, took)
                processes.remove(holder)
                fresh = ServeProcess(standby.env, free_port(), workdir / f"fresh{run}.log")
                await fresh.start()
                processes.append(fresh)
            limited = answered_429(emulator)
        if limited:
            log.warning("429s during the failovers: %s", Counter(limited))
    return seconds


async def post_storm(processes: list[ServeProcess], groups: int) -> Counter[int]:
    """One notification per group, all at once, to one replica or (every fourth) both."""

    async def one(i: int) -> list[int]:
        body = group_payload(f"ReplicaPace{i:03d}")
        targets = processes if i % 4 == 0 else [processes[i % 2]]
        return [
            code for code, _ in await asyncio.gather(*(post_webhook(p.url, body) for p in targets))
        ]

    answers = await asyncio.gather(*(one(i) for i in range(groups)))
    return Counter(code for codes in answers for code in codes)


def finished(emulator: SlackEmulator, groups: int) -> bool:
    """Every channel has its card, pinned."""
    pinned = [c for c in emulator.calls_to("pins.add") if c.status == 200]
    return sum(cards(emulator).values()) >= groups and len(pinned) >= groups


async def storm(groups: int, timeout: float) -> dict[str, Any]:
    """The storm's pace with two replicas, against the least time Tier 2 allows."""
    bound = (math.ceil(groups / TIER2_PER_MINUTE) - 1) * SLACK_WINDOW
    with tempfile.TemporaryDirectory(prefix="tocsin-pace-") as tmp:
        workdir = Path(tmp)
        async with (
            own_database() as url,
            running_emulator(rate_limits=documented_rate_limits()) as (emulator, api),
            replicas(url, api, workdir, CONFIG) as processes,
        ):
            started = time.monotonic()
            statuses = await post_storm(processes, groups)
            deadline = started + timeout
            while len(incident_channels(emulator)) < groups and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            creates = [c.at for c in emulator.calls_to("conversations.create") if c.status == 200]
            took = max(creates) - started if len(creates) >= groups else None
            # Pins are Tier 2 too: the 429s are counted once every card is posted and pinned.
            while not finished(emulator, groups) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            limited = answered_429(emulator)
    return {
        "replicas": 2,
        "groups": groups,
        "webhook_statuses": dict(statuses),
        "channels": len(incident_channels(emulator)),
        "cards": sum(cards(emulator).values()),
        "pinned": len([c for c in emulator.calls_to("pins.add") if c.status == 200]),
        "seconds_to_last_channel": round(took, 2) if took else None,
        "shortest_possible_seconds": bound,
        "ratio": round(bound / took, 3) if took else None,
        "responses_429": len(limited),
        "responses_429_by_method": dict(Counter(limited)),
    }


async def run(runs: int, groups: int) -> dict[str, Any]:
    """Both measures (either one alone when `runs` or `groups` is 0)."""
    figures: dict[str, Any] = {}
    if runs:
        seconds = await failovers(runs)
        figures["failover"] = {
            "runs": runs,
            "seconds_kill_to_next_call": seconds,
            "p50": round(statistics.median(seconds), 3),
            "max": max(seconds),
            "goal_seconds": 10.0,
        }
    if groups:
        log.info("storm: %d groups on two replicas", groups)
        figures["storm_pace"] = await storm(groups, timeout=600.0)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--groups", type=int, default=40)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    print(json.dumps(asyncio.run(run(args.runs, args.groups)), indent=2))


if __name__ == "__main__":
    main()
