"""Words about an outside server, with its secrets taken out: what a failure may show of a
login, a password or a URL (a log line, the timeline, Slack)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

MASK = "****"
SHORTEST = 4  # a shorter secret would mask ordinary words (and guessing it is easy anyway)


def masked(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with each secret replaced by ****, the longest first (so that a secret inside
    another does not leave the rest of the longer one shown)."""
    for secret in sorted({s for s in secrets if s and len(s) >= SHORTEST}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def url_secrets(url: str) -> list[str | None]:
    """The parts of `url` that may be a secret: its user, password, host, path segments and
    query values (a token may hide in any of them)."""
    parts = urlsplit(url)
    secrets = [parts.username, parts.password, *parts.path.split("/"), parts.hostname]
    return secrets + [value for pair in parts.query.split("&") for value in pair.split("=")[1:]]
