"""A storm incident's card (bot.domain.storms): its alert groups summarized, updated in place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, MarkdownTextObject, SectionBlock

from bot.domain.storms import StormMember, StormSummary, Tally
from bot.domain.views import IncidentView
from bot.slack import ids
from bot.slack.render.text import clip, escape

TALLIES_SHOWN = 6
GROUP_SECTIONS = 12  # sections of group lines at most (a message holds 50 blocks)
SECTION_TEXT = 3000  # Slack's limit on a section's text


def storm_counts(storm: StormSummary) -> str:
    """The card's count field: groups, firing and resolved."""
    noun = "group" if storm.groups == 1 else "groups"
    return f"{storm.groups} alert {noun}: {storm.firing} firing, {storm.resolved} resolved"


def _tallies(tallies: Sequence[Tally]) -> str:
    shown = [
        f"{escape(t.name)} {t.groups}" + (f" ({t.firing} firing)" if t.firing != t.groups else "")
        for t in tallies[:TALLIES_SHOWN]
    ]
    more = len(tallies) - TALLIES_SHOWN
    return " · ".join(shown) + (f" · and {more} more" if more > 0 else "")


def storm_lines(view: IncidentView, storm: StormSummary) -> str:
    """What the storm holds: groups by alert, service and severity, what they all share, the
    first and the newest, new groups per minute, and how to split one out."""
    if storm.groups == 0:
        return "No alert groups yet."
    lines = [
        f"*By alert:* {_tallies(storm.by_alertname)}",
        f"*By service:* {_tallies(storm.by_service)}",
        f"*By severity:* {_tallies(storm.by_severity)}",
    ]
    if storm.shared:
        shared = " ".join(f"`{escape(k)}={escape(v)}`" for k, v in sorted(storm.shared.items()))
        lines.append(f"*Shared by every group (the likely cause):* {shared}")
    first, newest = storm.first, storm.newest
    if first is not None and newest is not None:
        lines.append(
            f"*First:* #{first.incident_id} {escape(first.title)} ({first.joined_at:%H:%M} UTC)"
            f" · *Newest:* #{newest.incident_id} {escape(newest.title)}"
            f" ({newest.joined_at:%H:%M} UTC)"
        )
    if storm.chart:
        lines.append(f"*New groups per minute:* {storm.chart} (up to {newest_minute(storm)})")
    lines.append(
        "Give a group its own incident and channel: `/incident split <number>` here, with the "
        f"number on its line below (#{view.incident.id} is the storm itself)."
    )
    return clip("\n".join(lines), 3000)


def newest_minute(storm: StormSummary) -> str:
    """The minute the chart ends with."""
    return f"{storm.newest.joined_at:%H:%M} UTC" if storm.newest else ""


def _group_line(member: StormMember) -> str:
    mark = ":red_circle:" if member.is_firing else ":white_check_mark:"
    service = member.labels.get("service")
    where = f" {escape(service)}" if service and service not in member.title else ""
    counts = f"{member.firing} firing" if member.is_firing else "resolved"
    return f"{mark} #{member.incident_id} {escape(member.title)}{where} ({counts})"


def group_sections(storm: StormSummary) -> list[str]:
    """Every group of the storm, a line each (firing first), in as many section texts as they
    need; past GROUP_SECTIONS the rest are counted."""
    sections: list[str] = []
    current: list[str] = []
    size = 0
    for n, member in enumerate(storm.members):
        line = _group_line(member)
        if size + len(line) + 1 > SECTION_TEXT - 80:
            sections.append("\n".join(current))
            current, size = [], 0
            if len(sections) == GROUP_SECTIONS:
                rest = len(storm.members) - n
                sections[-1] += f"\n…and {rest} more groups: `/incident list` shows them"
                return sections
        current.append(line)
        size += len(line) + 1
    if current:
        sections.append("\n".join(current))
    return sections


SPLIT_BUTTONS_PER_ROW = 5


def split_offer(text: str, groups: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """A calm storm's note: `text`, and a Split button for each group it offers."""
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(text=clip(text, 3000)))]
    buttons = [
        ButtonElement(
            text=clip(f"Split #{number} {title}", 75), action_id=ids.SPLIT_GROUP, value=str(number)
        )
        for number, title in groups
    ]
    for start in range(0, len(buttons), SPLIT_BUTTONS_PER_ROW):
        row = buttons[start : start + SPLIT_BUTTONS_PER_ROW]
        blocks.append(ActionsBlock(block_id=f"{ids.SPLIT_GROUP}_{start}", elements=row))
    return [b.to_dict() for b in blocks]
