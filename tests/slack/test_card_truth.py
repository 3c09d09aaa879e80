"""The card, its copies and #alerts say what is true now: every state change reaches the
channel's card and topic, each person's DM card and the announcement in #alerts, whose thread
tells the outcome; a resolved card offers Reopen only and says when, by whom and how long; an
exhausted escalation says so loudly; nothing is posted above the card."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from bot.clock import FakeClock
from bot.config import Settings
from bot.config.policies import EscalationConfig, LevelConfig, PolicyConfig
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from bot.slack.emulator.state import Message
from tests.builders import make_alert, make_payload
from tests.harness import RunningBot, eventually, running_bot, running_emulator, settled, step

ALICE, BOB = "U0ALICE01", "U0BOB0001"
ONCALL_GROUP = "S0ONCALL1"


def settings_with(
    *, levels: list[list[str]] | None = None, auto_resolve: bool = False, group: bool = False
) -> Callable[[Settings], None]:
    def tweak(settings: Settings) -> None:
        settings.auto_resolve = auto_resolve
        if group:
            settings.oncall.usergroup = ONCALL_GROUP
        if levels:
            settings.escalation = EscalationConfig(
                default="standard",
                policies=[
                    PolicyConfig(
                        name="standard",
                        levels=[LevelConfig(targets=t, timeout="5m") for t in levels],
                    )
                ],
            )

    return tweak


def people(emulator: SlackEmulator) -> None:
    emulator.add_user(ALICE, "alice")
    emulator.add_user(BOB, "bob")
    emulator.add_usergroup(ONCALL_GROUP, "oncall", [BOB])


def incident_channel(emulator: SlackEmulator) -> str:
    return next(c.id for c in emulator.state.channels.values() if c.name.startswith("inc-"))


def alerts_channel(emulator: SlackEmulator) -> str:
    return next(c.id for c in emulator.state.channels.values() if c.name == "alerts")


def card(emulator: SlackEmulator) -> Message:
    """The card in the incident channel, as it reads now."""
    channel = incident_channel(emulator)
    return next(
        m
        for m in emulator.state.channel_messages(channel)
        if (m.metadata or {}).get("event_type") == ids.CARD_METADATA_EVENT
    )


def dm_card(emulator: SlackEmulator, user: str) -> Message | None:
    dms = {c.id for c in emulator.state.channels.values() if c.is_im and c.im_user == user}
    return next(
        (m for m in emulator.state.messages if m.channel in dms and m.blocks and not m.thread_ts),
        None,
    )


def buttons(message: Message) -> list[str]:
    return [
        e["action_id"]
        for b in message.blocks or []
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def words(message: Message) -> str:
    """Everything a person reads on a message: its text and every text of its blocks."""
    found: list[str] = [message.text or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.blocks or [])
    return "\n".join(found)


def announcement(emulator: SlackEmulator) -> Message:
    return next(
        m for m in emulator.state.channel_messages(alerts_channel(emulator)) if not m.thread_ts
    )


def thread_of(emulator: SlackEmulator, parent: Message) -> list[str]:
    return [
        m.text
        for m in emulator.state.channel_messages(parent.channel)
        if m.thread_ts == parent.ts and m.ts != parent.ts
    ]


def topic(emulator: SlackEmulator) -> str:
    return emulator.state.channels[incident_channel(emulator)].topic


async def opened(bot: RunningBot, emulator: SlackEmulator, clock: FakeClock | None = None) -> None:
    if clock is None:
        await eventually(lambda: bool(emulator.calls_to("pins.add")), what="the card pinned")
        await eventually(lambda: settled(bot.url), what="the incident's Slack work done")
        return
    await settle(bot, clock)


async def settle(bot: RunningBot, clock: FakeClock) -> None:
    """With Slack's pace on a fake clock: a second at a time until the Slack work is done."""
    for _ in range(120):
        if await settled(bot.url):
            return
        await step(bot, clock, 1.0)
    raise AssertionError("the Slack work was not done in two minutes of the fake clock")


async def press(
    bot: RunningBot, emulator: SlackEmulator, action: str, value: str, user: str, on: Message
) -> None:
    """Press a button (`action`, with `value`) of the message `on` as `user`; Slack was
    answered 200 (what the click does may come after)."""
    reply = await emulator.send_block_action(
        f"{bot.url}/slack/events",
        action_id=action,
        value=value,
        user_id=user,
        channel_id=on.channel,
        message_ts=on.ts,
    )
    assert reply.status == 200


async def click(
    bot: RunningBot,
    emulator: SlackEmulator,
    action: str,
    user: str,
    on: Message,
    clock: FakeClock | None = None,
) -> None:
    """Click a button as `user`, and wait until what it changed has reached Slack. (Slack is
    answered before the click is acted on: the incident's new version says it was.)"""
    before = (await bot.app.services.incidents.get(1)).version
    await press(bot, emulator, action, "1", user, on)

    async def acted() -> bool:
        return (await bot.app.services.incidents.get(1)).version > before

    await eventually(acted, what="the click acted on")
    if clock is not None:
        await settle(bot, clock)
        return
    await eventually(lambda: settled(bot.url), what="the click's Slack work done")


async def test_auto_resolve_updates_topic_card_and_announcement_and_tells_the_thread(
    database_url: str,
) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=settings_with(auto_resolve=True)) as bot,
    ):
        await bot.post_alerts(make_payload([make_alert(service="api")]))
        await opened(bot, emulator)
        assert topic(emulator).startswith("SEV")
        assert "triggered" in topic(emulator)

        resolved = make_alert(service="api", status="resolved", ends_at="2026-11-26T10:30:00Z")
        await bot.post_alerts(make_payload([resolved], status="resolved"))
        await eventually(lambda: "resolved" in topic(emulator), what="the topic to say resolved")
        await eventually(lambda: settled(bot.url), what="the resolve's Slack work done")

        shown = card(emulator)
        assert shown.blocks is not None
        assert shown.blocks[0]["text"]["text"].startswith(":white_check_mark:")
        assert buttons(shown) == list(ids.RESOLVED_CARD_ACTIONS)
        assert "*Resolved*" in words(shown) and "by tocsin" in words(shown)
        assert "lasted " in words(shown)
        line = announcement(emulator)
        assert line.text.startswith(":white_check_mark:")
        assert "resolved" in line.text and f"<#{incident_channel(emulator)}>" in line.text
        assert thread_of(emulator, line) == [
            ":white_check_mark: Resolved automatically: every alert resolved."
        ]


async def test_acknowledge_from_a_dm_answers_the_clicker_and_every_copy_follows(
    database_url: str,
) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=settings_with(levels=[[ALICE]])) as bot,
    ):
        people(emulator)
        await bot.post_alerts(make_payload([make_alert(service="api")]))
        await eventually(lambda: dm_card(emulator, ALICE) is not None, what="Alice's DM card")
        await opened(bot, emulator)
        dm = dm_card(emulator, ALICE)
        assert dm is not None and ids.ACKNOWLEDGE in buttons(dm)

        await click(bot, emulator, ids.ACKNOWLEDGE, ALICE, dm)

        # Alice is answered where she clicked, once.
        answers = [m.text for m in emulator.state.messages if m.ephemeral_to == ALICE]
        assert answers == [f"Acknowledged by <@{ALICE}>"]
        # Her DM card, the channel's card and the announcement all say acknowledged.
        dm = dm_card(emulator, ALICE)
        assert dm is not None
        assert dm.edits  # edited in place, not posted again
        assert dm.text.startswith("You are paged (level 1) for ")  # still says why she has it
        for copy in (dm, card(emulator)):
            assert f"acknowledged by <@{ALICE}>" in words(copy)
            assert ids.ACKNOWLEDGE not in buttons(copy)
            assert ids.RESOLVE in buttons(copy)
        assert "acknowledged" in topic(emulator)
        line = announcement(emulator)
        assert f"acknowledged by <@{ALICE}>" in line.text
        assert thread_of(emulator, line) == [f"Acknowledged by <@{ALICE}>"]
        # In the incident channel the note says it; a click there gets no second copy.
        channel_card = card(emulator)
        await click(bot, emulator, ids.RESOLVE, ALICE, channel_card)
        assert [m.text for m in emulator.state.messages if m.ephemeral_to == ALICE] == answers
        dm = dm_card(emulator, ALICE)
        assert dm is not None and buttons(dm) == list(ids.RESOLVED_CARD_ACTIONS)
        assert thread_of(emulator, announcement(emulator)) == [
            f"Acknowledged by <@{ALICE}>",
            f"Resolved by <@{ALICE}>",
        ]


async def test_a_resolved_card_offers_reopen_and_reopening_brings_the_actions_back(
    database_url: str,
) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as bot,
    ):
        people(emulator)
        began = "2026-11-26T10:00:00Z"
        await bot.post_alerts(make_payload([make_alert(service="api", starts_at=began)]))
        await opened(bot, emulator)
        assert buttons(card(emulator)) == list(ids.CARD_ACTIONS)
        # Since when: the alert's startsAt, with its age, not when Tocsin opened the incident.
        stamp = int(datetime.fromisoformat(began).timestamp())
        assert (
            f"*Firing since*\n<!date^{stamp}^{{date_short_pretty}} {{time}}|2026-11-26 10:00 UTC>"
            f" (<!date^{stamp}^{{ago}}|10:00 UTC>)"
        ) in words(card(emulator))
        assert "*Opened*" not in words(card(emulator))

        await click(bot, emulator, ids.RESOLVE, BOB, card(emulator))
        resolved = card(emulator)
        assert buttons(resolved) == list(ids.RESOLVED_CARD_ACTIONS)
        assert "*Resolved* <!date^" in words(resolved)
        assert f"by <@{BOB}> · lasted " in words(resolved)
        # The alert still fires in Alertmanager: the card says so, not "1 firing".
        assert "1 still firing in Alertmanager, 0 resolved" in words(resolved)

        await click(bot, emulator, ids.REOPEN, BOB, resolved)
        reopened = card(emulator)
        assert buttons(reopened) == list(ids.CARD_ACTIONS)
        assert "*Resolved*" not in words(reopened)
        assert ":repeat: *Reopened* <!date^" in words(reopened)
        assert "triggered" in topic(emulator)
        assert thread_of(emulator, announcement(emulator))[-1] == f"Reopened by <@{BOB}>"


async def test_an_exhausted_escalation_is_said_loudly_and_pages_the_last_resort(
    database_url: str,
) -> None:
    clock = FakeClock(datetime.now(UTC))
    tweak = settings_with(levels=[[ALICE]], group=True)
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, tweak=tweak, clock=clock) as bot,
    ):
        people(emulator)
        await bot.post_alerts(make_payload([make_alert(service="api")]))
        await opened(bot, emulator, clock)
        assert dm_card(emulator, ALICE) is not None
        assert "*Escalation:* standard, level 1" in words(card(emulator))

        await step(bot, clock, 4 * 60)  # level 1's five minutes are not over
        channel = incident_channel(emulator)
        texts = [m.text for m in emulator.state.channel_messages(channel)]
        assert not any("exhausted" in t for t in texts)

        await step(bot, clock, 61)
        await settle(bot, clock)
        texts = [m.text for m in emulator.state.channel_messages(channel)]
        loud = (
            ":sos: Escalation exhausted: policy standard ran out of levels and nobody "
            f"acknowledged. <!subteam^{ONCALL_GROUP}>, please take this incident."
        )
        assert texts.count(loud) == 1
        assert ":sos: *Escalation exhausted*" in words(card(emulator))
        shown = words(card(emulator))
        assert "*Escalation:*" not in shown  # no longer "standard, level 1"
        # Who was paged, the last resort among them.
        assert re.search(
            r"\*Paged:\* <@U0ALICE01> \(level 1, [^)]*\), <@U0BOB0001> \(last resort", shown
        )
        line = announcement(emulator)
        assert "escalation exhausted, nobody acknowledged" in line.text
        assert thread_of(emulator, line) == [loud]
        # The last resort is paged like a level: Bob (the on-call group) is invited and DMed.
        assert BOB in emulator.state.channels[channel].members
        assert dm_card(emulator, BOB) is not None


async def test_without_a_last_resort_the_whole_channel_is_told(database_url: str) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(
            database_url, emulator, url, tweak=settings_with(levels=[[ALICE]]), clock=clock
        ) as bot,
    ):
        people(emulator)
        await bot.post_alerts(make_payload([make_alert(service="api")]))
        await opened(bot, emulator, clock)
        await step(bot, clock, 5 * 60 + 1)
        await settle(bot, clock)
        texts = [m.text for m in emulator.state.channel_messages(incident_channel(emulator))]
        assert [t for t in texts if t.startswith(":sos:")] == [
            ":sos: Escalation exhausted: policy standard ran out of levels and nobody "
            "acknowledged. <!channel>, please take this incident."
        ]


async def test_an_acknowledged_incident_is_never_called_exhausted(database_url: str) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(
            database_url, emulator, url, tweak=settings_with(levels=[[ALICE]]), clock=clock
        ) as bot,
    ):
        people(emulator)
        await bot.post_alerts(make_payload([make_alert(service="api")]))
        await opened(bot, emulator, clock)
        await click(bot, emulator, ids.ACKNOWLEDGE, ALICE, card(emulator), clock)
        await step(bot, clock, 10 * 60)
        await settle(bot, clock)
        channel = incident_channel(emulator)
        assert not any(":sos:" in m.text for m in emulator.state.channel_messages(channel))
        assert "exhausted" not in words(card(emulator))


async def card_of(database_url: str, alert: dict[str, Any]) -> str:
    """What the card says once an incident opened from this one alert."""
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as bot,
    ):
        await bot.post_alerts(make_payload([alert]))
        await opened(bot, emulator)
        return words(card(emulator))


async def test_the_rules_runbook_and_each_alerts_graph_are_on_the_card(database_url: str) -> None:
    alert = make_alert(service="api")
    alert["annotations"]["runbook_url"] = "https://runbooks.example.com/api-errors"
    alert["generatorURL"] = "http://prometheus:9090/graph?g0.expr=up&g0.tab=1"
    shown = await card_of(database_url, alert)
    # The rule's own runbook wins over the HighErrorRate playbook's.
    assert "<https://runbooks.example.com/api-errors|Runbook>" in shown
    assert "high-error-rate" not in shown
    assert "<http://prometheus:9090/graph?g0.expr=up&amp;g0.tab=1|graph>" in shown
    assert "no runbook" not in shown
    # Silence asks first, and says what it would silence: the labels the notification says
    # all its alerts share (commonLabels).
    assert (
        "Alertmanager holds the notifications of alerts matching "
        "alertname=HighErrorRate, severity=critical."
    ) in shown


async def test_the_alerts_description_and_dashboard_are_on_the_card(database_url: str) -> None:
    alert = make_alert(service="api")
    alert["annotations"]["summary"] = "5xx above 5% on api"
    alert["annotations"]["description"] = "12% of requests to /checkout fail since the deploy"
    alert["annotations"]["dashboard"] = "https://grafana.example.com/d/api?var-env=prod&x=1"
    shown = await card_of(database_url, alert)
    # The summary on the alert's line, the description under it, the dashboard beside it.
    assert "— 5xx above 5% on api" in shown
    assert "_12% of requests to /checkout fail since the deploy_" in shown
    assert "<https://grafana.example.com/d/api?var-env=prod&amp;x=1|dashboard>" in shown


async def test_a_description_alone_is_the_alerts_line(database_url: str) -> None:
    alert = make_alert(service="api")
    alert["annotations"] = {"description": "Disk /data is 97% full", "dashboard_url": "x"}
    shown = await card_of(database_url, alert)
    assert shown.count("Disk /data is 97% full") == 1  # said once, not twice
    assert "|dashboard>" not in shown  # not a link anyone could follow


async def test_an_incident_without_a_runbook_says_so(database_url: str) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as bot,
    ):
        name = "DiskAlmostFull"  # no shipped playbook names a runbook for it
        await bot.post_alerts(make_payload([make_alert(name, service="api")], group=name))
        await opened(bot, emulator)
        assert "no runbook (set the rule's `runbook_url` or a playbook's `runbook`)" in words(
            card(emulator)
        )


async def test_labels_every_alert_shares_are_said_once(database_url: str) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as bot,
    ):
        alerts = [make_alert(service="api", instance=name) for name in ("web-1", "web-2")]
        payload = make_payload(alerts)
        payload["commonLabels"] = {
            "alertname": "HighErrorRate",
            "service": "api",
            "severity": "critical",
        }
        await bot.post_alerts(payload)
        await opened(bot, emulator)
        shown = words(card(emulator)).splitlines()
        assert "_All:_ `service=api, severity=critical`" in shown
        lines = [line for line in shown if line.startswith(":red_circle: *HighErrorRate*")]
        assert [line.split("`")[1] for line in lines] == ["instance=web-1", "instance=web-2"]


def test_an_exhausted_incident_acknowledged_since_reads_acknowledged_in_alerts() -> None:
    from bot.domain.incidents import Incident, IncidentStatus, Severity
    from bot.domain.views import IncidentView
    from bot.slack.render import announcement_text

    at = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    incident = Incident(
        id=1,
        key="k",
        title="Checkout 500s",
        severity=Severity.SEV2,
        status=IncidentStatus.ACKNOWLEDGED,
        opened_at=at,
        acknowledged_at=at,
        acknowledged_by=ALICE,
        channel_id="C0INC0001",
        escalation_policy="standard",
        escalation_exhausted_at=at,  # it ran out, and then Alice took it
    )
    view = IncidentView(
        incident=incident,
        slug_source="checkout",
        labels={},
        external_url="",
        alerts=[],
        alerts_resolved_at=None,
    )
    line = announcement_text(view)
    assert f"acknowledged by <@{ALICE}>" in line
    assert "exhausted" not in line


async def test_an_outcome_whose_answer_was_lost_is_in_the_thread_once(database_url: str) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as bot,
    ):
        await bot.post_alerts(make_payload([make_alert(service="api")]))
        await opened(bot, emulator)
        # The channel's note and the thread's outcome are both posted, and neither answer
        # comes back: each retry must find its own message (the outcome's is in a thread,
        # which the channel's history does not show).
        emulator.lose_answers("chat.postMessage", 2)
        await click(bot, emulator, ids.ACKNOWLEDGE, BOB, card(emulator))
        await eventually(
            lambda: thread_of(emulator, announcement(emulator)) != [], what="the outcome"
        )
        await eventually(lambda: settled(bot.url), what="the retries done")
        assert thread_of(emulator, announcement(emulator)) == [f"Acknowledged by <@{BOB}>"]
        notes = emulator.state.channel_messages(incident_channel(emulator))
        assert [m.text for m in notes].count(f"Acknowledged by <@{BOB}>") == 1


async def test_the_card_says_who_was_paged_and_when_and_why_the_severity(
    database_url: str,
) -> None:
    clock = FakeClock(datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(
            database_url, emulator, url, tweak=settings_with(levels=[[ALICE], [BOB]]), clock=clock
        ) as bot,
    ):
        people(emulator)
        await bot.post_alerts(make_payload([make_alert(service="api")]))  # severity=critical
        await opened(bot, emulator, clock)
        shown = words(card(emulator))
        alice = r"<@U0ALICE01> \(level 1, <!date\^\d+\^\{time\}\|2026-11-26 10:00 UTC>\)"
        assert re.search(rf"\*Paged:\* {alice}\n", shown), shown
        # HighErrorRate's playbook makes it sev2 whatever the alert's label says.
        assert "sev2\n_by playbook HighErrorRate; the alert said critical_" in shown

        await step(bot, clock, 5 * 60)  # level 1 times out: Bob is paged
        await settle(bot, clock)
        shown = words(card(emulator))
        bob = r"<@U0BOB0001> \(level 2, <!date\^\d+\^\{time\}\|2026-11-26 10:05 UTC>\)"
        assert re.search(rf"\*Paged:\* {alice}, {bob}\n", shown), shown

        before = (await bot.app.services.incidents.get(1)).version
        await emulator.send_slash_command(
            f"{bot.url}/slack/events",
            ids.INCIDENT_COMMAND,
            "sev 1",
            user_id=ALICE,
            channel_id=incident_channel(emulator),
        )

        async def changed() -> bool:
            return (await bot.app.services.incidents.get(1)).version > before

        await eventually(changed, what="the severity changed")
        await settle(bot, clock)
        assert "by playbook" not in words(card(emulator))  # a person chose it since


async def test_a_paced_copy_does_not_make_the_card_edit_itself_again(database_url: str) -> None:
    """Tocsin may edit one message a minute (chat.update is Tier 3, here set to 1): the card's
    update edits the channel's card, then waits for its turn to edit Alice's DM copy. When it
    comes, the copy is edited and the channel's card is not edited a second time alike."""
    clock = FakeClock(datetime.now(UTC))
    levels = settings_with(levels=[[ALICE]])

    def tweak(settings: Settings) -> None:
        levels(settings)
        settings.outbox.tier_per_minute = {**settings.outbox.tier_per_minute, "3": 1}

    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url, clock=clock, tweak=tweak) as bot,
    ):
        people(emulator)
        await bot.post_alerts(make_payload([make_alert(service="api")]))
        for _ in range(6):
            await step(bot, clock, 61)
        assert dm_card(emulator, ALICE) is not None
        await press(bot, emulator, ids.ACKNOWLEDGE, "1", ALICE, card(emulator))
        for _ in range(6):
            await step(bot, clock, 61)
        dm = dm_card(emulator, ALICE)
        assert dm is not None and f"acknowledged by <@{ALICE}>" in words(dm)
        assert f"acknowledged by <@{ALICE}>" in words(card(emulator))
        edits: dict[tuple[str, str], list[str]] = {}
        for call in emulator.calls_to("chat.update"):
            shown = json.dumps([call.params.get("text"), call.params.get("blocks")])
            edits.setdefault((call.params["channel"], call.params["ts"]), []).append(shown)
        for message, versions in edits.items():
            repeated = [a for a, b in pairwise(versions) if a == b]
            assert repeated == [], f"{message} was edited to the same content twice"
