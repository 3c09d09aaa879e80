"""What the page sends, read and checked: JSON bodies, texts, people, buttons, modal inputs."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from bot.slack.emulator.state import EmulatorState

MAX_TEXT = 4000
_HANDLE = re.compile(r"(?<![\w<@|])@([a-z0-9][a-z0-9_-]*)", re.IGNORECASE)


class BadInput(Exception):
    """A request the sandbox cannot act on; the text says why."""


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    """A string of the body, not too long (and not blank when required)."""
    value = body.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadInput(f"`{name}` must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise BadInput(f"`{name}` is longer than {MAX_TEXT} characters")
    return value


def find_button(blocks: list[Any], block_id: str, action_id: str) -> dict[str, Any] | None:
    """The button a click names, if the message has it."""
    for block in blocks:
        if not isinstance(block, dict) or block.get("block_id") != block_id:
            continue
        for el in [*block.get("elements", []), block.get("accessory")]:
            if isinstance(el, dict) and el.get("action_id") == action_id:
                return el
    return None


def view_values(blocks: list[Any], raw: dict[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Input values in the shape of view.state.values, typed by each input's element."""
    values: dict[str, dict[str, dict[str, Any]]] = {}
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") != "input":
            continue
        el = block.get("element") or {}
        block_id, action_id = str(block.get("block_id", "")), str(el.get("action_id", ""))
        given = raw.get(f"{block_id}/{action_id}")
        if el.get("type") == "static_select":
            options = [o for o in el.get("options", []) if isinstance(o, dict)]
            chosen = next((o for o in options if o.get("value") == given), None)
            entry: dict[str, Any] = {"type": "static_select", "selected_option": chosen}
        else:
            entry = {"type": str(el.get("type", "plain_text_input")), "value": given}
        values.setdefault(block_id, {})[action_id] = entry
    return values


def is_person(state: EmulatorState, user_id: object) -> bool:
    """A human member of the workspace (not the bot, not deactivated)."""
    user = state.users.get(user_id) if isinstance(user_id, str) else None
    return user is not None and not user.is_bot and not user.deleted


def person(state: EmulatorState, given: object, default: str) -> str:
    """Whom the page acts as: `given` when it names a person of the workspace, else `default`."""
    if given in (None, ""):
        return default
    if not is_person(state, given):
        raise BadInput(f"no person {given!r} in the sandbox")
    return str(given)


def typed_mentions(text: str, state: EmulatorState) -> str:
    """`@ada` as the Slack client sends a person picked from its list: `<@U…|ada>`."""
    by_handle = {u.name.lower(): u for u in state.users.values() if is_person(state, u.id)}

    def token(match: re.Match[str]) -> str:
        user = by_handle.get(match.group(1).lower())
        return f"<@{user.id}|{user.name}>" if user is not None else match.group(0)

    return _HANDLE.sub(token, text)
