"""The sandbox page's Block Kit and mrkdwn rendering: faithful, and safe with any text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.domain.incidents import Incident, IncidentStatus, Severity
from bot.domain.views import IncidentView
from bot.sandbox.blocks import blocks
from bot.sandbox.mrkdwn import EMOJI, UNKNOWN_EMOJI, to_html
from bot.slack.render import render_incident_card
from tests.builders import utc


def names(ref: str) -> str:
    return {"U1": "Ada", "C1": "inc-1"}.get(ref, ref)


def files(file_id: str) -> str:
    return f"/sandbox/api/files/{file_id}"


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*bold* _it_ ~gone~", "<b>bold</b> <i>it</i> <s>gone</s>"),
        ("a*b*c and snake_case_name", "a*b*c and snake_case_name"),
        ("`*not bold*`", "<code>*not bold*</code>"),
        ("<@U1> in <#C1>", '<span class="mention">@Ada</span> in <a class="channel-link"'),
        (
            "<https://x.test/a?b=1&amp;c=2|the &lt;runbook&gt;>",
            'href="https://x.test/a?b=1&amp;c=2"',
        ),
        ("<!date^1700000000^{date}|2023-11-14>", "2023-11-14"),
        (":rotating_light: SEV1", "🚨 SEV1"),
        ("line\nnext", "line<br>next"),
    ],
)
def test_mrkdwn_renders_slack_markup(text: str, html: str) -> None:
    assert html in to_html(text, names)


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "&lt;img src=x onerror=alert(1)&gt;",
        "<javascript:alert(1)|click>",
        '<https://x.test/" onmouseover="alert(1)|x>',
        "```<b onclick=x>```",
        "*<svg onload=alert(1)>*",
    ],
)
def test_mrkdwn_never_lets_markup_through(text: str) -> None:
    out = to_html(text, names)
    assert "<script" not in out and "<img" not in out and "<svg" not in out
    assert "javascript:" not in out.split("href=")[-1] if "href=" in out else True
    assert ' onmouseover="' not in out and "<b onclick" not in out


def test_incident_card_renders_header_fields_buttons_and_confirm() -> None:
    card = render_incident_card(make_view())
    out = blocks(card, names, files)
    assert 'class="bk-header"' in out and "🔴" in out
    assert out.count('class="bk-field"') == 4
    for label in ("Acknowledge", "Escalate", "Resolve", "Silence 1h", "Run diagnostics"):
        assert f">{label}</button>" in out
    assert 'class="bk-button primary"' in out and 'class="bk-button danger"' in out
    assert 'data-action-id="incident_resolve"' in out
    confirm = out.split('data-action-id="incident_resolve"')[1].split('data-confirm="')[1]
    dialog = json.loads(confirm.split('"')[0].replace("&quot;", '"'))
    assert dialog == {
        "title": "Resolve the incident?",
        "text": "Everyone in the channel will see it resolved.",
        "confirm": "Resolve",
        "deny": "Cancel",
    }
    assert 'class="bk-context"' in out


def test_divider_image_context_and_unknown_blocks() -> None:
    out = blocks(
        [
            {"type": "divider"},
            {"type": "image", "image_url": "https://x.test/g.png", "alt_text": 'a "graph"'},
            {
                "type": "image",
                "slack_file": {"id": "F1"},
                "alt_text": "g",
                "title": {"type": "plain_text", "text": "p95 <latency>"},
            },
            {"type": "image", "image_url": "javascript:alert(1)", "alt_text": "x"},
            {"type": "context", "elements": [{"type": "plain_text", "text": "<b>"}]},
            {"type": "rich_text", "elements": []},
        ],
        names,
        files,
    )
    assert '<hr class="bk-divider">' in out
    assert 'src="https://x.test/g.png" alt="a &quot;graph&quot;"' in out
    assert 'src="/sandbox/api/files/F1"' in out and "p95 &lt;latency&gt;" in out
    assert "javascript:" not in out
    assert "<span>&lt;b&gt;</span>" in out
    assert "[rich_text block]" in out


def test_modal_inputs_render_as_form_fields() -> None:
    from commands.incident import declare_modal

    out = blocks(declare_modal()["blocks"], names, files)
    assert '<input name="title/value" data-type="plain_text_input" maxlength="200"' in out
    assert '<select name="severity/value" data-type="static_select">' in out
    assert '<option value="sev3" selected>' in out


def make_view() -> IncidentView:
    incident = Incident(
        id=7,
        key="k",
        title="5xx above 5%",
        severity=Severity("sev2"),
        status=IncidentStatus.TRIGGERED,
        opened_at=utc("2026-11-26T10:00:00Z"),
        runbook="https://runbooks.example.com/x",
    )
    return IncidentView(
        incident=incident,
        slug_source="HighErrorRate",
        labels={},
        external_url="",
        alerts=[],
        alerts_resolved_at=None,
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # docs.slack.dev "Formatting text for app surfaces": _italic_; &, <, > are control
        # characters, and only &amp; &lt; &gt; are decoded: no HTML tag ever takes effect.
        ("_italic_ and _two words_", "<i>italic</i> and <i>two words</i>"),
        ("*_both_*", "<b><i>both</i></b>"),
        ("&lt;b&gt;not bold&lt;/b&gt;", "&lt;b&gt;not bold&lt;/b&gt;"),
        ("<b>not bold</b>", "&lt;b&gt;not bold&lt;/b&gt;"),
        ("<javascript:alert(1)>", "&lt;javascript:alert(1)&gt;"),
        (":mega: *Update*", "📣 <b>Update</b>"),
        ("at 10:30:45 on host:port:1", "at 10:30:45 on host:port:1"),
    ],
)
def test_mrkdwn_renders_as_slack_shows_it(text: str, shown: str) -> None:
    assert to_html(text) == shown


def test_an_emoji_code_unknown_here_shows_a_glyph_named_by_its_code() -> None:
    shown = to_html(":woman_juggling: again")
    assert ":woman_juggling:" not in shown.replace('title=":woman_juggling:"', "")
    assert shown == (
        f'<span class="emoji unknown" title=":woman_juggling:">{UNKNOWN_EMOJI}</span> again'
    )


def test_every_emoji_code_tocsin_writes_is_known() -> None:
    root = Path(__file__).resolve().parents[2]
    sources = [*root.glob("bot/**/*.py"), *root.glob("commands/*.py")]
    written = set()
    for source in sources:
        if "sandbox" in source.parts or "emulator" in source.parts:
            continue
        written |= set(re.findall(r"(?<![\w:]):([a-z][a-z_]+):(?![\w:])", source.read_text()))
    assert written - set(EMOJI) <= {"memory"}  # SQLite's ":memory:" database
