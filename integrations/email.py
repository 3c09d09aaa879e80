"""Pages by email (`email:dana@example.com` contacts), sent through the configured SMTP server
with aiosmtplib: asyncio's SMTP client, so a storm's emails go out side by side on the event
loop, all over one TLS context made once (a TLS context loads the system's CA store: tens of
milliseconds of CPU, too much to spend again on every page)."""

from __future__ import annotations

import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from bot.config.people import EmailConfig
from bot.domain.contacts import Delivery
from integrations.masking import masked

TIMEOUT = 15.0  # seconds for each step of the conversation with the server


class SmtpSender:
    """Sends one plain-text email per page; says why one failed, naming no secret."""

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self._tls: ssl.SSLContext | None = None
        self._hostname = socket.gethostname()  # what HELO says (getfqdn may wait for DNS)

    def _context(self) -> ssl.SSLContext | None:
        if self.config.security == "none":
            return None
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def message(self, to: str, *, title: str, body: str) -> EmailMessage:
        """The email itself: `title` as its subject, `body` as its text."""
        mail = EmailMessage()
        mail["From"] = self.config.sender
        mail["To"] = to
        mail["Subject"] = title
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain=self.config.sender.rpartition("@")[2] or None)
        mail.set_content(body)
        return mail

    async def send(self, to: str, *, title: str, body: str) -> Delivery:
        """Send once: a refusal (5xx, a bad login) is not worth retrying; the rest is."""
        config = self.config
        password = config.password.get_secret_value() if config.password else None
        try:
            await aiosmtplib.send(
                self.message(to, title=title, body=body),
                hostname=config.host,
                port=config.port,
                username=config.username if password is not None else None,
                password=password,
                use_tls=config.security == "ssl",
                start_tls=config.security == "starttls",
                tls_context=self._context(),
                local_hostname=self._hostname,
                timeout=TIMEOUT,
            )
        except aiosmtplib.SMTPAuthenticationError as error:
            return Delivery(
                False,
                f"the SMTP server refused the login ({error.code}): check the username "
                "and password under notify.email",
                retry=False,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refused.code for refused in error.recipients]
            return Delivery(False, f"the SMTP server refused {to} ({codes[0]})", _transient(codes))
        except aiosmtplib.SMTPResponseException as error:
            said = masked(f"{error.code} {error.message}", (config.username, password))
            return Delivery(False, f"the SMTP server said {said}"[:300], _transient([error.code]))
        except (aiosmtplib.SMTPException, OSError) as error:
            said = masked(str(error) or type(error).__name__, (config.username, password))
            return Delivery(False, f"could not reach the SMTP server: {said}"[:300])
        return Delivery(True)


def _transient(codes: list[int]) -> bool:
    """SMTP's 4xx replies are temporary (try again later); its 5xx are not."""
    return any(400 <= code < 500 for code in codes)
