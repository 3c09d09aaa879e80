"""A channel named in config (`#alerts`), turned into its ID once at start.

Slack's methods take a conversation ID for their channel argument; only chat.postMessage also
takes a name (REF). A name in tocsin.yml is looked up with conversations.list before Tocsin
serves, so every later call has the ID, and a name that matches nothing stops the start with
a line that says so.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError

ListPage = Callable[[str], Awaitable[dict[str, Any]]]
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{6,}")
PAGE = 200  # conversations.list: `limit` must be under 1000 (REF)
MAX_PAGES = 200
TRIES = 4


def is_channel_id(ref: str) -> bool:
    """True for a conversation ID (C… or G…), not a name."""
    return CHANNEL_ID.fullmatch(ref) is not None


async def resolve_channel(client: AsyncWebClient, ref: str, *, setting: str) -> str:
    """The ID of the channel `ref` names (`#name`, `name` or already an ID)."""
    if is_channel_id(ref):
        return ref
    name = ref.removeprefix("#")
    for attempt in range(TRIES):
        try:
            found = await _find(client, name)
        except SlackApiError as exc:
            code = exc.response.get("error") or f"HTTP {exc.response.status_code}"
            if exc.response.status_code < 500 and exc.response.status_code != 429:
                problem = f"Slack refused to list channels: {code}"
                raise ConfigError(f"{setting} {ref}: {problem}") from None
            problem = str(code)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            problem = type(exc).__name__
        else:
            if found is None:
                raise ConfigError(
                    f"{setting} {ref}: no channel of that name that Tocsin can see "
                    "(invite the bot to a private channel, or give the channel's ID, C…)"
                )
            return found
        await asyncio.sleep(2.0 * (attempt + 1))
    raise ConfigError(
        f"{setting} {ref}: could not reach Slack to look the name up ({problem}); "
        "give the channel's ID (C…) to start without looking it up"
    )


async def find_channel(
    list_page: ListPage, name: str, *, max_pages: int = MAX_PAGES
) -> dict[str, Any] | None:
    """The channel called `name`, paging through conversations.list (`list_page(cursor)`
    answers one page, at most `max_pages` of them), or None."""
    cursor = ""
    for _ in range(max_pages):
        page = await list_page(cursor)
        for channel in page.get("channels") or []:
            if channel.get("name") == name:
                return dict(channel)
        cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
        if not cursor:
            return None
    return None


async def _find(client: AsyncWebClient, name: str) -> str | None:
    async def list_page(cursor: str) -> dict[str, Any]:
        params = {
            "types": "public_channel,private_channel",
            "exclude_archived": "true",
            "limit": PAGE,
            "cursor": cursor,
        }
        data = (await client.api_call("conversations.list", params=params)).data
        return data if isinstance(data, dict) else {}

    found = await find_channel(list_page, name)
    return str(found["id"]) if found is not None else None
