"""Pages beyond Slack: a person's notification rule notifies each contact method at its time
while the page stays unacknowledged (an email through a real SMTP server, a push through
apprise's generic json:// webhook to a local server); acknowledging stops the rest; a method
that fails is named in the channel, and no secret of its URL is ever shown."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_string
from email.message import Message as Email
from typing import Any

import pytest
from aiohttp import ClientSession
from aiosmtpd.smtp import Envelope

from bot.clock import FakeClock
from bot.config import Settings
from bot.config.people import NotifyConfig, PaceConfig, PersonConfig
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from tests.builders import make_alert, make_payload
from tests.harness import RunningBot, eventually, running_bot, running_emulator, step
from tests.realservers import Received, local_endpoint
from tests.realservers import smtp_server as real_smtp_server
from tests.slack.test_card_truth import (
    ALICE,
    card,
    click,
    dm_card,
    incident_channel,
    people,
    settings_with,
    settle,
)

TOKEN = "tok-7f3a9c2e51"  # in the push URL: never shown


@dataclass
class Inbox:
    """What a real SMTP server received."""

    mails: list[Email] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        content = envelope.content
        text = content.decode() if isinstance(content, bytes) else str(content)
        self.mails.append(message_from_string(text))
        return "250 OK"


@dataclass
class RefusingInbox(Inbox):
    """A real SMTP server that has no mailbox for anyone."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return "550 5.1.1 No such mailbox"


@asynccontextmanager
async def smtp_server(refusing: bool = False) -> AsyncIterator[tuple[Inbox, int]]:
    inbox = RefusingInbox() if refusing else Inbox()
    with real_smtp_server(inbox) as port:
        yield inbox, port


@asynccontextmanager
async def webhook_server(status: int = 200) -> AsyncIterator[tuple[list[Received], str]]:
    """A local HTTP endpoint answering `status`: what it was sent, and its json:// URL (whose
    login holds TOKEN)."""
    async with local_endpoint(status) as (received, port):
        yield received, f"json://{TOKEN}:{TOKEN}@127.0.0.1:{port}/alice"


def titles(received: list[Received]) -> list[str]:
    return [str(r.json()["title"]) for r in received]


SLACK_PUSH_MAIL = (("0s", "slack"), ("1m", "push"), ("2m", "mail"))


def rule(
    push_url: str, smtp_port: int, steps: tuple[tuple[str, str], ...] = SLACK_PUSH_MAIL
) -> Callable[[Settings], None]:
    """Alice's rule (by default the Slack DM at once, a push after 1 minute, an email after 2)."""
    levels = settings_with(levels=[[ALICE]])

    def tweak(settings: Settings) -> None:
        levels(settings)
        settings.people = {
            ALICE: PersonConfig.model_validate(
                {
                    "contacts": {"push": push_url, "mail": "email:alice@example.com"},
                    "rules": [{"after": after, "notify": [name]} for after, name in steps],
                }
            )
        }
        settings.notify = NotifyConfig.model_validate(
            {
                "email": {
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "from": "tocsin@example.com",
                    "security": "none",
                }
            }
        )

    return tweak


def firing() -> dict[str, Any]:
    alert = make_alert("DiskFull", severity="critical", instance="db-1")
    common = {"alertname": "DiskFull", "severity": "critical"}
    return make_payload([alert], group="DiskFull", commonLabels=common)


@dataclass
class Paged:
    """Alice paged: the bot, its Slack, and the fake clock that started at the page."""

    bot: RunningBot
    emulator: SlackEmulator
    clock: FakeClock
    paged_at: datetime

    async def at(self, seconds: float) -> None:
        """Move the clock to `seconds` after the page, and let what fell due be done."""
        await step(
            self.bot, self.clock, (self.paged_at - self.clock.now()).total_seconds() + seconds
        )
        await settle(self.bot, self.clock)


@asynccontextmanager
async def paging_alice(
    database_url: str,
    push_url: str,
    smtp_port: int,
    steps: tuple[tuple[str, str], ...] = SLACK_PUSH_MAIL,
) -> AsyncIterator[Paged]:
    clock = FakeClock(datetime.now(UTC))
    async with (
        running_emulator() as (emulator, url),
        running_bot(
            database_url, emulator, url, clock=clock, tweak=rule(push_url, smtp_port, steps)
        ) as bot,
    ):
        people(emulator)
        paged_at = clock.now()
        await bot.post_alerts(firing())
        await settle(bot, clock)
        yield Paged(bot, emulator, clock, paged_at)


async def test_each_step_notifies_at_its_time_and_the_email_says_how_to_acknowledge(
    database_url: str,
) -> None:
    async with (
        smtp_server() as (inbox, smtp_port),
        webhook_server() as (pushes, push_url),
        paging_alice(database_url, push_url, smtp_port) as paged,
    ):
        bot, emulator = paged.bot, paged.emulator
        assert dm_card(emulator, ALICE) is not None  # the first step: the card in her DM
        assert (pushes, inbox.mails) == ([], [])

        await paged.at(59)
        assert pushes == []  # not before its minute
        await paged.at(61)
        assert len(pushes) == 1  # apprise's documented json:// body, with the URL's login
        push = pushes[0].json()
        assert {"version", "title", "message", "type"} <= set(push)
        assert pushes[0].headers["Authorization"].startswith("Basic ")
        assert push["title"] == "[sev1] #1 DiskFull"
        assert "/incident ack 1" in push["message"]
        assert inbox.mails == []

        await paged.at(119)
        assert inbox.mails == []
        await paged.at(121)
        assert len(inbox.mails) == 1 and len(pushes) == 1  # each step once
        mail = inbox.mails[0]
        assert mail["To"] == "alice@example.com" and mail["Subject"] == "[sev1] #1 DiskFull"
        body = _text(mail)
        assert "Severity: sev1" in body
        channel = incident_channel(emulator)
        assert f"Open it in Slack: https://slack.com/app_redirect?channel={channel}" in body
        name = emulator.state.channels[channel].name
        assert f"press Acknowledge on the card in #{name}, or type /incident ack 1" in body

        timeline = [e.rich.text for e in await bot.app.services.incidents.timeline(1)]
        assert any(t.startswith("Push to ") and t.endswith(" sent (json)") for t in timeline)
        assert any(t.startswith("Mail to ") and t.endswith(" sent (email)") for t in timeline)
        metrics = await metrics_of(bot)
        assert 'tocsin_notifications_total{method="json",outcome="sent"} 1.0' in metrics
        assert 'tocsin_notifications_total{method="email",outcome="sent"} 1.0' in metrics


async def test_acknowledging_between_steps_cancels_the_rest(database_url: str) -> None:
    async with (
        smtp_server() as (inbox, smtp_port),
        webhook_server() as (pushes, push_url),
        paging_alice(database_url, push_url, smtp_port) as paged,
    ):
        await paged.at(61)
        assert len(pushes) == 1
        await click(
            paged.bot, paged.emulator, ids.ACKNOWLEDGE, ALICE, card(paged.emulator), paged.clock
        )
        await paged.at(300)
        assert inbox.mails == [] and len(pushes) == 1


def warnings(emulator: SlackEmulator) -> list[str]:
    """The channel's messages that say somebody could not be reached."""
    said = [m.text or "" for m in emulator.state.channel_messages(incident_channel(emulator))]
    return [t for t in said if t.startswith(":warning: Could not reach")]


async def test_a_method_that_fails_is_recorded_without_its_secret_and_the_dm_still_reached(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Alice's push is refused, but her Slack DM reached her: the timeline says the push
    failed, and the channel is not told she could not be reached."""
    caplog.set_level(logging.DEBUG)
    async with (
        smtp_server() as (_inbox, smtp_port),
        webhook_server(status=401) as (pushes, push_url),
        paging_alice(database_url, push_url, smtp_port) as paged,
    ):
        bot, emulator = paged.bot, paged.emulator
        await paged.at(61)
        assert len(pushes) == 1  # a 401 is a refusal: not tried again
        timeline = [e.rich.text for e in await bot.app.services.incidents.timeline(1)]
        assert any(t.startswith("Push to ") and "failed (json)" in t for t in timeline)
        assert any("401" in t for t in timeline)
        assert warnings(emulator) == []
        said = [m.text or "" for m in emulator.state.channel_messages(incident_channel(emulator))]
        shown = "\n".join(said) + json.dumps([m.text for m in emulator.state.messages])
        for where in (shown, "\n".join(timeline), caplog.text, await metrics_of(bot)):
            assert TOKEN not in where


async def test_a_person_none_of_whose_methods_worked_is_named_once_with_each_reason(
    database_url: str,
) -> None:
    """Alice's rule: a push at once (refused, 401), an email after a minute (no such mailbox).
    The channel names her once both have failed, not after the first, and never again."""
    async with (
        smtp_server(refusing=True) as (inbox, smtp_port),
        webhook_server(status=401) as (pushes, push_url),
        paging_alice(database_url, push_url, smtp_port, (("0s", "push"), ("1m", "mail"))) as paged,
    ):
        emulator = paged.emulator
        await paged.at(1)
        assert len(pushes) == 1
        assert warnings(emulator) == []  # her email is still to come
        await paged.at(61)
        (said,) = warnings(emulator)
        assert said.startswith(f":warning: Could not reach <@{ALICE}> by any of their methods")
        assert "push (json): " in said and "401" in said
        assert "mail (email): " in said and "550" in said
        assert said.index("push (json)") < said.index("mail (email)")
        assert inbox.mails == []
        await paged.at(600)
        assert len(warnings(emulator)) == 1


async def test_a_person_whose_last_method_worked_is_not_named(database_url: str) -> None:
    """Alice's push at once is refused; her email a minute later arrives: nobody is told she
    could not be reached."""
    async with (
        smtp_server() as (inbox, smtp_port),
        webhook_server(status=401) as (_pushes, push_url),
        paging_alice(database_url, push_url, smtp_port, (("0s", "push"), ("1m", "mail"))) as paged,
    ):
        await paged.at(61)
        assert len(inbox.mails) == 1
        await paged.at(600)
        assert warnings(paged.emulator) == []


async def metrics_of(bot: RunningBot) -> str:
    async with ClientSession() as session, session.get(f"{bot.url}/metrics") as response:
        return await response.text()


def _text(mail: Email) -> str:
    parts = mail.walk() if mail.is_multipart() else [mail]
    for part in parts:
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/plain part")


async def test_a_paced_service_holds_a_persons_pages_until_the_window_allows(
    database_url: str,
) -> None:
    """Two incidents page Alice by push at once; the pace allows one per 15 minutes."""
    clock = FakeClock(datetime.now(UTC))
    async with webhook_server() as (pushes, push_url), smtp_server() as (_inbox, smtp_port):
        paging = rule(push_url, smtp_port)

        def tweak(settings: Settings) -> None:
            paging(settings)
            settings.people[ALICE].rules[1].after = timedelta(0)  # the push at once
            settings.notify.pace = PaceConfig(within=timedelta(minutes=15), at_most={"json": 1})

        async with (
            running_emulator() as (emulator, url),
            running_bot(database_url, emulator, url, clock=clock, tweak=tweak) as bot,
        ):
            people(emulator)
            started = clock.now()
            for name in ("DiskFull", "QueueStuck"):
                alert = make_alert(name, severity="critical")
                common = {"alertname": name, "severity": "critical"}
                await bot.post_alerts(make_payload([alert], group=name, commonLabels=common))
            # One push is held by the pace: the outbox is never empty, so time moves on
            # until it is quiet instead of until it is empty.
            for _ in range(30):
                await step(bot, clock, 1)
            assert titles(pushes) == ["[sev1] #1 DiskFull"]
            await step(bot, clock, (started - clock.now()).total_seconds() + 14 * 60)
            assert len(pushes) == 1  # held
            await step(bot, clock, 61)
            await settle(bot, clock)
            assert titles(pushes) == ["[sev1] #1 DiskFull", "[sev1] #2 QueueStuck"]


async def test_a_push_is_not_kept_waiting_by_slack_calls_in_flight(database_url: str) -> None:
    """One Slack call at a time, and it is slow: Alice's push still goes at its minute."""
    clock = FakeClock(datetime.now(UTC))
    async with webhook_server() as (pushes, push_url), smtp_server() as (_inbox, smtp_port):
        paging = rule(push_url, smtp_port)

        def tweak(settings: Settings) -> None:
            paging(settings)
            settings.outbox.concurrency = 1

        async with (
            running_emulator(latency={"conversations.create": 10.0}) as (emulator, url),
            running_bot(database_url, emulator, url, clock=clock, tweak=tweak) as bot,
        ):
            people(emulator)
            await bot.post_alerts(firing())
            await eventually(
                lambda: emulator.in_flight("conversations.create") == 1, what="the slow call"
            )
            clock.advance(seconds=61)
            bot.app.scheduler.wake()
            await eventually(lambda: len(pushes) == 1, what="the push")
            assert emulator.in_flight("conversations.create") == 1  # the Slack call still runs
            assert titles(pushes) == ["[sev1] #1 DiskFull"]


async def test_a_user_groups_member_is_paged_through_their_own_rule(database_url: str) -> None:
    """The level names a user group; Alice is in it. Her rule starts with a push, then the
    Slack DM a minute later; acknowledging stops it."""
    clock = FakeClock(datetime.now(UTC))
    async with webhook_server() as (pushes, push_url), smtp_server() as (inbox, smtp_port):
        paging = rule(push_url, smtp_port)

        def tweak(settings: Settings) -> None:
            paging(settings)
            settings_with(levels=[["usergroup:S0TEAM0001"]])(settings)
            alice = settings.people[ALICE]
            alice.rules[0].notify, alice.rules[1].notify = ["push"], ["slack"]
            alice.rules[0].after, alice.rules[1].after = timedelta(0), timedelta(minutes=1)

        async with (
            running_emulator() as (emulator, url),
            running_bot(database_url, emulator, url, clock=clock, tweak=tweak) as bot,
        ):
            people(emulator)
            emulator.add_usergroup("S0TEAM0001", "team", [ALICE])
            paged_at = clock.now()
            await bot.post_alerts(firing())
            await settle(bot, clock)
            assert titles(pushes) == ["[sev1] #1 DiskFull"]  # her first step: the push
            assert dm_card(emulator, ALICE) is None  # not yet: her rule says a minute
            await step(bot, clock, (paged_at - clock.now()).total_seconds() + 61)
            await settle(bot, clock)
            assert dm_card(emulator, ALICE) is not None
            assert len(pushes) == 1
            await click(bot, emulator, ids.ACKNOWLEDGE, ALICE, card(emulator), clock)
            await step(bot, clock, (paged_at - clock.now()).total_seconds() + 300)
            await settle(bot, clock)
            assert inbox.mails == [] and len(pushes) == 1  # her email step was cancelled
