"""/incident, end to end: signed slash commands in, ephemeral replies, cards and timeline out."""

from __future__ import annotations

import json

import pytest

from bot.domain.incidents import IncidentStatus, Severity
from bot.slack import ids
from tests.builders import make_alert, make_payload
from tests.commands.conftest import (
    ALICE,
    BOB,
    CAROL,
    Opened,
    Workspace,
    card_fields,
    card_header,
    card_text,
    shown,
)
from tests.harness import eventually

SUBCOMMANDS = [
    "declare",
    "list",
    "status",
    "ack",
    "resolve",
    "reopen",
    "sev",
    "lead",
    "note",
    "timeline",
    "alerts",
    "update",
]


# --- help and dispatch --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["help", "", "   ", "HELP"])
async def test_help_lists_every_subcommand(ws: Workspace, text: str) -> None:
    reply = await ws.command(text)
    assert reply["response_type"] == "ephemeral"
    assert "*`/incident` commands*" in reply["text"]
    for name in SUBCOMMANDS:
        assert f"• `{name}" in reply["text"], name
    assert "Unknown" not in reply["text"]


async def test_unknown_subcommand_names_it_and_shows_the_usage(ws: Workspace) -> None:
    reply = await ws.command("frobnicate the thing")
    assert reply["text"].startswith("Unknown subcommand `frobnicate`.")
    assert "`declare <title> [sev1..sev4]`" in shown(reply["text"])
    assert "`timeline [page]`" in shown(reply["text"])


# --- declare ------------------------------------------------------------------------------


async def test_declare_with_a_title_opens_a_channel_with_the_card(ws: Workspace) -> None:
    reply = await ws.command("declare Checkout 500s sev2", user=BOB)
    assert reply["text"] == "Declared incident #1 (sev2): a channel is on its way."
    opened = await ws.wait_until_open(1)

    created = [
        c.response["channel"]
        for c in ws.emulator.calls_to("conversations.create")
        if c.response.get("ok") and c.response["channel"]["name"].startswith("inc-")
    ]
    assert [c["id"] for c in created] == [opened.channel]
    assert created[0]["name"].endswith("-1-checkout-500s")
    blocks = ws.card(opened)
    assert "Checkout 500s" in card_header(blocks)
    fields = ws.card_fields(opened)
    assert fields["Severity"] == "sev2"
    assert fields["Status"] == "triggered"
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [e["action_id"] for e in buttons] == list(ids.CARD_ACTIONS)
    incident = await ws.incident(1)
    assert (incident.title, incident.severity, incident.declared_by) == (
        "Checkout 500s",
        Severity.SEV2,
        BOB,
    )
    assert ("declared", BOB, f"Declared by <@{BOB}>: Checkout 500s") in await ws.timeline(1)
    # The announcement in #alerts links the new channel.
    await ws.wait_for_message(ws.channel_named("alerts"), f"<#{opened.channel}>")


async def test_declare_without_severity_is_sev3(ws: Workspace) -> None:
    reply = await ws.command("declare Search is slow")
    assert reply["text"] == "Declared incident #1 (sev3): a channel is on its way."
    assert (await ws.incident(1)).title == "Search is slow"


async def test_declare_with_only_a_severity_opens_the_form_with_it_chosen(ws: Workspace) -> None:
    ack, token = await ws.command_without_reply("declare sev2")
    assert ack.status == 200
    [opened_view] = [c for c in ws.emulator.calls_to("views.open") if c.response.get("ok")]
    severity = next(
        b for b in opened_view.response["view"]["blocks"] if b["block_id"] == "severity"
    )
    assert severity["element"]["initial_option"]["value"] == "sev2"
    assert ws.replies(token) == []
    assert await ws.bot.app.services.incidents.open_incidents() == []  # nothing declared yet


async def test_declare_without_a_title_opens_the_form_and_its_submission_declares(
    ws: Workspace,
) -> None:
    ack, token = await ws.command_without_reply("declare")
    assert ack.status == 200
    [opened_view] = [c for c in ws.emulator.calls_to("views.open") if c.response.get("ok")]
    view = opened_view.response["view"]
    assert view["callback_id"] == ids.DECLARE_MODAL
    assert [b["block_id"] for b in view["blocks"]] == ["title", "severity"]
    assert ws.replies(token) == []
    assert await ws.bot.app.services.incidents.open_incidents() == []

    # An empty title is refused inside the form.
    empty = await ws.submit_view(
        view["id"], user=ALICE, values=_form_values(" ", Severity.SEV1.value)
    )
    assert empty.status == 200
    assert json.loads(empty.body) == {
        "response_action": "errors",
        "errors": {"title": "Say what is wrong."},
    }
    assert await ws.bot.app.services.incidents.open_incidents() == []

    submitted = await ws.submit_view(
        view["id"], user=ALICE, values=_form_values("Disk full on db-1", "sev1")
    )
    assert submitted.status == 200 and not submitted.timed_out
    opened = await ws.wait_until_open(1)
    incident = await ws.incident(1)
    assert (incident.title, incident.severity, incident.declared_by) == (
        "Disk full on db-1",
        Severity.SEV1,
        ALICE,
    )
    assert "Disk full on db-1" in card_header(ws.card(opened))
    assert ws.card_fields(opened)["Severity"] == "sev1"


def _form_values(title: str, severity: str) -> dict[str, object]:
    return {
        "title": {"value": {"type": "plain_text_input", "value": title}},
        "severity": {
            "value": {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": severity},
                    "value": severity,
                },
            }
        },
    }


# --- in an incident channel ---------------------------------------------------------------


async def test_status_shows_the_card_again(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    reply = await ws.command("status", channel=opened.channel)
    assert reply["text"] == "[sev2] Checkout 500s — triggered"
    assert "Checkout 500s" in card_header(reply["blocks"])
    assert card_fields(reply["blocks"]) == ws.card_fields(opened)
    buttons = next(b for b in reply["blocks"] if b["type"] == "actions")["elements"]
    assert [b["value"] for b in buttons] == [str(opened.id)] * 5


async def test_ack_updates_the_card_and_a_second_ack_is_explained(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    ack, token = await ws.command_without_reply("ack", user=BOB, channel=opened.channel)
    assert ack.status == 200
    # One reply, not two: the channel's note says it, to Bob as to everyone.
    await ws.wait_for_message(opened.channel, f"Acknowledged by <@{BOB}>")
    await ws.wait_for_card(opened, lambda f: f["Status"] == f"acknowledged by <@{BOB}>")
    assert ws.replies(token) == []
    assert ("acknowledge", BOB, f"Acknowledged by <@{BOB}>") in await ws.timeline(opened.id)
    incident = await ws.incident(opened.id)
    assert (incident.status, incident.acknowledged_by) == (IncidentStatus.ACKNOWLEDGED, BOB)
    # The card was edited, not posted again (the announcement in #alerts is edited too).
    edits = [
        c for c in ws.emulator.calls_to("chat.update") if c.params["channel"] == opened.channel
    ]
    assert edits[-1].params["ts"] == opened.card_ts

    before = await ws.timeline(opened.id)
    again = await ws.command("ack", user=ALICE, channel=opened.channel)
    assert again["text"] == (
        ":information_source: Incident is acknowledged; it cannot be acknowledged now."
    )
    assert (await ws.incident(opened.id)).acknowledged_by == BOB
    # A refusal is the person's business: the timeline records what happened only.
    assert await ws.timeline(opened.id) == before


async def test_resolve_with_a_note_then_reopen(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    _ack, token = await ws.command_without_reply("resolve rolled back v42", channel=opened.channel)
    await ws.wait_for_message(opened.channel, f"Resolved by <@{ALICE}>: rolled back v42")
    assert ("resolve", ALICE, f"Resolved by <@{ALICE}>: rolled back v42") in await ws.timeline(
        opened.id
    )
    await ws.wait_for_card(opened, lambda f: f["Status"] == f"resolved by <@{ALICE}>")
    assert (await ws.incident(opened.id)).status is IncidentStatus.RESOLVED
    assert ws.replies(token) == []

    again = await ws.command("resolve", channel=opened.channel)
    assert "Incident is resolved; it cannot be resolved now." in again["text"]

    await ws.command_without_reply("reopen", user=BOB, channel=opened.channel)
    await ws.wait_for_message(opened.channel, f"Reopened by <@{BOB}>")
    await ws.wait_for_card(opened, lambda f: f["Status"] == "triggered")
    incident = await ws.incident(opened.id)
    assert (incident.status, incident.resolved_by) == (IncidentStatus.TRIGGERED, None)
    assert ("reopen", BOB, f"Reopened by <@{BOB}>") in await ws.timeline(opened.id)

    not_resolved = await ws.command("reopen", channel=opened.channel)
    assert "Incident is triggered; it cannot be reopened now." in not_resolved["text"]


@pytest.mark.parametrize(("arg", "expected"), [("2", "sev2"), ("1", "sev1"), ("SEV4", "sev4")])
async def test_sev_changes_the_severity_on_the_card(ws: Workspace, arg: str, expected: str) -> None:
    opened = await ws.declare("Checkout 500s", "sev3")
    said = f"Severity changed from sev3 to {expected} by <@{ALICE}>"
    _ack, token = await ws.command_without_reply(f"sev {arg}", channel=opened.channel)
    await ws.wait_for_message(opened.channel, said)
    await ws.wait_for_card(opened, lambda f: f["Severity"] == expected)
    assert (await ws.incident(opened.id)).severity == Severity(expected)
    assert ("severity", ALICE, said) in await ws.timeline(opened.id)
    assert ws.replies(token) == []


async def test_a_severity_it_already_has_is_said_and_not_recorded(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev3")
    before = await ws.timeline(opened.id)
    reply = await ws.command("sev 3", channel=opened.channel)
    assert reply["text"] == ":information_source: Severity is already sev3."
    assert await ws.timeline(opened.id) == before
    assert not any("Severity changed" in m.text for m in ws.messages_in(opened.channel))


@pytest.mark.parametrize("arg", ["7", "0", "sev5", "high", ""])
async def test_sev_with_a_bad_argument_shows_the_usage(ws: Workspace, arg: str) -> None:
    opened = await ws.declare("Checkout 500s", "sev3")
    reply = await ws.command(f"sev {arg}", channel=opened.channel)
    assert reply["text"].startswith(":information_source: Severity must be 1-4 or sev1-sev4")
    assert "Usage: `/incident sev <1-4>`" in shown(reply["text"])
    assert (await ws.incident(opened.id)).severity is Severity.SEV3


@pytest.mark.parametrize("mention", [f"<@{BOB}|bob>", f"<@{BOB}>", BOB])
async def test_lead_sets_the_incident_lead(ws: Workspace, mention: str) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    said = f"<@{BOB}> is now the incident lead (set by <@{ALICE}>)"
    await ws.command_without_reply(f"lead {mention}", channel=opened.channel)
    await ws.wait_for_message(opened.channel, said)
    assert (await ws.incident(opened.id)).lead == BOB
    await _wait_for_card_text(ws, opened, f"*Lead:* <@{BOB}>")
    assert ("lead", ALICE, said) in await ws.timeline(opened.id)
    again = await ws.command(f"lead {mention}", channel=opened.channel)
    assert again["text"] == f":information_source: <@{BOB}> is already the incident lead."


@pytest.mark.parametrize(("arg", "got"), [("bob", "bob"), ("@bob", "@bob"), ("", "nothing")])
async def test_lead_without_a_mention_shows_the_usage(ws: Workspace, arg: str, got: str) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    reply = await ws.command(f"lead {arg}", channel=opened.channel)
    assert reply["text"] == (
        f":information_source: Mention the person with @ (got `{got}`). "
        "Usage: `/incident lead @user`"
    )
    # Whoever declared stays the lead.
    assert (await ws.incident(opened.id)).lead == ALICE


async def test_note_goes_on_the_timeline(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    reply = await ws.command("note  restarted the api pods ", user=BOB, channel=opened.channel)
    assert reply["text"] == "Noted on the timeline."
    assert ("note", BOB, "restarted the api pods") in await ws.timeline(opened.id)

    empty = await ws.command("note", channel=opened.channel)
    assert shown(empty["text"]) == (
        ":information_source: Write the note after the command. Usage: `/incident note <text>`"
    )
    assert [k for k, _, _ in await ws.timeline(opened.id)].count("note") == 1


async def test_timeline_shows_entries_and_pages_past_25(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    await ws.command("note first look: <b>db</b> & cache", channel=opened.channel)
    first = await ws.command("timeline", channel=opened.channel)
    entries = len(await ws.timeline(opened.id))
    assert first["text"].startswith(f"*Timeline* (page 1/1, {entries} entries)")
    assert f"Declared by <@{ALICE}>: Checkout 500s" in first["text"]
    assert "Channel #inc-" in first["text"]
    # What people wrote is shown as text, not as Slack markup.
    assert "first look: &lt;b&gt;db&lt;/b&gt; &amp; cache" in first["text"]
    assert "More:" not in first["text"]

    for n in range(30):
        await ws.bot.app.services.incidents.record(
            opened.id, actor=BOB, kind="note", text=f"check {n:02d}"
        )
    total = len(await ws.timeline(opened.id))
    assert 25 < total <= 50

    page1 = await ws.command("timeline", channel=opened.channel)
    lines = page1["text"].splitlines()
    assert lines[0] == f"*Timeline* (page 1/2, {total} entries)"
    assert len(lines) == 1 + 25 + 1
    assert lines[-1] == "_More: `/incident timeline 2`_"
    assert f"Declared by <@{ALICE}>" in lines[1]

    page2 = await ws.command("timeline 2", channel=opened.channel)
    lines = page2["text"].splitlines()
    assert lines[0] == f"*Timeline* (page 2/2, {total} entries)"
    assert len(lines) == 1 + total - 25
    assert lines[-1].endswith("check 29")
    assert "More:" not in page2["text"]

    beyond = await ws.command("timeline 9", channel=opened.channel)
    assert beyond["text"].startswith(f"*Timeline* (page 2/2, {total} entries)")


@pytest.mark.parametrize("arg", ["x", "-1", "2.5", "0"])
async def test_timeline_with_a_bad_page_shows_the_usage(ws: Workspace, arg: str) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    reply = await ws.command(f"timeline {arg}", channel=opened.channel)
    assert reply["text"] == (
        ":information_source: Page must be a number from 1. Usage: `/incident timeline [page]`"
    )


async def test_update_is_posted_here_and_in_alerts(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    reply = await ws.command("update Rolling back v42 <!channel>", channel=opened.channel)
    assert reply["text"] == "Update posted."
    said = f":mega: *Update* from <@{ALICE}>: Rolling back v42 &lt;!channel&gt;"
    here = await ws.wait_for_message(opened.channel, ":mega:")
    assert here.text == said
    alerts = await ws.wait_for_message(ws.channel_named("alerts"), ":mega:")
    assert alerts.text == f"{said} — <#{opened.channel}>"
    assert ("update", ALICE, "Rolling back v42 <!channel>") in await ws.timeline(opened.id)


async def test_update_without_text_shows_the_usage(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    reply = await ws.command("update   ", channel=opened.channel)
    assert shown(reply["text"]) == (
        ":information_source: Write the update after the command. Usage: `/incident update <text>`"
    )
    assert "update" not in [k for k, _, _ in await ws.timeline(opened.id)]


# --- outside an incident channel ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "ack",
        "status",
        "resolve fixed",
        "reopen",
        "timeline",
        "note hello",
        "update hello",
        "sev 1",
        f"lead <@{BOB}>",
    ],
)
async def test_channel_commands_elsewhere_say_it_is_not_an_incident_channel(
    ws: Workspace, text: str
) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    before = await ws.timeline(opened.id)
    reply = await ws.command(text, channel=ws.general)
    assert reply["text"] == (
        ":information_source: This is not an incident channel. Run it in the incident's channel."
    )
    assert await ws.timeline(opened.id) == before
    assert (await ws.incident(opened.id)).status is IncidentStatus.TRIGGERED


# --- list ---------------------------------------------------------------------------------


async def test_list_shows_open_incidents_newest_first(ws: Workspace) -> None:
    assert (await ws.command("list"))["text"] == ":white_check_mark: No open incidents."
    db = await ws.declare("Database is down", "sev1")
    checkout = await ws.declare("Checkout 500s", "sev2")
    search = await ws.declare("Search is slow", "sev4", user=CAROL)
    await ws.said("ack", "Acknowledged by", user=BOB, channel=checkout.channel)
    await ws.said(f"lead <@{BOB}|bob>", "is now the incident lead", channel=checkout.channel)
    await ws.said("resolve failed over", "Resolved by", channel=db.channel)

    lines = (await ws.command("list")).get("text", "").splitlines()
    assert lines[0] == "*2 open incidents*"
    assert len(lines) == 3
    newest, older = lines[1:]
    assert newest.startswith(f"• #{search.id} <#{search.channel}> *sev4* triggered · ")
    assert newest.endswith(f"· lead <@{CAROL}> — Search is slow")
    assert older.startswith(f"• #{checkout.id} <#{checkout.channel}> *sev2* acknowledged · ")
    assert older.endswith(f"· lead <@{BOB}> — Checkout 500s")
    assert "Database is down" not in "\n".join(lines)

    async def listed(filters: str, user: str = ALICE) -> list[str]:
        return (await ws.command(f"list {filters}", user=user)).get("text", "").splitlines()

    assert (await listed("resolved"))[0] == "*1 resolved incident*"
    assert "Database is down" in (await listed("resolved"))[1]
    assert (await listed("all"))[0] == "*3 incidents*"
    sev2 = await listed("sev2")
    assert sev2[0] == "*1 open sev2 incident*" and "Checkout 500s" in sev2[1]
    carols = await listed("mine", user=CAROL)
    assert carols[0] == "*1 open incident of yours*" and "Search is slow" in carols[1]
    assert (await listed("sev1 mine since 7d", user=BOB)) == [
        ":white_check_mark: No open sev1 incidents of yours in the last 7 days."
    ]
    assert (await listed("all since 1h"))[0] == "*3 incidents in the last 1 hour*"
    bad = (await ws.command("list urgent"))["text"]
    assert bad.startswith(":information_source: Unknown filter `urgent`. Usage: `/incident list")

    await ws.said("resolve", "Resolved by", channel=checkout.channel)
    await ws.said("resolve", "Resolved by", channel=search.channel)
    assert (await ws.command("list"))["text"] == ":white_check_mark: No open incidents."


# --- what people read ---------------------------------------------------------------------


async def test_timeline_shows_mentions_as_mentions(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    await ws.said(f"lead <@{BOB}|bob>", "is now the incident lead", channel=opened.channel)
    reply = await ws.command("timeline", channel=opened.channel)
    assert f"<@{BOB}> is now the incident lead (set by <@{ALICE}>)" in reply["text"]


async def test_acknowledgement_note_in_the_channel_mentions_the_person(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    note = await ws.said("ack", "cknowledged by", user=BOB, channel=opened.channel)
    assert f"<@{BOB}>" in note.text


async def _wait_for_card_text(ws: Workspace, opened: Opened, fragment: str) -> None:
    await eventually(
        lambda: fragment in card_text(ws.card(opened)), timeout=10, what=repr(fragment)
    )


# --- alerts -------------------------------------------------------------------------------


async def test_the_card_counts_the_alerts_it_leaves_out_and_alerts_lists_them_all(
    ws: Workspace,
) -> None:
    instances = [f"web-{n:02d}" for n in range(23)]
    payload = make_payload([make_alert(service="api", instance=i) for i in instances])
    payload["commonLabels"] = {"alertname": "HighErrorRate", "service": "api"}
    await ws.bot.post_alerts(payload)
    opened = await ws.wait_until_open(1)
    sections = [
        b["text"]["text"] for b in ws.card(opened) if b["type"] == "section" and b.get("text")
    ]
    lines = "\n".join(sections).splitlines()
    assert "…and 13 more: `/incident alerts` lists them all" in lines

    # Two resolve: they go to the end of the list.
    ended = "2026-11-26T11:00:00Z"
    gone = [
        make_alert(service="api", instance=i, status="resolved", ends_at=ended)
        for i in instances[:2]
    ]
    await ws.bot.post_alerts(make_payload(gone))
    await ws.wait_for_event(opened.id, "alerts_resolved")

    page1 = (await ws.command("alerts", channel=opened.channel))["text"].splitlines()
    assert page1[0] == "*Alerts of incident #1* (page 1/2, 21 firing, 2 resolved)"
    assert page1[1] == "_All:_ `service=api`"
    assert page1[-1] == "_More: `/incident alerts 2`_"
    listed = page1[2:-1]
    assert len(listed) == 20
    assert all(line.startswith(":red_circle: *HighErrorRate* `") for line in listed)

    page2 = (await ws.command("alerts 2", channel=opened.channel))["text"].splitlines()
    assert page2[0] == "*Alerts of incident #1* (page 2/2, 21 firing, 2 resolved)"
    rest = page2[2:]
    assert [line.split()[0] for line in rest] == [":red_circle:"] + [":white_check_mark:"] * 2
    every = [line.split("`")[1] for line in listed + rest]
    assert sorted(every) == sorted(f"instance={i}, severity=critical" for i in instances)
    assert "More:" not in "\n".join(page2)


async def test_alerts_takes_a_page_number_and_works_in_an_incident_channel(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    empty = await ws.command("alerts", channel=opened.channel)
    assert empty["text"].splitlines()[1:] == ["No alerts."]
    wrong = await ws.command("alerts two", channel=opened.channel)
    assert shown(wrong["text"]) == (
        ":information_source: Page must be a number from 1. Usage: `/incident alerts [page]`"
    )
    elsewhere = await ws.command("alerts")
    assert "incident channel" in elsewhere["text"]
