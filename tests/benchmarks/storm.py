"""Benchmark: an alert storm, storm mode on and off, side by side.

500 new alert groups (one Alertmanager notification each) arrive over 60 seconds at a real
`python -m bot serve` process on SQLite, against a SlackEmulator with Slack's documented
limits, served from this process. The same storm runs twice:

* storm mode on (Tocsin's default: 10 new groups within 2 minutes make a storm): the time from
  the post that crossed the threshold to the storm card in Slack, the time until every folded
  group is on the storm card, the storm channel's messages per minute (posts and card
  updates), channels opened, and every Slack call made;
* storm mode off: channels opened, the time until the last one, and the calls made. At Slack's
  pace (conversations.create is Tier 2: 20 a minute) 500 channels take 25 minutes, so this run
  goes `--off-scale` times faster (tests/pacing.py shrinks the emulator's windows and
  Tocsin's alike); its times are reported as measured and scaled back.

Output: one JSON object on stdout; progress on stderr. Run from the repository root:

    python tests/benchmarks/storm.py [--groups 500] [--seconds 60] [--off-scale 10]
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
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402

from bot.slack import ids  # noqa: E402
from bot.slack.emulator import SlackEmulator  # noqa: E402
from tests.benchmarks.ingest import machine, start_server, stop_server  # noqa: E402
from tests.builders import make_alert, make_payload  # noqa: E402
from tests.harness import running_emulator, settled  # noqa: E402
from tests.pacing import scaled_limits  # noqa: E402

log = logging.getLogger("bench.storm")
THRESHOLD = 10  # Tocsin's default storm rule: 10 new groups within 2 minutes


def name(n: int) -> str:
    return f"Down{n:03d}"  # not "Storm…": the storm's channel is told by its name


def bodies(groups: int) -> list[bytes]:
    """One notification per group: a service's alert, in one datacenter."""
    out = []
    for n in range(groups):
        labels = {"service": f"svc{n % 25:02d}", "dc": "fra1"}
        common = {"alertname": name(n), "severity": "warning", **labels}
        payload = make_payload([make_alert(name(n), **labels)], group=name(n), commonLabels=common)
        out.append(json.dumps(payload).encode())
    return out


async def post_steadily(url: str, load: Sequence[bytes], seconds: float) -> list[float]:
    """POST each body at its slot over `seconds`; returns when each was answered."""
    answered = [0.0] * len(load)
    start = time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def one(index: int, body: bytes) -> None:
            await asyncio.sleep(max(0.0, start + index * seconds / len(load) - time.monotonic()))
            async with session.post(
                f"{url}/webhooks/alertmanager",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as response:
                response.raise_for_status()
            answered[index] = time.monotonic()

        await asyncio.gather(*(one(i, b) for i, b in enumerate(load)))
    return answered


def storm_channel(emulator: SlackEmulator) -> str | None:
    return next(
        (c.id for c in emulator.state.channels.values() if c.name.endswith("-storm-1")), None
    )


def card_words(emulator: SlackEmulator, channel: str) -> str:
    for message in emulator.state.channel_messages(channel):
        if (message.metadata or {}).get("event_type") == ids.CARD_METADATA_EVENT:
            return json.dumps(message.blocks)
    return ""


async def storm_on(workdir: Path, groups: int, seconds: float, timeout: float) -> dict[str, Any]:
    """The storm with storm mode on, at Slack's documented limits."""
    database_url = f"sqlite+aiosqlite:///{workdir / 'on.db'}"
    async with running_emulator() as (emulator, emulator_url):
        storm = {"storm": {"new_groups": THRESHOLD, "within": "2m"}}  # Tocsin's default rule
        serve = await start_server(workdir, "on", database_url, emulator_url, config=storm)
        try:
            load = bodies(groups)
            posting = asyncio.create_task(post_steadily(serve.url, load, seconds))
            first = time.monotonic()
            card_at: float | None = None
            all_shown_at: float | None = None
            folded = [name(n) for n in range(THRESHOLD, groups)]
            while time.monotonic() - first < timeout:
                channel = storm_channel(emulator)
                if channel is not None:
                    shown = card_words(emulator, channel)
                    if shown and card_at is None:
                        card_at = time.monotonic()
                    if posting.done() and all(f"{g} " in shown for g in folded):
                        all_shown_at = time.monotonic()
                        break
                await asyncio.sleep(0.1)
            answered = await posting
            while not await settled(serve.url) and time.monotonic() - first < timeout:
                await asyncio.sleep(0.5)
        finally:
            stop_server(serve)
    crossed = answered[THRESHOLD]  # the post that joined the first group to the storm
    channel = storm_channel(emulator)
    in_storm = [c for c in emulator.calls if c.params.get("channel") == channel]
    minutes = max(1.0, (max(c.at for c in in_storm) - min(c.at for c in in_storm)) / 60)
    posts = sum(c.method == "chat.postMessage" for c in in_storm)
    updates = sum(c.method == "chat.update" for c in in_storm)
    return {
        "groups": groups,
        "posting_seconds": round(answered[-1] - first, 1),
        "channels_opened": sum(
            c.method == "conversations.create" and c.response.get("ok") for c in emulator.calls
        ),
        "seconds_from_threshold_to_storm_card": (
            round(card_at - crossed, 2) if card_at is not None else None
        ),
        "seconds_until_every_group_on_the_card": (
            round(all_shown_at - first, 1) if all_shown_at is not None else None
        ),
        "seconds_after_the_last_post_until_every_group_on_the_card": (
            round(all_shown_at - answered[-1], 1) if all_shown_at is not None else None
        ),
        "storm_channel_posts_per_minute": round(posts / minutes, 1),
        "storm_card_updates_per_minute": round(updates / minutes, 1),
        "slack_calls": len(emulator.calls),
        "slack_calls_by_method": dict(Counter(c.method for c in emulator.calls)),
        "rate_limited": sum(c.status == 429 for c in emulator.calls),
    }


async def storm_off(
    workdir: Path, groups: int, seconds: float, scale: float, timeout: float
) -> dict[str, Any]:
    """The same storm with storm mode off, `scale` times faster than Slack's limits."""
    database_url = f"sqlite+aiosqlite:///{workdir / 'off.db'}"
    async with running_emulator(rate_limits=scaled_limits(scale)) as (emulator, emulator_url):
        serve = await start_server(
            workdir, "off", database_url, emulator_url, scale, config={"storm": False}
        )
        try:
            first = time.monotonic()
            answered = await post_steadily(serve.url, bodies(groups), seconds / scale)
            created: list[float] = []
            while time.monotonic() - first < timeout / scale:
                created = [
                    c.at
                    for c in emulator.calls
                    if c.method == "conversations.create" and c.response.get("ok")
                ]
                if len(created) >= groups:
                    break
                await asyncio.sleep(0.2)
        finally:
            stop_server(serve)
    last = (max(created) - first) if len(created) >= groups else None
    return {
        "scale": scale,
        "posting_seconds": round(answered[-1] - first, 1),
        "channels_opened": len(created),
        "seconds_until_the_last_channel_measured": round(last, 1) if last else None,
        "seconds_until_the_last_channel_at_slacks_pace": round(last * scale, 1) if last else None,
        "slack_calls": len(emulator.calls),
        "slack_calls_by_method": dict(Counter(c.method for c in emulator.calls)),
        "rate_limited": sum(c.status == 429 for c in emulator.calls),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tocsin-storm-") as tmp:
        workdir = Path(tmp)
        log.info("storm mode on: %d groups over %gs", args.groups, args.seconds)
        on = await storm_on(workdir, args.groups, args.seconds, args.timeout)
        log.info("storm mode on: %s", json.dumps(on))
        log.info("storm mode off: %d groups, %gx Slack's pace", args.groups, args.off_scale)
        off = await storm_off(workdir, args.groups, args.seconds, args.off_scale, args.timeout)
        log.info("storm mode off: %s", json.dumps(off))
    return {"machine": machine(), "storm_mode_on": on, "storm_mode_off": off}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0, help="over which the groups come")
    parser.add_argument("--off-scale", type=float, default=10.0, help="storm off: faster Slack")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds, at Slack's pace")
    args = parser.parse_args(argv)
    if args.groups <= THRESHOLD or args.off_scale <= 0:
        parser.error(f"--groups must exceed {THRESHOLD}; --off-scale must be positive")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the emulator's requests
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
