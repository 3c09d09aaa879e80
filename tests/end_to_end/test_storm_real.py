"""An alert storm through a real Prometheus and Alertmanager: 30 rules fire at once, each its
own alert group; with the default storm rule (10 new groups within 2 minutes) Tocsin opens 10
channels and one storm channel whose card lists the other 20, says in place when half of them
resolve, and gives a group split out its own channel and its history."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.slack import ids
from tests.end_to_end.test_realservers import running
from tests.harness import eventually, running_bot, running_emulator
from tests.realservers import AlertmanagerServer, MetricSource, PrometheusServer, require_binaries
from tests.slack.test_card_truth import ALICE, people, words
from tests.web.test_storms import THRESHOLD, channels, storm_card, storm_says

pytestmark = pytest.mark.integration

RULES = 30
GROUP_LINE = re.compile(r":red_circle: #(\d+) (Down\d\d)")


def rules() -> str:
    lines = ["groups:", "  - name: storm", "    rules:"]
    for n in range(RULES):
        lines += [
            f"      - alert: Down{n:02d}",
            f'        expr: storm_down{{n="{n:02d}"}} > 0',
            "        labels: {severity: warning, dc: fra1}",
            f"        annotations: {{summary: 'Down{n:02d} in fra1'}}",
        ]
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def storm_servers(tmp_path: Path, source: MetricSource, webhook: str) -> AsyncIterator[None]:
    alertmanager = AlertmanagerServer(
        tmp_path / "am", webhook_url=webhook, group_wait="1s", group_interval="2s"
    )
    async with running(alertmanager):
        prometheus = PrometheusServer(
            tmp_path / "prom",
            scrape_targets=[source.url],
            rules=rules(),
            alertmanager_url=alertmanager.url,
        )
        async with running(prometheus):
            yield


async def test_thirty_rules_at_once_make_ten_channels_and_a_storm_that_follows_them(
    tmp_path: Path, database_url: str
) -> None:
    require_binaries("prometheus", "prometheus-alertmanager")
    source = MetricSource()
    for n in range(RULES):
        source.set("storm_down", 0, {"n": f"{n:02d}"})
    with source:
        async with (
            running_emulator() as (emulator, url),
            running_bot(database_url, emulator, url) as bot,
            storm_servers(tmp_path, source, f"{bot.url}/webhooks/alertmanager"),
        ):
            people(emulator)
            for n in range(RULES):
                source.set("storm_down", 1, {"n": f"{n:02d}"})
            await storm_says(bot.url, emulator, "20 alert groups: 20 firing, 0 resolved")
            assert len(channels(emulator)) == THRESHOLD + 1
            card = storm_card(emulator)
            folded = dict(GROUP_LINE.findall(words(card)))  # number -> alert name
            assert len(folded) == 20
            assert "`dc=fra1`" in words(card)

            # Half the storm's groups resolve: the same card says so.
            half = sorted(folded.items())[:10]
            for _, name in half:
                source.set("storm_down", 0, {"n": name.removeprefix("Down")})
            await storm_says(bot.url, emulator, "20 alert groups: 10 firing, 10 resolved")
            assert storm_card(emulator).ts == card.ts

            # One group still firing, split out: its own channel, its history with it.
            number, name = sorted(folded.items())[-1]
            reply = await emulator.send_slash_command(
                f"{bot.url}/slack/events",
                ids.INCIDENT_COMMAND,
                f"split {number}",
                user_id=ALICE,
                channel_id=card.channel,
            )
            assert reply.status == 200
            await storm_says(bot.url, emulator, "19 alert groups")
            await eventually(
                lambda: any(name.lower() in c for c in channels(emulator)),
                what=f"a channel for {name}",
            )
            history = [e.text for e in await bot.app.services.incidents.timeline(int(number))]
            assert any("folded into alert storm" in t for t in history)
            assert any("Split out of alert storm" in t for t in history)
