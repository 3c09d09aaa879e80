"""Alertmanager in HA: two real peers gossiping on loopback, each sending every notification to
both of two `tocsin serve` replicas sharing one Postgres database. However many copies arrive
(each peer sends unless the other's notification log reached it first; each copy goes to both
replicas), each group is one incident with one channel, one card, one page per level, and one
timeline entry per change."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from tests.harness import ServeProcess, bot_env, eventually, running_emulator, settled
from tests.realservers import AlertmanagerCluster, AlertmanagerServer, free_port, require_binaries
from tests.replicas import own_database as a_database_of_its_own

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK = "/webhooks/alertmanager"
ALICE, BOB = "U0ALICE01", "U0BOB0001"
GROUPS = ("CheckoutLatency", "QueueBacklog")
CONFIG = f"""\
alerts_channel: alerts
auto_resolve: true
reopen_window: 30m
escalation:
  default: standard
  policies:
    - name: standard
      levels:
        - targets: [user:{ALICE}]
          timeout: 2s
        - targets: [user:{BOB}]
          timeout: 1h
digest:
  digests: []
"""


@pytest.fixture
async def own_database() -> AsyncIterator[str]:
    """A Postgres database of this test's own, migrated, dropped at the end."""
    async with a_database_of_its_own() as url:
        yield url


@asynccontextmanager
async def replicas(
    tmp: Path, database: str, emulator_url: str
) -> AsyncIterator[tuple[ServeProcess, ServeProcess]]:
    """Two `tocsin serve` processes of this tree on one database and one Slack."""
    config = tmp / "tocsin.yml"
    config.write_text(CONFIG)
    env = {**bot_env(database, emulator_url), "PYTHONPATH": str(ROOT)}
    serving = [ServeProcess(env, free_port(), tmp / f"replica-{n}.log") for n in (1, 2)]
    try:
        for replica in serving:
            replica.env["TOCSIN_CONFIG"] = str(config)
            await replica.start()
        yield serving[0], serving[1]
    finally:
        for replica in serving:
            replica.stop()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def post_alerts(peer: AlertmanagerServer, *, ends_at: datetime, started: datetime) -> None:
    """What Prometheus in HA does: the same alerts to every peer."""
    alerts = [
        {
            "labels": {"alertname": name, "service": "shop", "severity": "critical"},
            "annotations": {"summary": f"{name} on shop"},
            "startsAt": rfc3339(started),
            "endsAt": rfc3339(ends_at),
        }
        for name in GROUPS
    ]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{peer.url}/api/v2/alerts", json=alerts) as answer,
    ):
        assert answer.status == 200, await answer.text()


async def rows(database: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(database.replace("+asyncpg", ""))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def top_level_dms(emulator: SlackEmulator, user: str) -> int:
    dms = {c.id for c in emulator.state.channels.values() if c.is_im and c.im_user == user}
    return sum(1 for m in emulator.state.messages if m.channel in dms and not m.thread_ts)


def cards_posted(emulator: SlackEmulator) -> int:
    return sum(
        1
        for call in emulator.calls_to("chat.postMessage")
        if (call.params.get("metadata") or {}).get("event_type") == ids.CARD_METADATA_EVENT
    )


# 1s: the second peer waits that long, sees the first peer's notification log and sends
# nothing. 0s: both peers send at once (as when gossip lags or peers are cut apart), each copy
# to both replicas: the replicas race to open each group's incident, and one wins.
@pytest.mark.parametrize("peer_timeout", ["1s", "0s"], ids=["deduplicated", "both-send"])
async def test_two_peers_and_two_replicas_make_one_incident_per_group(
    tmp_path: Path, own_database: str, peer_timeout: str
) -> None:
    require_binaries("prometheus-alertmanager")
    async with running_emulator() as (emulator, emulator_url):
        emulator.add_user(ALICE, "alice")
        emulator.add_user(BOB, "bob")
        async with replicas(tmp_path, own_database, emulator_url) as (first, second):
            cluster = AlertmanagerCluster(
                tmp_path / "am",
                webhook_urls=[first.url + WEBHOOK, second.url + WEBHOOK],
                group_by=("alertname",),
                group_wait="1s",
                group_interval="2s",
                peer_timeout=peer_timeout,
            )
            await asyncio.to_thread(cluster.start)
            try:
                await scenario(cluster, own_database, emulator, first, second)
            finally:
                await asyncio.to_thread(cluster.stop)


async def scenario(
    cluster: AlertmanagerCluster,
    database: str,
    emulator: SlackEmulator,
    first: ServeProcess,
    second: ServeProcess,
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=5)
    for peer in cluster.peers:
        await post_alerts(peer, ends_at=datetime.now(UTC) + timedelta(hours=1), started=started)

    async def paged_everyone() -> bool:  # level 2 (Bob) comes 2 s after level 1 (Alice)
        return top_level_dms(emulator, BOB) >= len(GROUPS)

    await eventually(paged_everyone, timeout=60, what="both levels paged for every group")
    for peer in cluster.peers:
        await post_alerts(peer, ends_at=datetime.now(UTC) - timedelta(seconds=1), started=started)

    async def all_resolved() -> bool:
        states = await rows(database, "SELECT status FROM incidents")
        return len(states) == len(GROUPS) and all(r["status"] == "resolved" for r in states)

    await eventually(all_resolved, timeout=60, what="every incident resolved automatically")

    async def quiet() -> bool:
        return await settled(first.url) and await settled(second.url)

    await eventually(quiet, timeout=60, what="both replicas' outbox drained")

    incidents = await rows(database, "SELECT id, key FROM incidents ORDER BY id")
    assert len(incidents) == len(GROUPS)
    assert len({r["key"] for r in incidents}) == len(GROUPS)
    channels = [c for c in emulator.state.channels.values() if c.name.startswith("inc-")]
    assert len(channels) == len(GROUPS)
    assert cards_posted(emulator) == len(GROUPS)
    assert top_level_dms(emulator, ALICE) == top_level_dms(emulator, BOB) == len(GROUPS)
    receipts = await rows(database, "SELECT incident_id FROM webhook_receipts")
    assert len(receipts) >= 2 * len(GROUPS)  # a firing and a resolved notification at least
    for incident in incidents:
        timeline = await rows(
            database,
            f"SELECT kind, text FROM timeline_events WHERE incident_id = {incident['id']}",
        )
        kinds = Counter(r["kind"] for r in timeline)
        assert kinds["opened"] == kinds["resolve"] == 1 and kinds["reopen"] == 0, kinds
        assert kinds["dm_sent"] == 2, kinds  # Alice at level 1, Bob at level 2
        entries = Counter((r["kind"], r["text"]) for r in timeline)
        assert [e for e, n in entries.items() if n > 1] == [], entries
