"""What the jobs that page people beyond Slack need, and the page they send."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.contacts import People
from bot.domain.views import IncidentView
from bot.ports import ContactSender, ServiceSender


@dataclass
class Contacts:
    """What contact jobs need: who can be reached how, and the sender."""

    people: People = field(default_factory=People)
    sender: ContactSender | None = None
    services: ServiceSender | None = None  # PagerDuty, Opsgenie, webhooks
    attempts: int = 3
    # At most this many pages per person through a service (by the URL's scheme) per window.
    pace_within: timedelta = timedelta(minutes=15)
    pace_at_most: dict[str, int] = field(default_factory=dict)
    # The paced pages this process sent, by (person, service), read from the timeline the
    # first time (only the outbox lease's holder sends, so after that this is the record).
    paced: dict[tuple[str, str], list[datetime]] = field(default_factory=dict)
    pace_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    # The link that opens an incident's channel (Slack's app_redirect, or the sandbox page).
    channel_link: Callable[[str], str] = lambda channel: (
        f"https://slack.com/app_redirect?channel={channel}"
    )
    # Counts each outcome by method, and the delay from the step's due time to its delivery.
    on_outcome: Callable[[str, str, float | None], None] = lambda method, outcome, delay: None


def message(view: IncidentView, label: str, link: str) -> tuple[str, str]:
    """The page's title and body: what, how bad, where, and how to acknowledge."""
    incident = view.incident
    title = f"[{incident.severity.value}] #{incident.id} {incident.title}"
    channel = incident.channel_name or "the incident channel"
    body = "\n".join(
        [
            f"Incident #{incident.id} needs you ({label}): {incident.title}",
            f"Severity: {incident.severity.value}",
            f"Open it in Slack: {link}",
            f"To acknowledge, press Acknowledge on the card in #{channel}, "
            f"or type /incident ack {incident.id} there.",
        ]
    )
    return title, body
