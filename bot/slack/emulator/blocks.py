"""Block Kit validation (limits of contracts 1.8) and Slack's block_id/action_id filling."""

from __future__ import annotations

import copy
import secrets
import string
from collections.abc import Callable
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_ID = 255
TEXT_TYPES = ("plain_text", "mrkdwn")
SELECT_TYPES = (
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
)
OPTION_TYPES = ("overflow", "radio_buttons", "checkboxes")
OTHER_ELEMENTS = (
    "image",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "rich_text_input",
    "file_input",
    "workflow_button",
)
ELEMENT_TYPES = frozenset(("button", *SELECT_TYPES, *OPTION_TYPES, *OTHER_ELEMENTS))
_ID_CHARS = string.ascii_letters + string.digits

Errors = list[str]


def _err(errors: Errors, ptr: str, what: str) -> None:
    errors.append(f"[ERROR] {what} [json-pointer:{ptr}]")


def _max_len(errors: Errors, obj: dict[str, Any], key: str, limit: int, ptr: str) -> None:
    value = obj.get(key)
    if value is None:
        return
    if not isinstance(value, str):
        _err(errors, f"{ptr}/{key}", "must be a string")
    elif len(value) > limit:
        _err(errors, f"{ptr}/{key}", f"must be less than {limit + 1} characters")


def _text(errors: Errors, obj: Any, ptr: str, limit: int, *, plain: bool = False) -> None:
    allowed = ("plain_text",) if plain else TEXT_TYPES
    if not isinstance(obj, dict) or obj.get("type") not in allowed:
        _err(errors, ptr, f"must be a text object of type {' or '.join(allowed)}")
    elif not isinstance(obj.get("text"), str):
        _err(errors, f"{ptr}/text", "must be a string")
    else:
        _max_len(errors, obj, "text", limit, ptr)


def _opt_text(errors: Errors, obj: dict[str, Any], key: str, limit: int, ptr: str) -> None:
    if key in obj:
        _text(errors, obj[key], f"{ptr}/{key}", limit, plain=True)


def _confirm(errors: Errors, obj: Any, ptr: str) -> None:
    if not isinstance(obj, dict):
        _err(errors, ptr, "must be an object")
        return
    _text(errors, obj.get("title"), f"{ptr}/title", 100, plain=True)
    _text(errors, obj.get("text"), f"{ptr}/text", 300)
    _text(errors, obj.get("confirm"), f"{ptr}/confirm", 30, plain=True)
    _text(errors, obj.get("deny"), f"{ptr}/deny", 30, plain=True)


def _options(errors: Errors, options: Any, ptr: str) -> None:
    if not isinstance(options, list):
        _err(errors, ptr, "must be an array")
        return
    for i, opt in enumerate(options):
        if not isinstance(opt, dict):
            _err(errors, f"{ptr}/{i}", "must be an object")
            continue
        _text(errors, opt.get("text"), f"{ptr}/{i}/text", 75)
        _max_len(errors, opt, "value", 150, f"{ptr}/{i}")


def _element(errors: Errors, el: Any, ptr: str) -> None:
    if not isinstance(el, dict) or el.get("type") not in ELEMENT_TYPES:
        _err(errors, ptr, "must be a valid element")
        return
    _max_len(errors, el, "action_id", MAX_ID, ptr)
    if el["type"] == "button":
        _text(errors, el.get("text"), f"{ptr}/text", 75, plain=True)
        _max_len(errors, el, "value", 2000, ptr)
        _max_len(errors, el, "url", 3000, ptr)
    _opt_text(errors, el, "placeholder", 150, ptr)
    if "options" in el:
        _options(errors, el["options"], f"{ptr}/options")
    if "confirm" in el:
        _confirm(errors, el["confirm"], f"{ptr}/confirm")


def _elements(errors: Errors, block: dict[str, Any], ptr: str, limit: int) -> list[Any]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        _err(errors, f"{ptr}/elements", "must be a non-empty array")
        return []
    if len(elements) > limit:
        _err(errors, f"{ptr}/elements", f"no more than {limit} items allowed")
    return elements


def _section(errors: Errors, block: dict[str, Any], ptr: str) -> None:
    if "text" not in block and "fields" not in block:
        _err(errors, ptr, "must provide either text or fields")
    if "text" in block:
        _text(errors, block["text"], f"{ptr}/text", 3000)
    fields = block.get("fields")
    if fields is not None:
        if not isinstance(fields, list) or len(fields) > 10:
            _err(errors, f"{ptr}/fields", "must be an array of no more than 10 items")
        else:
            for i, f in enumerate(fields):
                _text(errors, f, f"{ptr}/fields/{i}", 2000)
    if "accessory" in block:
        _element(errors, block["accessory"], f"{ptr}/accessory")


def _header(errors: Errors, block: dict[str, Any], ptr: str) -> None:
    _text(errors, block.get("text"), f"{ptr}/text", 150, plain=True)


def _actions(errors: Errors, block: dict[str, Any], ptr: str) -> None:
    for i, el in enumerate(_elements(errors, block, ptr, 25)):
        _element(errors, el, f"{ptr}/elements/{i}")


def _context(errors: Errors, block: dict[str, Any], ptr: str) -> None:
    for i, el in enumerate(_elements(errors, block, ptr, 10)):
        if not (isinstance(el, dict) and el.get("type") == "image"):
            _text(errors, el, f"{ptr}/elements/{i}", 3000)


def _input(errors: Errors, block: dict[str, Any], ptr: str) -> None:
    _text(errors, block.get("label"), f"{ptr}/label", 2000, plain=True)
    _element(errors, block.get("element"), f"{ptr}/element")


def _no_checks(errors: Errors, block: dict[str, Any], ptr: str) -> None:
    return None


BlockCheck = Callable[[Errors, dict[str, Any], str], None]
BLOCK_CHECKS: dict[str, BlockCheck] = {
    "section": _section,
    "header": _header,
    "actions": _actions,
    "context": _context,
    "input": _input,
    "divider": _no_checks,
    "image": _no_checks,
    "file": _no_checks,
    "rich_text": _no_checks,
    "video": _no_checks,
    "markdown": _no_checks,
}


def validate_blocks(
    blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS, ptr: str = "/blocks"
) -> Errors:
    """Return Slack-style error messages for a blocks array (empty list = valid)."""
    errors: Errors = []
    if not isinstance(blocks, list):
        _err(errors, ptr, "must be an array")
        return errors
    if len(blocks) > max_blocks:
        _err(errors, ptr, f"no more than {max_blocks} items allowed")
    for i, block in enumerate(blocks):
        check = BLOCK_CHECKS.get(block.get("type", "")) if isinstance(block, dict) else None
        if check is None or not isinstance(block, dict):
            _err(errors, f"{ptr}/{i}", "unsupported type")
            continue
        _max_len(errors, block, "block_id", MAX_ID, f"{ptr}/{i}")
        check(errors, block, f"{ptr}/{i}")
    return errors


def validate_view(view: Any) -> Errors:
    """Return error messages for a modal or home-tab view (empty list = valid)."""
    errors: Errors = []
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        _err(errors, "/view/type", "must be modal or home")
        return errors
    if view["type"] == "modal":
        _text(errors, view.get("title"), "/view/title", 24, plain=True)
        _opt_text(errors, view, "submit", 24, "/view")
        _opt_text(errors, view, "close", 24, "/view")
    _max_len(errors, view, "private_metadata", 3000, "/view")
    _max_len(errors, view, "callback_id", MAX_ID, "/view")
    errors += validate_blocks(
        view.get("blocks", []), max_blocks=MAX_VIEW_BLOCKS, ptr="/view/blocks"
    )
    return errors


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(length))


def _fill_element(el: Any) -> None:
    if isinstance(el, dict) and el.get("type") in ELEMENT_TYPES and el.get("type") != "image":
        el.setdefault("action_id", _random_id(5))


def fill_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return a copy where blocks lack no block_id and elements no action_id, as Slack does."""
    filled = copy.deepcopy(blocks)
    for block in filled:
        block.setdefault("block_id", _random_id(4))
        for el in block.get("elements", []) if block.get("type") == "actions" else []:
            _fill_element(el)
        _fill_element(block.get("accessory"))
        _fill_element(block.get("element"))
    return filled
