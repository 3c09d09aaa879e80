"""Pages beyond Slack, sent with apprise: any destination it knows by URL (ntfy, Pushover,
Telegram, Twilio SMS, Microsoft Teams, a generic JSON webhook, ...). apprise is a well-kept
library with one URL per destination, so Tocsin writes no client of its own for any of them.
Email goes through the configured SMTP server with aiosmtplib (integrations.email).
"""

from __future__ import annotations

import logging
import re

import apprise

from bot.config.people import EmailConfig, quiet_apprise
from bot.domain.contacts import EMAIL, Contact, ContactKind, Delivery
from integrations.email import SmtpSender
from integrations.masking import masked, url_secrets

# apprise logs each failure in words; the last of them is the reason a person is shown.
_STATUS = re.compile(r"\b([45]\d\d)\b")


class AppriseSender:
    """A ContactSender: one apprise notification (or one email) per page and contact method."""

    def __init__(self, email: EmailConfig | None) -> None:
        self.smtp = SmtpSender(email) if email is not None else None
        quiet_apprise()

    async def send(self, contact: Contact, *, title: str, body: str) -> Delivery:
        """Send once; a failure is said, cleaned of the URL's secrets."""
        if contact.kind is ContactKind.EMAIL:
            if self.smtp is None:
                return Delivery(False, "no SMTP server is configured (notify.email)", retry=False)
            to = contact.address.removeprefix(EMAIL)
            return await self.smtp.send(to, title=title, body=body)
        if contact.kind is not ContactKind.APPRISE:
            return Delivery(False, f"no way to send {contact.shown} is configured", retry=False)
        url = contact.address
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return Delivery(False, f"apprise cannot send to this {contact.shown} address", False)
        capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
        with capture as captured:
            sent = await notifier.async_notify(title=title, body=body)
        if sent:
            return Delivery(True)
        said = [line for line in str(captured.getvalue()).splitlines() if line.strip()]
        reason = masked(said[-1] if said else "the destination did not accept it", url_secrets(url))
        status = _STATUS.search(reason)
        refused = (
            status is not None and status.group(1).startswith("4") and status.group(1) != "429"
        )
        return Delivery(False, reason[:300], retry=not refused)
