"""Where Tocsin talks to Slack: a real workspace, or the sandbox's emulator (with its people and
its #alerts)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.errors import ConfigError
from bot.sandbox.people import SANDBOX_USER, add_people
from bot.slack.channels import resolve_channel
from bot.slack.emulator import SlackEmulator

SANDBOX_PATH = "/sandbox/api/"
SANDBOX_ALERTS = "alerts"


@dataclass
class SlackTarget:
    """Where and how Tocsin talks to Slack: a real workspace or the sandbox emulator."""

    api_url: str
    token: str
    signing_secret: str
    emulator: SlackEmulator | None = None


def slack_target(settings: Settings, *, public_url: str) -> SlackTarget:
    """The real workspace when a token is set, else the built-in sandbox emulator."""
    if settings.slack_bot_token is not None and settings.slack_signing_secret is not None:
        return SlackTarget(
            api_url=settings.slack_api_url,
            token=settings.slack_bot_token.get_secret_value(),
            signing_secret=settings.slack_signing_secret.get_secret_value(),
        )
    signing_secret = secrets.token_hex(16)
    emulator = SlackEmulator(signing_secret=signing_secret)
    add_people(emulator)
    return SlackTarget(
        api_url=public_url.rstrip("/") + SANDBOX_PATH,
        token=emulator.bot_token,
        signing_secret=signing_secret,
        emulator=emulator,
    )


def group_members(client: AsyncWebClient) -> Any:
    async def members(group: str) -> list[str]:
        response = await client.api_call("usergroups.users.list", params={"usergroup": group})
        users: list[Any] = response.get("users", [])
        return [str(u) for u in users]

    return members


async def find_alerts_channel(
    settings: Settings, target: SlackTarget, client: AsyncWebClient
) -> str | None:
    """The alerts channel's ID: looked up once if the config names it (`#alerts`); in the
    sandbox, its #alerts channel (made the first time, as a person would)."""
    ref = settings.alerts_channel
    emulator = target.emulator
    if emulator is None:
        return await resolve_channel(client, ref, setting="alerts_channel") if ref else None
    found = emulator.state.channel(ref or SANDBOX_ALERTS)
    if found is not None:
        return found.id
    if ref and ref.removeprefix("#") != SANDBOX_ALERTS:
        raise ConfigError(f"alerts_channel {ref}: no such channel in the sandbox")
    return emulator.add_channel(SANDBOX_ALERTS, members=[SANDBOX_USER, emulator.bot_user_id])
