"""Pages beyond Slack, sent with apprise: any destination it knows by URL (ntfy, Pushover,
Telegram, Twilio SMS, Microsoft Teams, a generic JSON webhook, ...) and email through the
configured SMTP server (apprise's mailto://). apprise is a well-kept library with one URL per
destination, so Tocsin writes no client of its own for any of them."""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, urlencode, urlsplit

import apprise

from bot.config.people import EmailConfig, quiet_apprise
from bot.domain.contacts import EMAIL, Contact, ContactKind, Delivery

# apprise logs each failure in words; the last of them is the reason a person is shown.
_STATUS = re.compile(r"\b([45]\d\d)\b")


class AppriseSender:
    """A ContactSender: one apprise notification per page and contact method."""

    def __init__(self, email: EmailConfig | None) -> None:
        self.email = email
        quiet_apprise()

    def url_of(self, contact: Contact) -> str | None:
        """The apprise URL that reaches `contact` (email: through the SMTP server)."""
        if contact.kind is ContactKind.APPRISE:
            return contact.address
        if contact.kind is not ContactKind.EMAIL or self.email is None:
            return None
        email = self.email
        login = ""
        if email.username:
            password = email.password.get_secret_value() if email.password else ""
            login = f"{quote(email.username, safe='')}:{quote(password, safe='')}@"
        query = {"from": email.sender, "to": contact.address.removeprefix(EMAIL)}
        scheme = "mailto"
        if email.security != "none":
            scheme, query["mode"] = "mailtos", email.security
        return f"{scheme}://{login}{email.host}:{email.port}?{urlencode(query)}"

    async def send(self, contact: Contact, *, title: str, body: str) -> Delivery:
        """Send once; a failure is said, cleaned of the URL's secrets."""
        url = self.url_of(contact)
        if url is None:
            return Delivery(False, f"no way to send {contact.shown} is configured", retry=False)
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return Delivery(False, f"apprise cannot send to this {contact.shown} address", False)
        capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
        with capture as captured:
            sent = await notifier.async_notify(title=title, body=body)
        if sent:
            return Delivery(True)
        said = [line for line in str(captured.getvalue()).splitlines() if line.strip()]
        reason = _clean(said[-1] if said else "the destination did not accept it", url)
        status = _STATUS.search(reason)
        refused = (
            status is not None and status.group(1).startswith("4") and status.group(1) != "429"
        )
        return Delivery(False, reason[:300], retry=not refused)


def _clean(text: str, url: str) -> str:
    """`text` without any part of `url` that may be a secret: its user, password, host, path
    segments and query values."""
    parts = urlsplit(url)
    secrets = [parts.username, parts.password, *parts.path.split("/"), parts.hostname]
    secrets += [value for pair in parts.query.split("&") for value in pair.split("=")[1:]]
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "****")
    return text
