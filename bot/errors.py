"""Tocsin's exception tree.

TocsinError
├── UserError            a person did something wrong; the text is safe to show them
│   ├── InvalidTransition   the incident's state does not allow the action
│   ├── PermissionDenied    the person may not do this
│   ├── NotFound            no such incident (bot.services.incidents)
│   └── DrillFailed         a drill could not run (bot.drills.client)
├── InvalidPayload       a webhook body failed validation (HTTP 400)
├── IntegrationError     an outside system failed (Slack, Prometheus, Sentry, ...)
│   ├── SlackCallError      Slack answered `ok: false` with an error code (bot.slack.outbox.caller)
│   ├── PrometheusError     (integrations.prometheus)
│   ├── SentryError         (integrations.sentry)
│   └── SilenceError        Alertmanager refused a silence (integrations.alertmanager)
├── StoreConflict        a concurrent writer won a uniqueness race; redo the unit of work
├── StoreBusy            another process held SQLite's write lock too long (HTTP 503)
├── StoreUnreachable     the database cannot be reached now (down, restarting) (HTTP 503)
├── ConfigError          a setting is missing or wrong; stops start-up
├── CannotListen         `tocsin serve` cannot take its address (a busy port); stops start-up
├── StoreInUse           another `tocsin serve` serves the SQLite file; stops start-up
└── SchemaOutOfDate      the database needs `tocsin db upgrade`

Not errors, and never out of the outbox worker: `RetryLater` (bot.slack.outbox.caller: the call
did not happen, try the job again later) and `JobFailed` (bot.slack.outbox.jobs: the job cannot
succeed).
"""

from __future__ import annotations

from typing import Any


class TocsinError(Exception):
    """Base of every error Tocsin raises on purpose."""


class UserError(TocsinError):
    """An error whose message is written for the person who caused it."""


class InvalidTransition(UserError):
    """The incident's current state does not allow the requested action."""


class PermissionDenied(UserError):
    """The person is not allowed to perform the action."""


class InvalidPayload(TocsinError):
    """A webhook body is malformed; the message says why."""


class IntegrationError(TocsinError):
    """An outside system failed or answered garbage."""


class SlackCallError(IntegrationError):
    """Slack answered a Web API call with `ok: false` and an error code (the whole answer too,
    for conversations.invite's `errors`)."""

    def __init__(self, method: str, code: str, response: dict[str, Any] | None = None) -> None:
        super().__init__(f"{method}: {code}")
        self.method = method
        self.code = code
        self.response = response or {}


class StoreConflict(TocsinError):
    """A concurrent writer won a uniqueness race; the unit of work may be redone."""


class StoreBusy(TocsinError):
    """Another process held the SQLite store's write lock past the wait; try again later."""


class StoreUnreachable(TocsinError):
    """The database cannot be reached now (down, restarting, failing over); try again later."""


class ConfigError(TocsinError):
    """A setting is missing or invalid."""


class CannotListen(TocsinError):
    """The server's host and port cannot be listened on."""


class StoreInUse(TocsinError):
    """Another `tocsin serve` already serves this SQLite file (SQLite serves one process)."""


class SchemaOutOfDate(TocsinError):
    """The database schema is older than the code."""
