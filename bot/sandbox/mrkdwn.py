"""Slack mrkdwn to safe HTML: every character of the text is escaped before markup is added.

As Slack shows it (docs.slack.dev "Formatting text for app surfaces"): `*bold*`, `_italic_`,
`~strike~`, code; `&lt;` `&gt;` `&amp;` are the only entities decoded, so `&lt;b&gt;` shows
`<b>`, never bold; a `<…>` that is neither a mention nor a link is shown as written. An emoji
code missing from EMOJI shows a neutral glyph named by its code (hover), never `:code:`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

EMOJI = {
    "red_circle": "🔴",
    "large_orange_circle": "🟠",
    "large_yellow_circle": "🟡",
    "large_green_circle": "🟢",
    "large_blue_circle": "🔵",
    "white_circle": "⚪",
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "warning": "⚠️",
    "rotating_light": "🚨",
    "grey_question": "❔",
    "mute": "🔇",
    "sound": "🔉",
    "bell": "🔔",
    "pager": "📟",
    "fire": "🔥",
    "pushpin": "📌",
    "mag": "🔍",
    "chart_with_upwards_trend": "📈",
    "hourglass_flowing_sand": "⏳",
    "arrow_up": "⬆️",
    "busts_in_silhouette": "👥",
    "bust_in_silhouette": "👤",
    "memo": "📝",
    "stopwatch": "⏱️",
    "tada": "🎉",
    "information_source": "ℹ️",
    "mega": "📣",
    "sos": "🆘",
    "no_entry": "⛔",
    "repeat": "🔁",
    "hourglass": "⌛",
    "card_file_box": "🗃️",
    "memo_pad": "📝",
    "eyes": "👀",
    "thumbsup": "👍",
    "+1": "👍",
    "wave": "👋",
    "siren": "🚨",
    "test_tube": "🧪",
    "lock": "🔒",
    "link": "🔗",
    "clipboard": "📋",
    "calendar": "📅",
    "zap": "⚡",
    "boom": "💥",
    "bulb": "💡",
}
UNKNOWN_EMOJI = "◻️"
_CONTROL = re.compile(r"<([^<>\n]*)>")
_CODE_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)
_CODE = re.compile(r"`([^`\n]+)`")
_EMOJI = re.compile(r"(?<![\w:]):([a-z0-9_+-]*[a-z][a-z0-9_+-]*):(?![\w:])")
_SAFE_URL = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
_STYLES = [
    (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])"), "b"),
    (re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])"), "i"),
    (re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])"), "s"),
]
Names = Callable[[str], str]


def _slack_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _raw(text: str) -> str:
    return html.escape(_slack_unescape(text))


def _glyph(match: re.Match[str]) -> str:
    name = match.group(1)
    known = EMOJI.get(name)
    if known is not None:
        return known
    return f'<span class="emoji unknown" title=":{name}:">{UNKNOWN_EMOJI}</span>'


def emoji(text: str) -> str:
    """Replace :name: codes with their characters (a neutral glyph for codes not known here);
    a code glued to a word or a colon (`10:30:45`, `host:port:1`) is text."""
    return _EMOJI.sub(_glyph, text)


def plain(text: str) -> str:
    """A plain_text object's text as HTML (escaped, emoji replaced)."""
    return emoji(html.escape(text))


def _control(inner: str, names: Names) -> str:
    target, _, label = inner.partition("|")
    label_html = html.escape(_slack_unescape(label))
    if target.startswith("@"):
        return f'<span class="mention">@{html.escape(names(target[1:]))}</span>'
    if target.startswith("#"):
        shown = label_html or html.escape(names(target[1:]))
        return f'<a class="channel-link" data-channel="{html.escape(target[1:])}">#{shown}</a>'
    if target.startswith("!subteam^"):
        return f'<span class="mention">{label_html or "@" + html.escape(target[9:])}</span>'
    if target.startswith("!date^"):
        return label_html or html.escape(target)
    if target.startswith("!"):
        return f'<span class="mention">@{html.escape(target[1:])}</span>'
    url = _slack_unescape(target)
    if not _SAFE_URL.match(url):
        return label_html or html.escape(f"<{url}>")
    href = html.escape(url, quote=True)
    text = label_html or html.escape(url)
    return f'<a href="{href}" target="_blank" rel="noopener noreferrer">{text}</a>'


def to_html(text: str, names: Names = lambda ref: ref) -> str:
    """Render mrkdwn (bold, italic, strike, code, links, mentions, emoji) as safe HTML."""
    saved: list[str] = []

    def keep(fragment: str) -> str:
        saved.append(fragment)
        return f"\x00{len(saved) - 1}\x00"

    text = text.replace("\x00", "")
    text = _CODE_BLOCK.sub(
        lambda m: keep(f"<pre>{html.escape(_slack_unescape(m.group(1)))}</pre>"), text
    )
    text = _CODE.sub(
        lambda m: keep(f"<code>{html.escape(_slack_unescape(m.group(1)))}</code>"), text
    )
    text = _CONTROL.sub(lambda m: keep(_control(m.group(1), names)), text)
    out = emoji(html.escape(_slack_unescape(text)))
    for pattern, tag in _STYLES:
        out = pattern.sub(f"<{tag}>\\1</{tag}>", out)
    out = out.replace("\n", "<br>")
    return re.sub(r"\x00(\d+)\x00", lambda m: saved[int(m.group(1))], out)
