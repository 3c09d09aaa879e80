"""Pages and DMs as the people in an emulated workspace see them, counted."""

from __future__ import annotations

import re
from collections import Counter

from bot.slack.emulator import SlackEmulator

PAGE = re.compile(r"^:rotating_light: Paging (level \d+)")
DM = re.compile(r"^You are paged \((level \d+)\) for .* in <#(C[A-Z0-9]+)>$")


def page_messages(emulator: SlackEmulator) -> Counter[tuple[str, str]]:
    """(incident channel, level) of every page message."""
    found: Counter[tuple[str, str]] = Counter()
    for m in emulator.state.messages:
        if (match := PAGE.match(m.text or "")) is not None:
            found[(m.channel, match.group(1))] += 1
    return found


def page_dms(emulator: SlackEmulator) -> Counter[tuple[str, str, str]]:
    """(person, incident channel, level) of every DM that pages someone."""
    return Counter(key for key, _ in dm_times(emulator))


def dm_times(emulator: SlackEmulator) -> list[tuple[tuple[str, str, str], float]]:
    """Each paging DM's (person, incident channel, level), with its time (the message ts)."""
    people = {c.id: c.im_user for c in emulator.state.channels.values() if c.is_im}
    found = []
    for m in emulator.state.messages:
        if m.channel in people and (match := DM.match(m.text or "")) is not None:
            key = (str(people[m.channel]), match.group(2), match.group(1))
            found.append((key, float(m.ts)))
    return found
