"""Pages by email against a real SMTP server (aiosmtpd): delivered as plain text with the page's
title, a refusal (5xx) said and not retried, a temporary failure (4xx) or an unreachable server
retried, and the login's secrets named nowhere."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.smtp import Envelope
from pydantic import SecretStr

from bot.config.people import EmailConfig
from integrations.email import SmtpSender
from tests.realservers import free_port, smtp_server

PASSWORD = "pw-9c1e77d4a2"


class Server:
    """Refuses gone@ for good, asks busy@ to try later, takes the rest."""

    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 No such mailbox"
        if address.startswith("busy@"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        self.mails.append(message_from_bytes(content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Server, int]]:
    server = Server()
    with smtp_server(server) as port:
        yield server, port


def sender(port: int, **more: Any) -> SmtpSender:
    config = {"host": "127.0.0.1", "port": port, "from": "tocsin@example.com", "security": "none"}
    return SmtpSender(EmailConfig.model_validate(config | more))


async def test_a_page_arrives_as_plain_text_with_its_title(smtp: tuple[Server, int]) -> None:
    server, port = smtp
    delivery = await sender(port).send("dana@example.com", title="[sev1] #4 DiskFull", body="Hi")
    assert delivery.ok
    (mail,) = server.mails
    assert mail["Subject"] == "[sev1] #4 DiskFull" and mail["To"] == "dana@example.com"
    assert mail["From"] == "tocsin@example.com" and mail["Message-ID"]
    assert mail.get_content_type() == "text/plain" and str(mail.get_payload()).strip() == "Hi"


async def test_a_mailbox_refused_for_good_is_said_and_not_retried(
    smtp: tuple[Server, int],
) -> None:
    server, port = smtp
    delivery = await sender(port).send("gone@example.com", title="t", body="b")
    assert (delivery.ok, delivery.retry) == (False, False)
    assert delivery.reason == "the SMTP server refused gone@example.com (550)"
    assert server.mails == []


async def test_a_mailbox_busy_for_now_is_retried(smtp: tuple[Server, int]) -> None:
    _server, port = smtp
    delivery = await sender(port).send("busy@example.com", title="t", body="b")
    assert (delivery.ok, delivery.retry) == (False, True)
    assert "(451)" in delivery.reason


async def test_an_unreachable_server_is_retried_and_its_login_is_not_shown() -> None:
    port = free_port()  # nothing listens there
    mail = sender(port, username="tocsin-mailer", password=SecretStr(PASSWORD))
    delivery = await mail.send("dana@example.com", title="t", body="b")
    assert (delivery.ok, delivery.retry) == (False, True)
    assert delivery.reason.startswith("could not reach the SMTP server")
    assert PASSWORD not in delivery.reason
