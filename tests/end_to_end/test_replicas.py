"""Two `tocsin serve` replicas on one Postgres, against one Slack at Slack's documented limits:
either replica takes any webhook, one of them sends to Slack, and when that one is killed the
other takes over without a repeated message or page and without a 429."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from bot.slack.emulator import documented_rate_limits
from tests.harness import ServeProcess, eventually, post_webhook, readiness, settled
from tests.harness import running_emulator as emulator_at
from tests.pages import page_dms, page_messages
from tests.replicas import (
    answered_429,
    cards,
    group_payload,
    incident_channels,
    own_database,
    replicas,
    sender,
)

GROUPS = 30
ALICE = "U0ALICE01"
POLICY = {
    "escalation": {
        "default": "replicas",
        "policies": [
            {"name": "replicas", "levels": [{"targets": [f"user:{ALICE}"], "timeout": "1h"}]}
        ],
    }
}
# Tier 2 lets 20 channels be made a minute (30 take a second window), and every card edit
# (the card, its DM copy, the alerts channel's line) is a Tier 3 chat.update, 50 a minute:
# the storm's last edits come minutes after its first webhook.
EVERYTHING = 600.0


async def post_to(serve: ServeProcess, name: str) -> int:
    """POST the group's notification; the status, or 0 when the replica did not answer."""
    try:
        code, _ = await post_webhook(serve.url, group_payload(name))
    except (OSError, aiohttp.ClientError):  # the replica was killed
        return 0
    return code


async def metrics_of(serve: ServeProcess) -> str:
    """The replica's /metrics, as a Prometheus server scrapes it."""
    async with aiohttp.ClientSession() as session, session.get(f"{serve.url}/metrics") as answer:
        return await answer.text()


async def sends(serve: ServeProcess) -> bool:
    """The replica's /readyz says it sends to Slack."""
    return await sender([serve]) is serve


def assert_one_of_everything(emulator, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    channels = incident_channels(emulator)
    for name in names:
        named = [c for c, channel in channels.items() if channel.endswith(name.lower())]
        assert len(named) == 1, f"{name}: {len(named)} channels"
    assert set(cards(emulator).values()) == {1}, "a card was posted twice"
    assert set(page_messages(emulator)) == {(c, "level 1") for c in channels}
    assert set(page_messages(emulator).values()) == {1}, "a page message was repeated"
    assert set(page_dms(emulator)) == {(ALICE, c, "level 1") for c in channels}
    assert set(page_dms(emulator).values()) == {1}, "a DM was repeated"


async def test_two_replicas_share_the_storm_and_slack_sees_one_sender(tmp_path: Path) -> None:
    names = [f"ReplicaStorm{i:02d}" for i in range(GROUPS)]
    async with (
        own_database() as url,
        emulator_at(rate_limits=documented_rate_limits()) as (emulator, emulator_url),
    ):
        emulator.add_user(ALICE, "alice")
        async with replicas(url, emulator_url, tmp_path, POLICY) as (one, two):
            # Every group goes to both replicas; every third one to both at the same instant.
            for i, name in enumerate(names):
                if i % 3 == 0:
                    codes = await asyncio.gather(post_to(one, name), post_to(two, name))
                else:
                    codes = [await post_to(one, name), await post_to(two, name)]
                assert codes == [200, 200]
            await eventually(
                lambda: len(page_dms(emulator)) == GROUPS,
                timeout=EVERYTHING,
                what="a page for every incident",
            )
            await eventually(
                lambda: settled(one.url), timeout=EVERYTHING, what="the outbox drained"
            )
            reports = [(await readiness(one.url))["outbox"], (await readiness(two.url))["outbox"]]
            scraped = [await metrics_of(one), await metrics_of(two)]
        assert sorted(r["sends"] for r in reports) == [False, True]
        holder = reports[0]["holder"]
        assert reports[1]["holder"] == holder
        assert holder in {r["this_replica"] for r in reports}
        assert [r["depth"] for r in reports] == [0, 0]
        assert [r["oldest_due_seconds"] for r in reports] == [0.0, 0.0]
        # Each replica's /metrics names the holder; only the holder says it holds the lease.
        for report, text in zip(reports, scraped, strict=True):
            assert f'tocsin_outbox_lease_holder{{holder="{holder}"}} 1.0' in text
            held = "1.0" if report["sends"] else "0.0"
            assert f"tocsin_outbox_lease_held {held}" in text
            assert "tocsin_outbox_oldest_due_seconds 0.0" in text
        assert len(incident_channels(emulator)) == GROUPS
        assert_one_of_everything(emulator, names)
        assert answered_429(emulator) == []


async def test_killing_the_sender_mid_storm_hands_over_without_repeats_or_429(
    tmp_path: Path,
) -> None:
    names = [f"FailoverStorm{i:02d}" for i in range(GROUPS)]
    async with (
        own_database() as url,
        emulator_at(rate_limits=documented_rate_limits()) as (emulator, emulator_url),
    ):
        emulator.add_user(ALICE, "alice")
        async with replicas(url, emulator_url, tmp_path, POLICY) as pair:
            holder = await sender(pair)
            assert holder is not None
            survivor = pair[1] if holder is pair[0] else pair[0]
            answered: list[str] = []

            async def burst() -> None:
                for name in names:
                    codes = await asyncio.gather(post_to(holder, name), post_to(survivor, name))
                    if 200 in codes:
                        answered.append(name)

            storm = asyncio.create_task(burst())
            # Killed mid-burst, while it makes channels.
            await eventually(
                lambda: len(incident_channels(emulator)) >= 5, timeout=60, what="channels"
            )
            holder.kill()
            await storm
            await eventually(
                lambda: sends(survivor), timeout=EVERYTHING, what="the survivor to send"
            )
            report = (await readiness(survivor.url))["outbox"]
            assert report["holder"] == report["this_replica"]
            await eventually(
                lambda: (
                    len(page_dms(emulator)) == len(incident_channels(emulator))
                    and len(incident_channels(emulator)) >= len(answered)
                ),
                timeout=EVERYTHING,
                what="a page for every incident",
            )
            await eventually(
                lambda: settled(survivor.url), timeout=EVERYTHING, what="the outbox drained"
            )
        assert len(answered) == GROUPS  # the survivor answered every group
        assert "now drains the outbox" in survivor.log_path.read_text()
        assert_one_of_everything(emulator, answered)
        assert answered_429(emulator) == []
