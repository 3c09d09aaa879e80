"""Request parsing and typed argument access for the Slack emulator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.slack.emulator.render import Renderer
from bot.slack.emulator.state import EmulatorState

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TRUE_VALUES = ("1", "true", "True", "TRUE")


class SlackError(Exception):
    """An API error answered as `{"ok": false, "error": code}`."""

    def __init__(
        self,
        code: str,
        *,
        status: int = 200,
        messages: list[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.messages = messages or []
        self.extra = extra or {}  # more fields of the answer (conversations.invite's `errors`)

    def body(self) -> dict[str, Any]:
        """Return the JSON body Slack sends for this error."""
        body: dict[str, Any] = {"ok": False, "error": self.code, **self.extra}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


def missing(name: str) -> SlackError:
    """Return Slack's error for a missing required argument."""
    return SlackError("invalid_arguments", messages=[f"[ERROR] missing required field: {name}"])


@dataclass
class Ctx:
    """What a method handler needs: the state, the clocks and a renderer."""

    state: EmulatorState
    now: float
    wall: float
    base_url: str

    @property
    def render(self) -> Renderer:
        """Return a renderer bound to this request."""
        return Renderer(self.state, self.base_url)


class Params:
    """Typed access to merged query, form and JSON arguments."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get_str(self, key: str) -> str | None:
        """Return an argument as a string (None when absent)."""
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value)

    def require(self, key: str) -> str:
        """Return a non-empty string argument or raise invalid_arguments."""
        value = self.get_str(key)
        if not value:
            raise missing(key)
        return value

    def get_bool(self, key: str, default: bool = False) -> bool:
        """Return a boolean argument ("1"/"true"/true)."""
        value = self.data.get(key)
        if value is None:
            return default
        return value is True or value in TRUE_VALUES

    def get_int(self, key: str, default: int) -> int:
        """Return an integer argument or raise invalid_arguments."""
        value = self.data.get(key)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            msg = f"[ERROR] invalid value for field: {key}"
            raise SlackError("invalid_arguments", messages=[msg]) from None

    def get_json(self, key: str, error: str) -> Any:
        """Return a JSON argument given as a string or as an object; `error` if unparsable."""
        value = self.data.get(key)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(error) from None


async def read_params(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Merge query, form and JSON arguments; return them with the token (header or param)."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            params.update(await _json_body(request))
        elif request.content_type in FORM_TYPES:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    token = params.pop("token", None)
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        token = auth.removeprefix("Bearer ").strip()
    return params, token if isinstance(token, str) else None


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise SlackError("invalid_json") from None
    if not isinstance(body, dict):
        raise SlackError("invalid_json")
    body.pop("token", None)  # Slack ignores tokens inside JSON bodies
    return body
