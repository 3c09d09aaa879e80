"""Small parsers for slash-command arguments."""

from __future__ import annotations

import re

from bot.domain.incidents import Severity
from bot.errors import UserError

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_SEVERITY = re.compile(r"^(?:sev)?([1-4])$", re.IGNORECASE)


def parse_user(text: str, usage: str) -> str:
    """A user id from a mention Slack escaped (`<@U123|name>`) or a bare id."""
    text = text.strip()
    if match := _MENTION.match(text):
        return match.group(1)
    if re.fullmatch(r"[UW][A-Z0-9]{2,}", text):
        return text
    raise UserError(f"Mention the person with @ (got `{text or 'nothing'}`). Usage: `{usage}`")


def parse_severity(text: str, usage: str) -> Severity:
    """`1`..`4` or `sev1`..`sev4`."""
    if match := _SEVERITY.match(text.strip()):
        return Severity(f"sev{match.group(1)}")
    raise UserError(f"Severity must be 1-4 or sev1-sev4 (got `{text}`). Usage: `{usage}`")


def split_severity(text: str) -> tuple[str, Severity | None]:
    """`title words [sevN]` -> (title, severity or None)."""
    words = text.split()
    if words and _SEVERITY.match(words[-1]) and words[-1].lower().startswith("sev"):
        return " ".join(words[:-1]), Severity(words[-1].lower())
    return text.strip(), None
