"""Block Kit for incidents, built with slack_sdk.models.blocks, which checks Slack's limits."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.domain.alerts import AlertStatus
from bot.domain.drills import DRILL_MARK
from bot.domain.durations import lasted
from bot.domain.flapping import FlapHistory
from bot.domain.incidents import Incident, IncidentStatus
from bot.domain.text import RefKind, Rich, phrase, ref
from bot.domain.views import AlertLine, CopyKind, IncidentView
from bot.slack import ids
from bot.slack.render.storm import group_sections, storm_counts, storm_lines
from bot.slack.render.text import clip, escape

_STATUS_EMOJI = {
    IncidentStatus.TRIGGERED: ":red_circle:",
    IncidentStatus.ACKNOWLEDGED: ":large_orange_circle:",
    IncidentStatus.MITIGATED: ":large_yellow_circle:",
    IncidentStatus.RESOLVED: ":white_check_mark:",
}


# Slack's own tokens in text: mentions of users, channels and user groups, and links
# (`<https://…|label>`), as Slack sends them and as Tocsin writes them. `<!here>`,
# `<!channel>` and `<!everyone>` are not among them: text people give Tocsin to repost never
# notifies a whole channel, whoever the workspace lets do that.
_ENTITY = re.compile(
    r"<(?:@[UW][A-Z0-9]+|#C[A-Z0-9]+|!subteam\^S[A-Z0-9]+|(?:https?|mailto):[^<>|\s]+)"
    r"(?:\|[^<>]*)?>"
)


def mrkdwn(text: str) -> str:
    """Plain text (mentions and links kept as Slack's tokens) made into mrkdwn: every other
    `&`, `<` and `>` escaped, once."""
    parts: list[str] = []
    start = 0
    for token in _ENTITY.finditer(text):
        parts += [escape(text[start : token.start()]), token.group(0)]
        start = token.end()
    parts.append(escape(text[start:]))
    return "".join(parts)


_TOKEN = {
    RefKind.USER: "<@{target}>",
    RefKind.USERGROUP: "<!subteam^{target}>",
    RefKind.CHANNEL: "<#{target}>",
    RefKind.EVERYONE: "<!channel>",
}


def slack_text(text: Rich | str) -> str:
    """Text with references as Slack mrkdwn: each reference its token, the rest escaped. A plain
    string is taken as text with Slack's own tokens (`mrkdwn`)."""
    if not isinstance(text, Rich):
        return mrkdwn(text)
    parts = []
    for piece, span in text.spans():
        if span is None:
            parts.append(escape(piece))
        elif span.kind is RefKind.LINK:
            parts.append(f"<{span.target}|{escape(piece)}>")
        else:
            parts.append(_TOKEN[span.kind].format(target=span.target))
    return "".join(parts)


def from_slack(text: str) -> Rich:
    """Plain text with Slack's tokens (a slash command's text, once unescaped) as text with
    references: `<@U123|dana>` becomes "@dana" referring to U123."""
    pieces: list[Rich | str] = []
    start = 0
    for token in _ENTITY.finditer(text):
        pieces.append(text[start : token.start()])
        pieces.append(_reference(token.group(0)[1:-1]))
        start = token.end()
    pieces.append(text[start:])
    return phrase(*pieces)


def _reference(inner: str) -> Rich:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return ref(RefKind.USER, target[1:], f"@{label or target[1:]}")
    if target.startswith("#"):
        return ref(RefKind.CHANNEL, target[1:], f"#{label or target[1:]}")
    if target.startswith("!subteam^"):
        group = target.removeprefix("!subteam^")
        return ref(RefKind.USERGROUP, group, f"@{label or group}" if label[:1] != "@" else label)
    return ref(RefKind.LINK, target, label or target)


def unescape(text: str) -> str:
    """Text as Slack sends it (slash-command `text`: `&`, `<`, `>` escaped) made plain, once;
    mentions and links stay Slack's tokens."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def marked(incident: Incident, text: str) -> str:
    """`text` behind the drill mark when the incident is a drill, so nobody takes it for real."""
    return f"{DRILL_MARK} · {text}" if incident.drill else text


def card_text(view: IncidentView) -> str:
    """The notification fallback text of the card."""
    inc = view.incident
    return clip(
        marked(inc, f"[{inc.severity.value}] {escape(inc.title)} — {inc.status.value}"), 3000
    )


def render_incident_card(view: IncidentView) -> list[dict[str, Any]]:
    """The pinned alert card: what fires, the state, and the five buttons."""
    inc = view.incident
    storm = view.storm
    counts = (
        f"*Alerts*\n{_alert_counts(view)}"
        if storm is None
        else f"*Alert storm*\n{storm_counts(storm)}"
    )
    blocks: list[Block] = [
        HeaderBlock(text=clip(marked(inc, f"{_STATUS_EMOJI[inc.status]} {inc.title}"), 150)),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Status*\n{inc.status.value}{_who(view)}"),
                MarkdownTextObject(text=f"*Severity*\n{inc.severity.value}{_severity_why(view)}"),
                MarkdownTextObject(text=counts),
                _since(view),
            ]
        ),
        SectionBlock(
            text=MarkdownTextObject(
                text=_alert_lines(view) if storm is None else storm_lines(view, storm)
            )
        ),
    ]
    if storm is not None:
        blocks += [SectionBlock(text=MarkdownTextObject(text=t)) for t in group_sections(storm)]
    if state := _state_lines(view):
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(state, 3000))))
    if view.total and view.firing == 0:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=":white_check_mark: *All alerts resolved.*"))
        )
    blocks.append(_actions(view))
    context = f"Incident #{inc.id}"
    if inc.runbook:
        context += f" · <{inc.runbook}|Runbook>"
    elif view.total:  # from alerts: say what is missing, and where it would come from
        context += " · no runbook (set the rule's `runbook_url` or a playbook's `runbook`)"
    if inc.playbook:
        context += f" · playbook {escape(inc.playbook)}"
    if view.external_url:
        context += f" · <{view.external_url}|Alertmanager>"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(context, 3000))]))
    return [b.to_dict() for b in blocks]


DRILL_LINE = f"*{DRILL_MARK}*: a rehearsal, not an outage; nobody needs to act."
FLAPPING_MARK = "flapping"


def flapping_line(since: datetime, flaps: FlapHistory) -> str:
    """What a flapping card says: since when, how often, and its recent state changes."""
    times = "once" if flaps.refires == 1 else f"{flaps.refires} times"
    line = (
        f":warning: *Flapping* since {slack_date(since, '{time}')}: fired again {times}; "
        "a re-fire reopens it quietly (no page, no announcement)"
    )
    return line + (f"\n*State changes* (▲ fired, ▼ resolved): {flaps.strip}" if flaps.strip else "")


def _state_lines(view: IncidentView) -> str:
    inc = view.incident
    lines = [DRILL_LINE] if inc.drill else []
    if view.flaps is not None and inc.flapping_since is not None:
        lines.append(flapping_line(inc.flapping_since, view.flaps))
    if inc.status is IncidentStatus.RESOLVED and inc.resolved_at is not None:
        by = f" by {_actor(inc.resolved_by)}" if inc.resolved_by else ""
        lines.append(
            f":white_check_mark: *Resolved* {slack_date(inc.resolved_at)}{by}"
            f" · lasted {lasted(inc.opened_at, inc.resolved_at)}"
        )
    if inc.reopened_at is not None and inc.is_open:
        lines.append(f":repeat: *Reopened* {slack_date(inc.reopened_at)}")
    if inc.lead:
        lines.append(f"*Lead:* {_actor(inc.lead)}")
    if inc.escalation_exhausted_at is not None and inc.status is IncidentStatus.TRIGGERED:
        lines.append(
            f":sos: *Escalation exhausted* — {escape(inc.escalation_policy or 'the policy')} "
            f"ran out of levels {slack_date(inc.escalation_exhausted_at, '{time}')}; "
            "nobody acknowledged"
        )
    elif inc.escalation_policy and inc.is_open:
        lines.append(
            f"*Escalation:* {escape(inc.escalation_policy)}, level {inc.escalation_level + 1}"
        )
    if paged := _paged(view):
        lines.append(f"*Paged:* {paged}")
    if view.on_call and inc.is_open:
        lines.append(f"*On call now:* {_on_call(view)}")
    if inc.silence_id and inc.silenced_until:
        by = f" by {_actor(inc.silenced_by)}" if inc.silenced_by else ""
        until = slack_date(inc.silenced_until, "{time}")
        scope = f" — matching {_scope(view)}" if view.labels else ""
        lines.append(f":mute: *Silenced* until {until}{by}{scope}")
    return "\n".join(lines)


PAGED_SHOWN = 8  # people named on the card's "Paged" line; the rest are counted


def _paged(view: IncidentView) -> str:
    """Who was sent the card as a page, with the level and when, in that order."""
    pages = [c for c in view.copies if c.kind is CopyKind.DM and c.user]
    named = []
    for page in pages[:PAGED_SHOWN]:
        assert page.user is not None
        when = [escape(page.label)] if page.label else []
        if page.at is not None:
            when.append(slack_date(page.at, "{time}"))
        named.append(_actor(page.user) + (f" ({', '.join(when)})" if when else ""))
    more = f" and {len(pages) - PAGED_SHOWN} more" if len(pages) > PAGED_SHOWN else ""
    return ", ".join(named) + more


def _on_call(view: IncidentView) -> str:
    """Who is on call in each rotation the policy pages, and until when."""
    said = []
    for now in view.on_call:
        who = _actor(now.user) if now.user else "nobody"
        until = f", until {slack_date(now.until)}" if now.user and now.until else ""
        said.append(f"{who} ({escape(now.rotation)}{until})")
    return ", ".join(said)


def _severity_why(view: IncidentView) -> str:
    """Why the severity differs from the alert's label: the playbook set it."""
    if view.alert_severity is None or not view.incident.playbook:
        return ""
    playbook, said = escape(view.incident.playbook), escape(view.alert_severity)
    return f"\n_by playbook {playbook}; the alert said {said}_"


def _link_target(url: str) -> str | None:
    """A URL fit for a `<url|label>` link (http(s), no `|`, `<`, `>`; `&` escaped), or None."""
    if not url.startswith(("https://", "http://")) or any(c in url for c in "|<> "):
        return None
    return url.replace("&", "&amp;")


def _since(view: IncidentView) -> MarkdownTextObject:
    """Since when: when the alerts began firing (not when Tocsin heard), with its age."""
    if view.firing_since is None:
        return MarkdownTextObject(text=f"*Opened*\n{slack_date(view.incident.opened_at)}")
    since = view.firing_since
    age = f"<!date^{int(since.timestamp())}^{{ago}}|{since:%H:%M} UTC>"
    return MarkdownTextObject(text=f"*Firing since*\n{slack_date(since)} ({age})")


def _alert_counts(view: IncidentView) -> str:
    if view.incident.status is IncidentStatus.RESOLVED and view.firing:
        return f"{view.firing} still firing in Alertmanager, {view.resolved} resolved"
    return f"{view.firing} firing, {view.resolved} resolved"


def _who(view: IncidentView) -> str:
    inc = view.incident
    if inc.status is IncidentStatus.RESOLVED and inc.resolved_by:
        return f" by {_actor(inc.resolved_by)}"
    if inc.acknowledged_by and inc.status in (
        IncidentStatus.ACKNOWLEDGED,
        IncidentStatus.MITIGATED,
    ):
        return f" by {_actor(inc.acknowledged_by)}"
    return ""


def _actor(actor: str) -> str:
    return (
        f"<@{actor}>"
        if actor[:1] in "UW" and actor.isalnum() and actor.isupper()
        else escape(actor)
    )


def _alert_lines(view: IncidentView) -> str:
    """One line per alert shown. With several, the labels they all share are said once, above,
    and each line shows only what sets it apart."""
    shown = view.shown()
    shared = shared_labels(view) if len(shown) > 1 else {}
    lines = [shared_line(shared)] if shared else []
    lines += [alert_line(alert, shared) for alert in shown]
    if view.total > len(shown):
        lines.append(f"…and {view.total - len(shown)} more: `/incident alerts` lists them all")
    return clip("\n".join(lines) or "No alerts.", 3000)


def shared_labels(view: IncidentView) -> dict[str, str]:
    """The labels every alert of the incident has (its name aside)."""
    return {k: v for k, v in view.labels.items() if k != "alertname"}


def shared_line(shared: Mapping[str, str]) -> str:
    """The line that says once the labels every alert has."""
    return f"_All:_ `{escape(clip(_pairs(shared.items()), 300))}`"


def alert_line(alert: AlertLine, shared: Mapping[str, str], *, details: bool = True) -> str:
    """An alert as a line: its state, name, the labels `shared` does not say, its summary and
    links (and its description, with `details`)."""
    mark = ":red_circle:" if alert.status is AlertStatus.FIRING else ":white_check_mark:"
    extra = _pairs(
        (k, v) for k, v in alert.labels.items() if k != "alertname" and shared.get(k) != v
    )
    line = f"{mark} *{escape(clip(alert.name, 100))}*"
    if extra:
        line += f" `{escape(clip(extra, 150))}`"
    if alert.summary:
        line += f" — {escape(clip(alert.summary, 200))}"
    if (graph := _link_target(alert.generator_url)) is not None:
        line += f" <{graph}|graph>"
    if (dashboard := _link_target(alert.dashboard)) is not None:
        line += f" <{dashboard}|dashboard>"
    if details and alert.description:
        line += f"\n      _{escape(clip(' '.join(alert.description.split()), 300))}_"
    return line


def _pairs(labels: Iterable[tuple[str, str]]) -> str:
    """Labels as `name=value` pairs, sorted by name, comma-separated."""
    return ", ".join(f"{k}={v}" for k, v in sorted(labels))


def _scope(view: IncidentView) -> str:
    """What Silence matches: every label the incident's alerts share."""
    return " ".join(f"`{k}={escape(v)}`" for k, v in sorted(view.labels.items()))


def _silence_button(view: IncidentView) -> ButtonElement:
    """Silence 1h (Silence while flapping, on a flapping card), confirmed first with what it
    will silence."""
    scope = _pairs(view.labels.items()) or "its alerts"
    flapping = view.incident.flapping_since is not None
    return ButtonElement(
        text="Silence while flapping" if flapping else "Silence 1h",
        action_id=ids.SILENCE_FLAPPING if flapping else ids.SILENCE_1H,
        value=str(view.incident.id),
        confirm=ConfirmObject(
            title="Silence while it flaps?" if flapping else "Silence for an hour?",
            text=clip(
                f"Alertmanager holds the notifications of alerts matching {scope}"
                + (", past the resolves in between." if flapping else "."),
                300,
            ),
            confirm="Silence",
            deny="Cancel",
        ),
    )


def _actions(view: IncidentView) -> ActionsBlock:
    """The buttons legal in the incident's state."""
    inc = view.incident
    value = str(inc.id)
    diagnostics = ButtonElement(text="Run diagnostics", action_id=ids.RUN_DIAGNOSTICS, value=value)
    unsilence = ButtonElement(text="Unsilence", action_id=ids.UNSILENCE, value=value)
    if inc.status is IncidentStatus.RESOLVED:
        reopen = ButtonElement(text="Reopen", action_id=ids.REOPEN, value=value, style="danger")
        # A flapping group resolves only to fire again: it may be silenced while resolved.
        quiet = [unsilence] if inc.silence_id else []
        if not quiet and inc.flapping_since is not None:
            quiet = [_silence_button(view)]
        after = [reopen, *quiet, diagnostics]
        return ActionsBlock(block_id=ids.CARD_BLOCK_ID, elements=after)
    elements: list[ButtonElement] = []
    if inc.status is IncidentStatus.TRIGGERED:
        elements.append(
            ButtonElement(
                text="Acknowledge", action_id=ids.ACKNOWLEDGE, value=value, style="primary"
            )
        )
    elements += [
        ButtonElement(text="Escalate", action_id=ids.ESCALATE, value=value),
        ButtonElement(
            text="Resolve",
            action_id=ids.RESOLVE,
            value=value,
            style="danger",
            confirm=ConfirmObject(
                title="Resolve the incident?",
                text="Everyone in the channel will see it resolved.",
                confirm="Resolve",
                deny="Cancel",
            ),
        ),
        unsilence if inc.silence_id else _silence_button(view),
        diagnostics,
    ]
    if view.storm is not None:  # nothing to silence or diagnose but its groups, one by one
        elements = elements[:-2]
    return ActionsBlock(block_id=ids.CARD_BLOCK_ID, elements=elements)


def slack_date(at: datetime, style: str = "{date_short_pretty} {time}") -> str:
    """A time as Slack shows it to each reader in their own time zone (UTC as the fallback)."""
    return f"<!date^{int(at.timestamp())}^{style}|{at:%Y-%m-%d %H:%M} UTC>"


def channel_topic(view: IncidentView) -> str:
    """The channel topic: severity, state and title, within Slack's 250 characters."""
    inc = view.incident
    return clip(
        marked(inc, f"{inc.severity.value.upper()} · {inc.status.value} · {inc.title}"), 250
    )


def announcement_text(view: IncidentView) -> str:
    """The line in the alerts channel, linking to the incident channel; edited as the incident
    moves, so it always says where things stand."""
    inc = view.incident
    severity = inc.severity.value.upper()
    title = escape(inc.title)
    where = f"<#{inc.channel_id}>"
    if inc.status is IncidentStatus.RESOLVED:
        by = f" by {_actor(inc.resolved_by)}" if inc.resolved_by else ""
        took = f" after {lasted(inc.opened_at, inc.resolved_at)}" if inc.resolved_at else ""
        line = f":white_check_mark: *{severity}* {title} — resolved{by}{took} — {where}"
    elif inc.escalation_exhausted_at is not None and inc.status is IncidentStatus.TRIGGERED:
        line = f":sos: *{severity}* {title} — escalation exhausted, nobody acknowledged — {where}"
    elif inc.status is IncidentStatus.TRIGGERED:
        line = f":rotating_light: *{severity}* {title} — {where}"
    else:
        by = f" by {_actor(inc.acknowledged_by)}" if inc.acknowledged_by else ""
        line = (
            f"{_STATUS_EMOJI[inc.status]} *{severity}* {title} — {inc.status.value}{by} — {where}"
        )
    return clip(marked(inc, line), 3000)


def dm_card_text(view: IncidentView, label: str | None) -> str:
    """The text of a card sent to a person paged (at `label`, "level 1"): why they got it, the
    card's line, and where the incident is; kept when the card is edited."""
    paged = f"You are paged ({label})" if label else "You are paged"
    return clip(f"{paged} for {card_text(view)} in <#{view.incident.channel_id}>", 3000)
