"""How `tocsin` logs: one line per record on stderr, plain text or JSON, at a chosen level.

A record's structured fields are what its call passed as `extra`: the JSON line carries them
beside time, level, logger and message; the text line says them in its message already.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Alembic says which dialect it drives at INFO on every command that reads the schema.
QUIET_UNLESS_ASKED = ("alembic",)
_RECORD_ATTRIBUTES = frozenset(
    set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
)


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a log call gave (its `extra`)."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class LogChoiceError(ValueError):
    """A log format or level from the environment that is not one of the choices."""


def choice(value: str | None, choices: tuple[str, ...], name: str) -> str | None:
    """`value` lower-cased when it is one of `choices` (None stays None), or LogChoiceError."""
    if value is None or value == "":
        return None
    if value.lower() not in choices:
        raise LogChoiceError(f"{name}: must be one of {', '.join(choices)} (got {value!r})")
    return value.lower()


def from_environment(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """TOCSIN_LOG_FORMAT and TOCSIN_LOG_LEVEL, checked."""
    return (
        choice(env.get("TOCSIN_LOG_FORMAT"), FORMATS, "TOCSIN_LOG_FORMAT"),
        choice(env.get("TOCSIN_LOG_LEVEL"), LEVELS, "TOCSIN_LOG_LEVEL"),
    )


def configure(*, log_format: str | None, level: str | None, verbose: bool) -> None:
    """Log to stderr in `log_format` (text by default) at `level` (info by default).

    Alembic's own INFO lines are shown only when asked for: `--verbose`, or a level given.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or "info").upper())
    quiet = not verbose and level is None
    for name in QUIET_UNLESS_ASKED:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)
