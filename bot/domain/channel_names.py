"""Slack channel names for incidents: `inc-YYYYMMDD-<n>-<slug>` within Slack's rules."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

MAX_LENGTH = 80
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")
_FALLBACK_SLUG = "alert"


def slugify(text: str) -> str:
    """Lowercase ASCII words joined by hyphens; accents are folded, other scripts dropped."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_ALLOWED.sub("-", folded.lower()).strip("-")
    return slug or _FALLBACK_SLUG


def incident_channel_name(opened_on: date, number: int, title: str) -> str:
    """The channel name for an incident, at most 80 characters of [a-z0-9-]."""
    prefix = f"inc-{opened_on:%Y%m%d}-{number}-"
    room = MAX_LENGTH - len(prefix)
    slug = slugify(title)[:room].rstrip("-") or _FALLBACK_SLUG[:room]
    return (prefix + slug)[:MAX_LENGTH].rstrip("-")


def with_suffix(name: str, attempt: int) -> str:
    """The name to try after `attempt` collisions (`name_taken`), still within 80 characters."""
    if attempt <= 0:
        return name
    suffix = f"-{attempt + 1}"
    return name[: MAX_LENGTH - len(suffix)].rstrip("-") + suffix


def is_valid_channel_name(name: str) -> bool:
    """True when Slack accepts the name."""
    return bool(re.fullmatch(r"[a-z0-9_-]{1,80}", name)) and bool(re.search(r"[a-z0-9]", name))
