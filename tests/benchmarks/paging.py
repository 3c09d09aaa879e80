"""Benchmark: a paging storm. The alert storm of ingest.py, with escalation.

50 alert groups arrive at once (one Alertmanager notification each); each opens an incident
whose policy pages the same two people: level 1 at once, level 2 (the same two and a third)
after `--level-timeout` (default 1 minute) if nobody acknowledges. Tocsin runs as a real
`python -m bot serve` process against a SlackEmulator with Slack's documented limits
(`documented_rate_limits()`), served from this process; `--scale X` speeds every window up
X times, in the emulator and in Tocsin (tests/pacing.py), for a quick run.

Reports: page messages posted and DMs sent per level, invitations made, duplicates (a page
message repeated for an incident and level, a DM repeated for a person, incident and level;
goal 0), 429s and calls made during a Retry-After, and the time from the first webhook until
every level-1 DM is delivered, against the shortest time Slack's limits allow for it (goal:
ratio >= 0.8).

The shortest time: every level-1 DM needs its incident's channel, and conversations.create
is Tier 2 (20 a minute, fixed windows from the first call): the 50th channel can exist no
sooner than (ceil(50 / 20) - 1) windows after the first. Each person's 50 level-1 DMs go to
one DM channel at about one message a second, so they take at least 49 s; the bound is the
larger of the two.

Output: one JSON object on stdout; progress on stderr. Run from the repository root:

    python tests/benchmarks/paging.py [--scale 10] [--groups 50]
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
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402

from bot.store import schema  # noqa: E402
from tests.builders import make_alert, make_payload  # noqa: E402
from tests.harness import ServeProcess, bot_env, running_emulator  # noqa: E402
from tests.pacing import SLACK_WINDOW, scaled_limits, scaled_server  # noqa: E402
from tests.pages import dm_times, page_messages  # noqa: E402
from tests.realservers import free_port  # noqa: E402

log = logging.getLogger("paging")
PEOPLE = {"U0ALICE01": "alice", "U0BOB0001": "bob", "U0CAROL01": "carol"}
LEVEL_1 = ["U0ALICE01", "U0BOB0001"]
LEVEL_2 = [*LEVEL_1, "U0CAROL01"]
TIER2_PER_MINUTE = 20


def policy(level_timeout: str) -> dict[str, Any]:
    """tocsin.yml's escalation: the same people paged by every incident."""
    return {
        "escalation": {
            "default": "storm",
            "policies": [
                {
                    "name": "storm",
                    "levels": [
                        {"targets": [f"user:{u}" for u in LEVEL_1], "timeout": level_timeout},
                        {"targets": [f"user:{u}" for u in LEVEL_2], "timeout": "1h"},
                    ],
                }
            ],
        }
    }


def shortest(groups: int, window: float, per_channel_per_second: float) -> float:
    """The least time from the first webhook to the last level-1 DM that the limits allow."""
    channels = (math.ceil(groups / TIER2_PER_MINUTE) - 1) * window
    dms = (groups - 1) / per_channel_per_second
    return max(channels, dms)


async def post_storm(url: str, groups: int) -> Counter[int]:
    """One notification per group, all at once; the answers' status codes."""
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> int:
            name = f"PagingStorm{i:03d}"
            body = make_payload([make_alert(name, service="api")], group=name)
            async with session.post(f"{url}/webhooks/alertmanager", json=body) as response:
                return response.status

        return Counter(await asyncio.gather(*(one(i) for i in range(groups))))


async def settled(url: str) -> bool:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as response:
        checks = (await response.json())["checks"]
    return bool(checks["outbox"]["depth"] == 0 and checks["timers"]["due"] == 0)


async def run(scale: float, groups: int, level_timeout: str, timeout: float) -> dict[str, Any]:
    """The storm, measured."""
    window = SLACK_WINDOW / scale
    bound = shortest(groups, window, scale)
    with tempfile.TemporaryDirectory(prefix="tocsin-paging-") as tmp:
        workdir = Path(tmp)
        database_url = f"sqlite+aiosqlite:///{workdir / 'paging.db'}"
        await asyncio.to_thread(schema.upgrade, database_url)
        config, extra_env = scaled_server(workdir, scale, policy(level_timeout))
        async with running_emulator(rate_limits=scaled_limits(scale)) as (emulator, emulator_url):
            for user, name in PEOPLE.items():
                emulator.add_user(user, name)
            serve = ServeProcess(
                bot_env(database_url, emulator_url, **extra_env), free_port(), workdir / "s.log"
            )
            serve.env["TOCSIN_CONFIG"] = str(config)
            await serve.start()
            try:
                log.info("paging storm: %d groups, scale %g, bound %.1fs", groups, scale, bound)
                started = time.time()
                statuses = await post_storm(serve.url, groups)
                expected = groups * (len(LEVEL_1) + len(LEVEL_2))
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    delivered = len(dm_times(emulator))
                    if delivered >= expected and await settled(serve.url):
                        break
                    log.info("t=%.0fs: %d of %d DMs", time.time() - started, delivered, expected)
                    await asyncio.sleep(5)
            finally:
                serve.stop()
        return report(emulator, started, statuses, groups, bound, scale)


def report(
    emulator: Any, started: float, statuses: Counter[int], groups: int, bound: float, scale: float
) -> dict[str, Any]:
    """The figures."""
    pages = page_messages(emulator)
    dms = dm_times(emulator)
    per_dm = Counter(key for key, _ in dms)
    level_1 = [at for (_, _, level), at in dms if level == "level 1"]
    complete = len({key for key in per_dm if key[2] == "level 1"}) == groups * len(LEVEL_1)
    last_level_1 = max(level_1) - started if level_1 and complete else None
    invites = emulator.calls_to("conversations.invite")
    limited = [c for c in emulator.calls if c.status == 429]
    return {
        "scale": scale,
        "groups": groups,
        "webhook_statuses": dict(statuses),
        "page_messages": dict(Counter(level for _, level in pages.elements())),
        "dms_sent": dict(Counter(level for _, _, level in per_dm.elements())),
        "invite_calls": len(invites),
        "dm_opens": len(emulator.calls_to("conversations.open")),
        "duplicate_page_messages": sum(n - 1 for n in pages.values()),
        "duplicate_dms": sum(n - 1 for n in per_dm.values()),
        "not_reached_notes": sum("could not" in (m.text or "") for m in emulator.state.messages),
        "seconds_to_last_level_1_dm": round(last_level_1, 2) if last_level_1 else None,
        "shortest_possible_seconds": round(bound, 2),
        "ratio": round(bound / last_level_1, 3) if last_level_1 else None,
        "responses_429": len(limited),
        "responses_429_by_method": dict(Counter(c.method for c in limited)),
        "violations": len(emulator.violations),
        "slack_calls_by_method": dict(Counter(c.method for c in emulator.calls)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="speed Slack's windows up")
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--level-timeout", default="1m", help="level 1's timeout (at scale 1)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds, at scale 1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    seconds = 60.0 / args.scale
    level_timeout = f"{seconds:g}s" if args.level_timeout == "1m" else args.level_timeout
    figures = asyncio.run(
        run(args.scale, args.groups, level_timeout, max(60.0, args.timeout / args.scale))
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
