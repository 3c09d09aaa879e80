"""Slack sends slash-command text with `&`, `<` and `>` escaped: Tocsin makes it plain once as
it comes in, and escapes it once wherever it puts it back into Slack text."""

from __future__ import annotations

from tests.commands.conftest import ALICE, BOB, Workspace, card_header


async def test_a_title_with_ampersand_and_brackets_is_clean_everywhere(ws: Workspace) -> None:
    opened = await ws.declare("A & B <tag>", "sev2")
    channel = ws.emulator.state.channels[opened.channel]
    assert channel.name.endswith("-1-a-b-tag"), channel.name
    assert channel.topic.endswith("· A & B <tag>")  # a topic is plain text
    assert card_header(ws.card(opened)).endswith(" A & B <tag>")  # so is a header block
    card = ws.emulator.state.message(opened.channel, opened.card_ts)
    assert card is not None and "A &amp; B &lt;tag&gt;" in card.text  # the fallback is mrkdwn
    announcement = await ws.wait_for_message(ws.channel_named("alerts"), "<#")
    assert "A &amp; B &lt;tag&gt;" in announcement.text
    assert "&amp;amp;" not in announcement.text and "&amp;lt;" not in announcement.text
    listed = await ws.command("list")
    assert "A &amp; B &lt;tag&gt;" in listed["text"] and "&amp;amp;" not in listed["text"]
    assert f"Declared by <@{ALICE}>: A & B <tag>" in [t for _, _, t in await ws.timeline(opened.id)]


async def test_notes_and_updates_are_escaped_once(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    await ws.command("note cache & db <both> slow", channel=opened.channel)
    assert ("note", ALICE, "cache & db <both> slow") in await ws.timeline(opened.id)
    shown = await ws.command("timeline", channel=opened.channel)
    assert "cache &amp; db &lt;both&gt; slow" in shown["text"]
    assert "&amp;amp;" not in shown["text"]

    await ws.command("update rollback & restart <now>", channel=opened.channel)
    here = await ws.wait_for_message(opened.channel, ":mega:")
    assert here.text == f":mega: *Update* from <@{ALICE}>: rollback &amp; restart &lt;now&gt;"
    alerts = await ws.wait_for_message(ws.channel_named("alerts"), ":mega:")
    assert alerts.text == f"{here.text} — <#{opened.channel}>"

    resolved = await ws.said("resolve fixed A & B", "Resolved by", channel=opened.channel)
    assert resolved.text.endswith("fixed A &amp; B"), resolved.text


async def test_mentions_typed_in_a_command_stay_mentions(ws: Workspace) -> None:
    opened = await ws.declare("Checkout 500s", "sev2")
    note = await ws.said(f"lead <@{BOB}|bob>", "is now the incident lead", channel=opened.channel)
    assert note.text.startswith(f"<@{BOB}> is now the incident lead")
    await ws.command(f"note asked <@{ALICE}|alice> & ops", channel=opened.channel)
    shown = await ws.command("timeline", channel=opened.channel)
    # Slack shows a user's mention by its current name, with or without the typed label.
    assert f"asked <@{ALICE}> &amp; ops" in shown["text"]
