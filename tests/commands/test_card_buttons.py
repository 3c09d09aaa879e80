"""The pinned card's buttons, and who may press them (permissions from tocsin.yml)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.config import Settings
from bot.config.policies import EscalationConfig, LevelConfig, PermissionsConfig, PolicyConfig
from bot.domain.incidents import IncidentStatus
from bot.slack import ids
from bot.slack.emulator.state import Message
from tests.commands.conftest import ALICE, BOB, CAROL, Launch, Workspace, card_text
from tests.harness import eventually

SLACK_DEADLINE = 3.0
GROUP = "S0ONCALL"


async def test_acknowledge_updates_the_card_in_place(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    cards_before = [m.ts for m in ws.messages_in(opened.channel) if m.blocks]

    reply, token = await ws.click(ids.ACKNOWLEDGE, opened, user=BOB)
    assert reply.status == 200
    assert reply.elapsed < SLACK_DEADLINE

    await ws.wait_for_card(opened, lambda f: f["Status"] == f"acknowledged by <@{BOB}>")
    assert ws.card_fields(opened)["Severity"] == "sev2"
    alerts = ws.emulator.state.channel("alerts")
    assert alerts is not None

    def announced() -> Message:
        (line,) = [m for m in ws.emulator.state.channel_messages(alerts.id) if not m.thread_ts]
        return line

    # The card is edited first, then each copy of it: wait for the announcement's turn.
    await eventually(
        lambda: f"acknowledged by <@{BOB}>" in announced().text, what="the announcement edited"
    )
    announcement = announced()
    updates = [c for c in ws.emulator.calls_to("chat.update") if c.response.get("ok")]
    # The card in place, and the announcement in #alerts that follows it.
    assert {(c.params["channel"], c.params["ts"]) for c in updates} == {
        (opened.channel, opened.card_ts),
        (alerts.id, announcement.ts),
    }
    assert f"acknowledged by <@{BOB}>" in announcement.text
    assert [m.ts for m in ws.messages_in(opened.channel) if m.blocks] == cards_before
    incident = await ws.incident(opened.id)
    assert (incident.status, incident.acknowledged_by) == (IncidentStatus.ACKNOWLEDGED, BOB)
    assert ("acknowledge", BOB, f"Acknowledged by <@{BOB}>") in await ws.timeline(opened.id)
    # The card itself says it all: no ephemeral reply.
    assert ws.replies(token) == []


async def test_acknowledge_after_resolve_is_explained_and_kept(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    resolved, token = await ws.click(ids.RESOLVE, opened, user=ALICE)
    assert resolved.status == 200 and resolved.elapsed < SLACK_DEADLINE
    await ws.wait_for_card(opened, lambda f: f["Status"] == f"resolved by <@{ALICE}>")
    assert ws.replies(token) == []

    late, late_token = await ws.click(ids.ACKNOWLEDGE, opened, user=BOB)
    assert late.status == 200
    assert late.elapsed < SLACK_DEADLINE
    body = await ws.reply_to(late_token)
    assert body["text"] == (
        ":information_source: Incident is resolved; it cannot be acknowledged now."
    )
    assert body.get("replace_original") is False
    # Bob did respond, too late: the timeline keeps that (not as a refusal).
    assert [(k, t) for k, actor, t in await ws.timeline(opened.id) if actor == BOB] == [
        ("ack_after_resolve", f"Acknowledged by <@{BOB}> after it was resolved")
    ]
    incident = await ws.incident(opened.id)
    assert (incident.status, incident.resolved_by) == (IncidentStatus.RESOLVED, ALICE)
    assert ws.card_fields(opened)["Status"] == f"resolved by <@{ALICE}>"


@pytest.mark.parametrize(
    ("action_id", "fragment"),
    [
        (ids.SILENCE_1H, "Silencing is not configured: set ALERTMANAGER_URL."),
        (ids.ESCALATE, "This incident has no escalation policy; add one in tocsin.yml."),
    ],
)
async def test_buttons_without_their_feature_say_it_is_not_configured(
    ws: Workspace, action_id: str, fragment: str
) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    before = await ws.timeline(opened.id)
    reply, token = await ws.click(action_id, opened)
    assert reply.status == 200 and reply.elapsed < SLACK_DEADLINE
    assert fragment in (await ws.reply_to(token))["text"]
    assert await ws.timeline(opened.id) == before
    assert (await ws.incident(opened.id)).status is IncidentStatus.TRIGGERED


@pytest.mark.parametrize("value", ["", "abc", "12; DROP TABLE incidents", "-1"])
async def test_a_button_from_an_old_card_says_so(ws: Workspace, value: str) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    body = await ws.click_for_reply(ids.ACKNOWLEDGE, opened, value=value)
    assert body["text"] == (
        ":information_source: This button belongs to an old card; "
        "use `/incident status` for a fresh one."
    )
    assert (await ws.incident(opened.id)).status is IncidentStatus.TRIGGERED


async def test_a_button_for_a_missing_incident_says_so(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    body = await ws.click_for_reply(ids.RESOLVE, opened, value="999")
    assert body["text"] == ":information_source: Incident #999 does not exist."
    assert (await ws.incident(opened.id)).status is IncidentStatus.TRIGGERED


# --- permissions --------------------------------------------------------------------------


def only_alice_resolves(settings: Settings) -> None:
    settings.permissions = PermissionsConfig(resolve=[ALICE])


async def test_only_permitted_people_resolve(launch: Launch) -> None:
    ws = await launch(only_alice_resolves)
    opened = await ws.declare("Checkout 500s", "sev2", user=BOB)
    refusal = f":no_entry: You may not resolve incidents. Allowed: <@{ALICE}>."

    clicked = await ws.click_for_reply(ids.RESOLVE, opened, user=BOB)
    assert clicked["text"] == refusal
    typed = await ws.command("resolve it was DNS", user=BOB, channel=opened.channel)
    assert typed["text"] == refusal
    assert (await ws.incident(opened.id)).status is IncidentStatus.TRIGGERED
    # Refusals are Bob's business (and the log's), not the incident's record.
    assert [k for k, actor, _ in await ws.timeline(opened.id) if actor == BOB] == ["declared"]
    assert ws.card_fields(opened)["Status"] == "triggered"

    # Acknowledging is open to everyone.
    await ws.click(ids.ACKNOWLEDGE, opened, user=BOB)
    await ws.wait_for_card(opened, lambda f: f["Status"] == f"acknowledged by <@{BOB}>")

    reply, token = await ws.click(ids.RESOLVE, opened, user=ALICE)
    assert reply.status == 200
    await ws.wait_for_card(opened, lambda f: f["Status"] == f"resolved by <@{ALICE}>")
    assert ws.replies(token) == []
    assert (await ws.incident(opened.id)).resolved_by == ALICE


async def test_only_permitted_people_resolve_by_command(launch: Launch) -> None:
    ws = await launch(only_alice_resolves)
    opened = await ws.declare("Checkout 500s", "sev2", user=BOB)
    assert (await ws.command("resolve", user=CAROL, channel=opened.channel))["text"].startswith(
        ":no_entry: You may not resolve incidents."
    )
    await ws.said(
        "resolve rolled back", f"Resolved by <@{ALICE}>: rolled back", channel=opened.channel
    )
    await ws.wait_for_card(opened, lambda f: f["Status"] == f"resolved by <@{ALICE}>")
    kinds = [(k, actor) for k, actor, _ in await ws.timeline(opened.id)]
    assert ("resolve", ALICE) in kinds
    assert all(actor != CAROL for _, actor in kinds)  # her refusal was hers, not the record's


def oncall_group_escalates(settings: Settings) -> None:
    settings.permissions = PermissionsConfig(escalate=[GROUP])
    settings.escalation = EscalationConfig(
        default="main",
        policies=[
            PolicyConfig(
                name="main",
                levels=[
                    LevelConfig(targets=[ALICE], timeout=timedelta(hours=1)),
                    LevelConfig(targets=[CAROL], timeout=timedelta(hours=1)),
                ],
            )
        ],
    )


async def test_a_user_group_may_escalate(launch: Launch) -> None:
    ws = await launch(oncall_group_escalates)
    ws.emulator.add_usergroup(GROUP, "oncall", [ALICE])
    opened = await ws.declare("Checkout 500s", "sev2", user=BOB)
    await ws.wait_for_event(opened.id, "paged")

    body = await ws.click_for_reply(ids.ESCALATE, opened, user=BOB)
    assert body["text"] == (
        f":no_entry: You may not escalate incidents. Allowed: <!subteam^{GROUP}>."
    )
    assert [k for k, actor, _ in await ws.timeline(opened.id) if actor == BOB] == ["declared"]
    assert [e for e in await ws.timeline(opened.id) if e[0] == "escalate"] == []

    body = await ws.click_for_reply(ids.ESCALATE, opened, user=ALICE)
    assert body["text"] == f"Escalated by <@{ALICE}> to level 2"
    assert ("escalate", ALICE, f"Escalated by <@{ALICE}> to level 2") in await ws.timeline(
        opened.id
    )

    async def carol_paged() -> bool:
        return any(k == "paged" and CAROL in text for k, _, text in await ws.timeline(opened.id))

    await eventually(carol_paged, timeout=10, what="level 2 paged")
    await eventually(
        lambda: "*Escalation:* main, level 2" in card_text(ws.card(opened)),
        timeout=10,
        what="card showing level 2",
    )
    assert [k for k, actor, _ in await ws.timeline(opened.id) if actor == ALICE] == ["escalate"]


async def test_two_people_acknowledging_at_once_one_wins(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    a_task, a_token = await ws.start_click(ids.ACKNOWLEDGE, opened, user=ALICE)
    b_task, b_token = await ws.start_click(ids.ACKNOWLEDGE, opened, user=BOB)
    a, b = await asyncio.gather(a_task, b_task)
    assert a.status == b.status == 200
    assert max(a.elapsed, b.elapsed) < SLACK_DEADLINE
    # Both clicks are handled after the HTTP answer; the one that lost is told so.
    await eventually(
        lambda: bool(ws.replies(a_token) or ws.replies(b_token)),
        timeout=10,
        what="the later click to be explained",
    )
    loser_token = a_token if ws.replies(a_token) else b_token
    winner, winner_token = (BOB, b_token) if loser_token == a_token else (ALICE, a_token)
    body = await ws.reply_to(loser_token)
    assert body["text"] == (
        ":information_source: Incident is acknowledged; it cannot be acknowledged now."
    )
    acks = [actor for k, actor, _ in await ws.timeline(opened.id) if k == "acknowledge"]
    assert acks == [winner]
    assert ws.replies(winner_token) == []
    await ws.wait_for_card(opened, lambda f: f["Status"] == f"acknowledged by <@{winner}>")
    assert (await ws.incident(opened.id)).acknowledged_by == winner
