"""Drills as people see them: a drill fired through the real webhook is marked on its card,
topic, announcement and in `/incident list`; `tocsin drill` resolves it once its report is done
(asking twice says it once); left alone it resolves `drill_resolve_after` after it opened; and
the digest and `/kpi` read the same with or without it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp

from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.domain.incidents import Action
from bot.domain.playbooks import Playbook
from bot.drills.alerts import drill_payload, new_drill_id
from bot.drills.client import run_drill
from bot.main import load_playbooks
from bot.slack import ids
from bot.slack.render.digest import render_digest
from tests.builders import make_alert, make_payload
from tests.commands.conftest import BOB, Launch, Opened, Workspace, card_header, card_text
from tests.commands.test_kpi_command import digest_settings
from tests.harness import eventually, running_bot, running_emulator, step
from tests.slack.test_card_truth import (
    announcement,
    card,
    people,
    settle,
    thread_of,
    topic,
    words,
)

MARK = "🧪 DRILL"
OVER = "Resolved by tocsin (drill over)"


def playbook(alertname: str = "HighErrorRate") -> Playbook:
    return {p.name: p for p in load_playbooks(load_settings({"TOCSIN_CONFIG": ""}))}[alertname]


async def fire_drill(ws: Workspace) -> Opened:
    """A drill notification through the webhook, as `tocsin drill` sends it."""
    payload = drill_payload(playbook(), drill_id=new_drill_id(), now=datetime.now(UTC))
    status, answer = await ws.bot.post_alerts(payload)
    assert status == 200, answer
    return await ws.wait_until_open(answer["incident"])


def announced(ws: Workspace, incident: Opened) -> str:
    """The incident's line in #alerts, as it reads now."""
    alerts = ws.channel_named("alerts")
    return next(
        m.text
        for m in ws.messages_in(alerts)
        if not m.thread_ts and f"<#{incident.channel}>" in m.text
    )


def channel_topic(ws: Workspace, incident: Opened) -> str:
    return ws.emulator.state.channels[incident.channel].topic


async def resolve_drill(ws: Workspace, incident: int) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{ws.bot.url}/drills/{incident}/resolve") as response,
    ):
        return response.status, await response.json()


async def test_a_drill_is_marked_on_its_card_topic_announcement_and_in_lists(
    ws: Workspace,
) -> None:
    real = await ws.declare("Checkout 500s", "sev1")
    drill = await fire_drill(ws)

    assert card_header(ws.card(drill)).startswith(f"{MARK} · ")
    assert "a rehearsal, not an outage" in card_text(ws.card(drill))
    sev = (await ws.incident(drill.id)).severity.value
    assert channel_topic(ws, drill).startswith(f"{MARK} · {sev.upper()} · triggered · [DRILL] ")
    assert announced(ws, drill).startswith(f"{MARK} · :rotating_light: *{sev.upper()}* [DRILL] ")
    assert MARK not in card_text(ws.card(real)) and MARK not in channel_topic(ws, real)
    assert MARK not in announced(ws, real)

    lines = (await ws.command("list")).get("text", "").splitlines()
    assert lines[0] == "*2 open incidents*"
    assert lines[1].startswith(f"• #{drill.id} {MARK} · <#{drill.channel}> *{sev}* triggered")
    assert lines[2].startswith(f"• #{real.id} <#{real.channel}> *sev1* triggered")

    # Reopened, it is still a drill.
    await ws.said("resolve", "Resolved by", channel=drill.channel)
    await ws.said("reopen", "Reopened by", channel=drill.channel)
    await eventually(lambda: "triggered" in channel_topic(ws, drill), what="the topic reopened")
    assert channel_topic(ws, drill).startswith(MARK)
    assert (await ws.command("list"))["text"].splitlines()[1].startswith(f"• #{drill.id} {MARK}")


async def test_the_drill_client_resolves_its_drill_once_the_report_is_done(
    ws: Workspace,
) -> None:
    outcome = await run_drill(
        ws.bot.url, playbook(), token=None, now=lambda: datetime.now(UTC), wait=20
    )
    assert not outcome.timed_out and outcome.resolved
    assert outcome.report["status"] == "resolved"
    drill = await ws.wait_until_open(outcome.report["incident"])

    await eventually(
        lambda: card_header(ws.card(drill)).startswith(f"{MARK} · :white_check_mark:"),
        timeout=10,
        what="the card resolved",
    )
    fields = json.dumps(ws.card(drill))
    assert "resolved by tocsin (drill over)" in fields
    await eventually(
        lambda: "resolved by tocsin (drill over)" in announced(ws, drill),
        timeout=10,
        what="#alerts told",
    )
    assert announced(ws, drill).startswith(f"{MARK} · :white_check_mark: *SEV2* ")
    assert channel_topic(ws, drill).startswith(f"{MARK} · SEV2 · resolved · ")
    said = [text for _, _, text in await ws.timeline(drill.id)]
    assert said.count(OVER) == 1

    # Asked again (a retry, or the backstop after the client): nothing happens twice.
    status, answer = await resolve_drill(ws, drill.id)
    assert status == 200 and answer["status"] == "resolved" and answer["resolved_now"] is False
    said = [text for _, _, text in await ws.timeline(drill.id)]
    assert said.count(OVER) == 1
    await ws.wait_for_message(drill.channel, OVER)
    notes = [m.text for m in ws.messages_in(drill.channel) if OVER in (m.text or "")]
    assert notes == [OVER]


async def test_only_drills_are_resolved_by_the_drill_route(ws: Workspace) -> None:
    real = await ws.declare("Checkout 500s", "sev1")
    status, answer = await resolve_drill(ws, real.id)
    assert status == 404 and answer["error"] == f"no drill incident #{real.id}"
    assert (await ws.incident(real.id)).is_open
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{ws.bot.url}/drills/1x/resolve") as response,
    ):
        assert response.status == 400 and "must be a number" in (await response.json())["error"]


async def test_a_drill_left_alone_resolves_itself_after_drill_resolve_after(
    database_url: str,
) -> None:
    def after(settings: Settings) -> None:
        settings.drill_resolve_after = timedelta(minutes=30)

    clock = FakeClock(datetime.now(UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=after, clock=clock) as bot,
    ):
        people(emulator)
        payload = drill_payload(playbook(), drill_id="drill-a1b2c3", now=clock.now())
        status, answer = await bot.post_alerts(payload)
        assert status == 200
        await settle(bot, clock)
        assert "triggered" in topic(emulator)

        await step(bot, clock, 29 * 60)
        await settle(bot, clock)
        assert (await bot.app.services.incidents.get(answer["incident"])).is_open

        await step(bot, clock, 2 * 60)
        await settle(bot, clock)
        assert topic(emulator).startswith(f"{MARK} · SEV2 · resolved · ")  # the playbook's
        assert "resolved by tocsin (drill over)" in words(card(emulator))
        assert "resolved by tocsin (drill over)" in announcement(emulator).text
        assert thread_of(emulator, announcement(emulator))[-1] == OVER
        timeline = [e.text for e in await bot.app.services.incidents.timeline(answer["incident"])]
        assert timeline.count(OVER) == 1


async def test_drills_count_in_no_kpi(launch: Launch) -> None:
    ws = await launch(digest_settings)
    real = await ws.declare("Checkout is slow", "sev1")
    await ws.said("ack", "Acknowledged by", user=BOB, channel=real.channel)
    digests = ws.bot.app.digests
    assert digests is not None
    digest = digests.digest(None)
    today = datetime.now(digest.zone).date()

    async def figures() -> tuple[str, str]:
        built = await digests.builder.build(digest, today)
        kpi = await ws.command("incidents opened", command=ids.KPI_COMMAND)
        return json.dumps(render_digest(built)), kpi["text"]

    before = await figures()
    assert "MTTA" in before[0]
    drill = await fire_drill(ws)
    await ws.bot.app.services.incidents.act(drill.id, Action.ACKNOWLEDGE, actor=BOB)
    status, _ = await resolve_drill(ws, drill.id)
    assert status == 200
    assert await figures() == before
    # A real alert's incident does count: the same figures move.
    await ws.bot.post_alerts(make_payload([make_alert(service="api")]))
    after = await figures()
    assert after[0] != before[0]
