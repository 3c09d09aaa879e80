"""How `tocsin` logs: one line per record on stderr, plain text or JSON, at a chosen level.

A record's structured fields are what its call passed as `extra`: the JSON line carries them
beside time, level, logger and message; the text line says them in its message already.

Records are written by a thread of their own (the standard library's QueueHandler and
QueueListener): the event loop only hands them over, so a slow or stalled stderr (a full pipe
to a log collector) never holds up webhooks, and formatting and writing are not on its time.
Whatever is queued is written before the process exits.
"""

from __future__ import annotations

import atexit
import copy
import json
import logging
import queue
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
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
        elif record.exc_text:  # handed over by the writer thread's queue, already text
            entry["error"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class _Handoff(QueueHandler):
    """Hands a record to the writer thread with its message and traceback already text (the
    arguments and the exception may change or go once the call returns)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        handed = copy.copy(record)
        handed.message = record.getMessage()
        handed.msg, handed.args = handed.message, None
        if record.exc_info:
            handed.exc_text = record.exc_text or _TRACEBACKS.formatException(record.exc_info)
            handed.exc_info = None
        return handed


_TRACEBACKS = logging.Formatter()
_writer: QueueListener | None = None


def _stop_writer() -> None:
    """Write what is queued, then stop the writer thread."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None


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
    global _writer
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    _stop_writer()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _writer = QueueListener(records, handler)
    _writer.start()
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(_Handoff(records))
    root.setLevel((level or "info").upper())
    quiet = not verbose and level is None
    for name in QUIET_UNLESS_ASKED:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)


atexit.register(_stop_writer)
