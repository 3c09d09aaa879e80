"""Diagnostic results: one neutral type for every source, rendered to Slack in one place."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

DEMO_DATA = "demo data"
# The timeline's kind for a message of results that appeared in an incident channel (the
# results themselves are recorded, as "diagnostic", when they are computed).
POSTED_EVENT = "diagnostics_posted"


class Status(StrEnum):
    """How a check came out; `error` means the check itself could not run, `not configured`
    that there is nothing to check (its source is not set up)."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    NOT_CONFIGURED = "not configured"


@dataclass(frozen=True)
class Table:
    """A small table: column names and rows of already formatted cells."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class DiagnosticResult:
    """What one diagnostic step found."""

    title: str
    status: Status
    text: str
    table: Table | None = None
    image_png: bytes | None = field(default=None, repr=False)
    source: str = ""
    no_data: bool = False  # the query answered, with nothing in it
    demo: bool = False  # from a built-in demo source, not a real system

    def __post_init__(self) -> None:
        # A result from demo data says so in its title, wherever it is shown, and keeps saying
        # so when it is retitled (`replace(result, title=...)`).
        if self.demo and not self.title.endswith(f"({DEMO_DATA})"):
            object.__setattr__(self, "title", f"{self.title} ({DEMO_DATA})")

    @classmethod
    def error(cls, title: str, reason: str, *, source: str = "") -> DiagnosticResult:
        """A check that could not run, with a one-line reason and no secrets."""
        return cls(title=title, status=Status.ERROR, text=one_line(redact(reason)), source=source)


def worst(statuses: Sequence[Status]) -> Status:
    """The most serious status of several (error counts below fail: the data is missing)."""
    order = (Status.NOT_CONFIGURED, Status.OK, Status.WARN, Status.ERROR, Status.FAIL)
    return max(statuses, key=order.index, default=Status.OK)


def grade(
    value: float, *, warn: float | None, fail: float | None, higher_is_worse: bool = True
) -> Status:
    """Compare a number with warn/fail thresholds."""

    def beyond(limit: float | None) -> bool:
        if limit is None:
            return False
        return value >= limit if higher_is_worse else value <= limit

    if beyond(fail):
        return Status.FAIL
    if beyond(warn):
        return Status.WARN
    return Status.OK


_SECRETS = [
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^:/@\s]+):([^@\s]+)@"), r"\1\2:***@"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"(?i)\b(token|apikey|api_key|key|password|secret|sig)=([^&\s]+)"), r"\1=***"),
    (re.compile(r"\bxox[abpr]-[A-Za-z0-9-]+"), "xox*-***"),
    (re.compile(r"(?i)(https?://)([0-9a-f]{16,})@"), r"\1***@"),
]


def redact(text: str) -> str:
    """Remove passwords in URLs, bearer tokens, key=value secrets, Slack tokens and DSN keys."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace and cut to one short line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
