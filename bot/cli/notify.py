"""`tocsin notify test <user>`: a test notification through each of a person's contact methods,
from the terminal, before the night it matters."""

from __future__ import annotations

import asyncio

from bot.config import Settings
from bot.config.people import people_of
from bot.services.contacts import ContactTest
from integrations.contacts import AppriseSender


def notify_test(settings: Settings, user: str) -> int:
    """Print each method's outcome; 0 when every one was sent, 1 otherwise."""
    people = people_of(settings.people, settings.notify)
    if user not in settings.people:
        known = ", ".join(settings.people) or "nobody"
        print(f"tocsin: {user} is not under people: in tocsin.yml (it names {known})")
        return 1
    tester = ContactTest(people, AppriseSender(settings.notify.email))
    tried = asyncio.run(tester.test(user))[1:]  # not the Slack DM: this is a terminal
    if not tried:
        print(f"{user} has no contact method beyond Slack")
        return 1
    for method in tried:
        outcome = "sent" if method.ok else f"FAILED: {method.reason}"
        print(f"{method.name} ({method.service}): {outcome}")
    return 0 if all(method.ok for method in tried) else 1
