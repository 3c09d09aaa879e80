"""A running Tocsin and Slack emulator, driven the way people drive it: slash commands and clicks.

`Workspace` sends signed requests through the emulator and waits for what the person would
see: the ephemeral reply posted to the request's `response_url`, the pinned card as it stands
in the channel, messages in channels, and the incident's timeline in the store.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from bot.config import Settings
from bot.domain.incidents import Incident
from bot.services.incidents import NotFound
from bot.slack import ids
from bot.slack.emulator import EmulatorReply, SlackEmulator
from bot.slack.emulator.outbound import VERIFICATION_TOKEN, block_action_body, post_signed
from bot.slack.emulator.state import Message
from tests.builders import with_tokens
from tests.harness import SIGNING_SECRET, RunningBot, eventually, running_bot, running_emulator

ALICE = "U0ALICE1"
BOB = "U0BOB123"
CAROL = "U0CAROL1"
WAIT = 10.0

Tweak = Callable[[Settings], None]


@dataclass(frozen=True)
class Opened:
    """An incident whose channel exists and whose card is pinned."""

    id: int
    channel: str
    card_ts: str


class Workspace:
    """The emulated workspace and the bot, from the point of view of the people in it."""

    def __init__(self, bot: RunningBot) -> None:
        self.bot = bot
        self.emulator: SlackEmulator = bot.emulator
        self.events_url = f"{bot.url}/slack/events"
        self.general = self.emulator.add_channel("general", members=[ALICE, BOB, CAROL])

    # --- what people send ---------------------------------------------------------------

    async def command(
        self,
        text: str,
        *,
        user: str = ALICE,
        channel: str | None = None,
        command: str = ids.INCIDENT_COMMAND,
    ) -> dict[str, Any]:
        """Run a slash command and return the ephemeral reply body the person gets."""
        reply, token = await self._send(
            lambda: self.emulator.send_slash_command(
                self.events_url, command, text, user_id=user, channel_id=channel or self.general
            )
        )
        assert reply.status == 200, reply.body
        assert not reply.timed_out, f"ack took {reply.elapsed:.2f}s"
        return await self.reply_to(token, what=f"reply to {command} {text!r}")

    async def said(
        self, text: str, says: str, *, user: str = ALICE, channel: str | None = None
    ) -> Message:
        """Run /incident whose reply is the channel's note (one reply, not two): wait for the
        note containing `says` in the channel, check the person got no second copy, return it."""
        where = channel or self.general
        _ack, token = await self.command_without_reply(text, user=user, channel=where)
        note = await self.wait_for_message(where, says)
        assert self.replies(token) == [], self.replies(token)
        return note

    async def command_without_reply(
        self, text: str, *, user: str = ALICE, channel: str | None = None
    ) -> tuple[EmulatorReply, str]:
        """Run /incident when no reply is expected; return the ack and the response_url token."""
        return await self._send(
            lambda: self.emulator.send_slash_command(
                self.events_url,
                ids.INCIDENT_COMMAND,
                text,
                user_id=user,
                channel_id=channel or self.general,
            )
        )

    async def click(
        self, action_id: str, incident: Opened, *, user: str = ALICE, value: str | None = None
    ) -> tuple[EmulatorReply, str]:
        """Click a button of the incident's pinned card; return the HTTP reply and its token."""
        return await self._send(
            lambda: self.emulator.send_block_action(
                self.events_url,
                action_id=action_id,
                value=str(incident.id) if value is None else value,
                user_id=user,
                channel_id=incident.channel,
                message_ts=incident.card_ts,
                block_id=ids.CARD_BLOCK_ID,
            )
        )

    async def click_for_reply(
        self, action_id: str, incident: Opened, *, user: str = ALICE, value: str | None = None
    ) -> dict[str, Any]:
        """Click a card button and return the ephemeral reply body."""
        reply, token = await self.click(action_id, incident, user=user, value=value)
        assert reply.status == 200, reply.body
        return await self.reply_to(token, what=f"reply to a click on {action_id}")

    async def submit_view(
        self, view_id: str, *, user: str, values: dict[str, Any]
    ) -> EmulatorReply:
        """Submit a modal the bot opened, as Slack does (a signed view_submission payload)."""
        state = self.emulator.state
        stored = state.views[view_id]
        name = state.users[user].name
        payload = {
            "type": "view_submission",
            "team": {"id": state.team_id, "domain": state.team_domain},
            "user": {"id": user, "username": name, "name": name, "team_id": state.team_id},
            "api_app_id": state.app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self.emulator.new_trigger_id(user),
            "view": {
                **stored.view,
                "id": view_id,
                "team_id": state.team_id,
                "app_id": state.app_id,
                "bot_id": state.bot_id,
                "hash": stored.hash,
                "private_metadata": stored.view.get("private_metadata", ""),
                "root_view_id": view_id,
                "previous_view_id": None,
                "state": {"values": values},
            },
            "response_urls": [],
            "is_enterprise_install": False,
        }
        return await post_signed(
            self.events_url,
            block_action_body(payload),
            secret=SIGNING_SECRET,
            timestamp=int(time.time()),
        )

    async def start_click(
        self, action_id: str, incident: Opened, *, user: str = ALICE
    ) -> tuple[asyncio.Task[EmulatorReply], str]:
        """Start a click without waiting for the bot's HTTP answer (for clicks at the same time)."""
        return await self._start(
            lambda: self.emulator.send_block_action(
                self.events_url,
                action_id=action_id,
                value=str(incident.id),
                user_id=user,
                channel_id=incident.channel,
                message_ts=incident.card_ts,
                block_id=ids.CARD_BLOCK_ID,
            )
        )

    async def _send(
        self, send: Callable[[], Awaitable[EmulatorReply]]
    ) -> tuple[EmulatorReply, str]:
        task, token = await self._start(send)
        return await task, token

    async def _start(
        self, send: Callable[[], Awaitable[EmulatorReply]]
    ) -> tuple[asyncio.Task[EmulatorReply], str]:
        # The emulator registers the request's response_url before it sends anything.
        before = set(self.emulator.state.response_urls)
        task = asyncio.ensure_future(send())
        while not (new := set(self.emulator.state.response_urls) - before):
            if task.done():
                task.result()
                raise AssertionError("the emulator sent nothing")
            await asyncio.sleep(0)
        (token,) = new
        return task, token

    # --- what people see ----------------------------------------------------------------

    def replies(self, token: str) -> list[dict[str, Any]]:
        """Every body the bot sent to one response_url."""
        return [p.body for p in self.emulator.state.response_posts if p.token == token]

    async def reply_to(self, token: str, *, what: str = "a reply") -> dict[str, Any]:
        """Wait for the one reply to a request and return its body."""
        await eventually(lambda: bool(self.replies(token)), timeout=WAIT, what=what)
        (body,) = self.replies(token)
        assert body.get("response_type", "ephemeral") == "ephemeral", body
        return body

    def card(self, incident: Opened) -> list[dict[str, Any]]:
        """The card's blocks as the channel shows them now."""
        message = self.emulator.state.message(incident.channel, incident.card_ts)
        assert message is not None and message.blocks is not None
        return message.blocks

    def card_fields(self, incident: Opened) -> dict[str, str]:
        """The card's fields by title: {"Status": "acknowledged by <@U…>", "Severity": …}."""
        return card_fields(self.card(incident))

    def messages_in(self, channel: str) -> list[Message]:
        """Messages everyone in a channel sees (ephemeral ones left out)."""
        return [
            m
            for m in self.emulator.state.messages
            if m.channel == channel and m.ephemeral_to is None
        ]

    def channel_named(self, name: str) -> str:
        """The id of the channel called `name`."""
        return next(c.id for c in self.emulator.state.channels.values() if c.name == name)

    async def wait_for_card(
        self, incident: Opened, check: Callable[[dict[str, str]], bool]
    ) -> None:
        """Wait until the pinned card's fields satisfy `check`."""
        await eventually(
            lambda: check(self.card_fields(incident)),
            timeout=WAIT,
            what=f"card of #{incident.id} to change (now {self.card_fields(incident)})",
        )

    async def wait_for_message(self, channel: str, fragment: str) -> Message:
        """Wait for a message containing `fragment` in a channel and return it."""

        def found() -> Message | None:
            return next((m for m in self.messages_in(channel) if fragment in m.text), None)

        await eventually(lambda: found() is not None, timeout=WAIT, what=f"{fragment!r}")
        message = found()
        assert message is not None
        return message

    # --- the store ----------------------------------------------------------------------

    async def incident(self, incident_id: int) -> Incident:
        """The incident as stored."""
        return await self.bot.app.services.incidents.get(incident_id)

    async def timeline(self, incident_id: int) -> list[tuple[str, str, str]]:
        """(kind, actor, text) of every timeline entry, oldest first; references as Slack's
        tokens."""
        events = await self.bot.app.services.incidents.timeline(incident_id)
        return [(e.kind, e.actor, with_tokens(e.rich)) for e in events]

    async def wait_for_event(self, incident_id: int, kind: str) -> None:
        """Wait until the timeline has an entry of `kind`."""

        async def present() -> bool:
            return any(k == kind for k, _, _ in await self.timeline(incident_id))

        await eventually(present, timeout=WAIT, what=f"a {kind!r} timeline entry")

    # --- set-up -------------------------------------------------------------------------

    async def declare(self, title: str, severity: str = "sev2", *, user: str = ALICE) -> Opened:
        """`/incident declare`, then wait for the channel, the pinned card and the announcement."""
        body = await self.command(f"declare {title} {severity}", user=user)
        text = body["text"]
        assert text.startswith("Declared incident #"), text
        incident_id = int(text.removeprefix("Declared incident #").split(" ")[0])
        return await self.wait_until_open(incident_id)

    async def wait_until_open(self, incident_id: int) -> Opened:
        """Wait until the incident's channel has its pinned card and the announcement is out."""

        async def ready() -> bool:
            try:
                incident = await self.incident(incident_id)
            except NotFound:  # a form submission is acknowledged before the incident exists
                return False
            pinned = any(
                c.params.get("channel") == incident.channel_id
                and c.params.get("timestamp") == incident.card_ts
                for c in self.emulator.calls_to("pins.add")
            )
            kinds = {k for k, _, _ in await self.timeline(incident_id)}
            return pinned and "announced" in kinds

        await eventually(ready, timeout=WAIT, what=f"incident #{incident_id} to be set up")
        incident = await self.incident(incident_id)
        assert incident.channel_id is not None and incident.card_ts is not None
        created = [
            c.response["channel"]["id"]
            for c in self.emulator.calls_to("conversations.create")
            if c.response.get("ok") and c.response["channel"]["name"].startswith("inc-")
        ]
        assert incident.channel_id in created
        return Opened(incident_id, incident.channel_id, incident.card_ts)


def shown(text: str) -> str:
    """mrkdwn as Slack displays it: `&amp;`, `&lt;`, `&gt;` shown as the characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def card_fields(blocks: list[dict[str, Any]]) -> dict[str, str]:
    """The `*Title*\\nvalue` fields of the card's first section."""
    section = next(b for b in blocks if b["type"] == "section" and b.get("fields"))
    fields = {}
    for field in section["fields"]:
        title, _, value = field["text"].partition("\n")
        fields[title.strip("*")] = value
    return fields


def card_header(blocks: list[dict[str, Any]]) -> str:
    """The header text of the card."""
    return str(next(b for b in blocks if b["type"] == "header")["text"]["text"])


def card_text(blocks: list[dict[str, Any]]) -> str:
    """Everything the card says, for `in` checks."""
    return json.dumps(blocks)


def _fast_outbox(settings: Settings) -> None:
    # Slack's one-post-per-second-per-channel pacing is tested elsewhere; here it only slows
    # down the notes every command posts into the same channel.
    settings.outbox.per_channel_per_second = 50.0


Launch = Callable[..., Awaitable[Workspace]]


@pytest.fixture
async def launch(database_url: str) -> AsyncIterator[Launch]:
    """Start a bot (optionally with `tweak`ed settings) and an emulator with three people."""
    async with AsyncExitStack() as stack:

        async def start(tweak: Tweak | None = None, **env: str) -> Workspace:
            def adjust(settings: Settings) -> None:
                _fast_outbox(settings)
                if tweak is not None:
                    tweak(settings)

            emulator, url = await stack.enter_async_context(running_emulator())
            emulator.add_user(ALICE, "alice", real_name="Alice")
            emulator.add_user(BOB, "bob", real_name="Bob")
            emulator.add_user(CAROL, "carol", real_name="Carol")
            bot = await stack.enter_async_context(
                running_bot(database_url, emulator, url, tweak=adjust, **env)
            )
            return Workspace(bot)

        yield start


@pytest.fixture
async def ws(launch: Launch) -> Workspace:
    """A bot with default settings."""
    return await launch()
