"""Block Kit to HTML for the sandbox page: header, section, fields, context, divider, image,
actions (buttons with confirm dialogs) and the input blocks of modals. Text is always escaped."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

from bot.sandbox.mrkdwn import Names, plain, to_html

FileUrl = Callable[[str], str]


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


def text_object(obj: Any, names: Names) -> str:
    """A text object (plain_text or mrkdwn) as HTML; anything else as nothing."""
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return ""
    if obj.get("type") == "mrkdwn":
        return to_html(obj["text"], names)
    return plain(obj["text"])


def _image_src(el: dict[str, Any], file_url: FileUrl) -> str:
    slack_file = el.get("slack_file")
    if isinstance(slack_file, dict):
        if isinstance(slack_file.get("id"), str):
            return file_url(slack_file["id"])
        return str(slack_file.get("url", ""))
    return str(el.get("image_url", ""))


def _image(el: dict[str, Any], file_url: FileUrl, css: str) -> str:
    src = _image_src(el, file_url)
    if not src.startswith(("http://", "https://", "/")):
        return f'<span class="{css} missing">[image]</span>'
    alt = _attr(el.get("alt_text", ""))
    return f'<img class="{css}" src="{_attr(src)}" alt="{alt}" loading="lazy">'


def _confirm(el: dict[str, Any], names: Names) -> str:
    confirm = el.get("confirm")
    if not isinstance(confirm, dict):
        return ""
    dialog = {
        "title": text_object(confirm.get("title"), names),
        "text": text_object(confirm.get("text"), names),
        "confirm": text_object(confirm.get("confirm"), names) or "Yes",
        "deny": text_object(confirm.get("deny"), names) or "Cancel",
    }
    return f' data-confirm="{_attr(json.dumps(dialog))}"'


def element(el: Any, block_id: str, names: Names, file_url: FileUrl) -> str:
    """An interactive (or image) element."""
    if not isinstance(el, dict):
        return ""
    kind = el.get("type")
    if kind == "image":
        return _image(el, file_url, "bk-thumb")
    if kind == "button":
        style = el.get("style") if el.get("style") in ("primary", "danger") else ""
        url = el.get("url")
        link = f' data-url="{_attr(url)}"' if isinstance(url, str) else ""
        return (
            f'<button type="button" class="bk-button {style}" '
            f'data-action-id="{_attr(el.get("action_id", ""))}" '
            f'data-block-id="{_attr(block_id)}" data-value="{_attr(el.get("value", ""))}"'
            f"{_confirm(el, names)}{link}>{text_object(el.get('text'), names)}</button>"
        )
    return f'<span class="bk-unsupported">[{_attr(kind)}]</span>'


def _select(name: str, el: dict[str, Any], names: Names) -> str:
    initial = (el.get("initial_option") or {}).get("value")
    options = "".join(
        f'<option value="{_attr(o.get("value", ""))}"'
        f"{' selected' if o.get('value') == initial else ''}>"
        f"{text_object(o.get('text'), names)}</option>"
        for o in el.get("options", [])
        if isinstance(o, dict)
    )
    return f'<select name="{_attr(name)}" data-type="static_select">{options}</select>'


def _text_input(name: str, el: dict[str, Any]) -> str:
    initial = _attr(el.get("initial_value", ""))
    limit = el.get("max_length")
    attrs = f'name="{_attr(name)}" data-type="plain_text_input"'
    if isinstance(limit, int):
        attrs += f' maxlength="{limit}"'
    if el.get("multiline"):
        return f"<textarea {attrs}>{initial}</textarea>"
    return f'<input {attrs} value="{initial}">'


def _input(block: dict[str, Any], names: Names) -> str:
    el = block.get("element")
    el = el if isinstance(el, dict) else {}
    name = f"{block.get('block_id', '')}/{el.get('action_id', '')}"
    if el.get("type") == "static_select":
        field = _select(name, el, names)
    elif el.get("type") == "plain_text_input":
        field = _text_input(name, el)
    else:
        field = f'<span class="bk-unsupported">[{_attr(el.get("type"))}]</span>'
    label = f"<label>{text_object(block.get('label'), names)}</label>"
    return (
        f'<div class="bk-input" data-block-id="{_attr(block.get("block_id", ""))}">'
        f'{label}{field}<div class="bk-error"></div></div>'
    )


def block(b: Any, names: Names, file_url: FileUrl) -> str:
    """One block as HTML."""
    if not isinstance(b, dict):
        return ""
    kind = b.get("type")
    block_id = str(b.get("block_id", ""))
    if kind == "header":
        return f'<div class="bk-header">{text_object(b.get("text"), names)}</div>'
    if kind == "divider":
        return '<hr class="bk-divider">'
    if kind == "section":
        text = text_object(b.get("text"), names)
        fields = "".join(
            f'<div class="bk-field">{text_object(f, names)}</div>' for f in b.get("fields", [])
        )
        body = f'<div class="bk-text">{text}</div>' if text else ""
        if fields:
            body += f'<div class="bk-fields">{fields}</div>'
        accessory = element(b.get("accessory"), block_id, names, file_url)
        return f'<div class="bk-section"><div class="bk-main">{body}</div>{accessory}</div>'
    if kind == "context":
        parts = [
            _image(e, file_url, "bk-context-img")
            if isinstance(e, dict) and e.get("type") == "image"
            else f"<span>{text_object(e, names)}</span>"
            for e in b.get("elements", [])
        ]
        return f'<div class="bk-context">{"".join(parts)}</div>'
    if kind == "image":
        title = text_object(b.get("title"), names)
        caption = f"<figcaption>{title}</figcaption>" if title else ""
        return f'<figure class="bk-image">{caption}{_image(b, file_url, "bk-img")}</figure>'
    if kind == "actions":
        buttons = "".join(element(e, block_id, names, file_url) for e in b.get("elements", []))
        return f'<div class="bk-actions">{buttons}</div>'
    if kind == "input":
        return _input(b, names)
    return f'<div class="bk-unsupported">[{_attr(kind)} block]</div>'


def blocks(items: Any, names: Names, file_url: FileUrl) -> str:
    """A list of blocks as HTML."""
    if not isinstance(items, list):
        return ""
    return "".join(block(b, names, file_url) for b in items)
