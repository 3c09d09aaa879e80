"""Tocsin's exception tree.

TocsinError
├── UserError            a person did something wrong; the text is safe to show them
│   ├── InvalidTransition   the incident's state does not allow the action
│   └── PermissionDenied    the person may not do this
├── InvalidPayload       a webhook body failed validation (HTTP 400)
├── IntegrationError     an outside system failed (Slack, Prometheus, Sentry, ...)
│   └── SlackCallError      a Slack Web API call failed for good
├── StoreConflict        a concurrent writer won a uniqueness race; redo the unit of work
├── ConfigError          a setting is missing or wrong; stops start-up
└── SchemaOutOfDate      the database needs `tocsin db upgrade`
"""

from __future__ import annotations


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
    """A Slack Web API call failed permanently."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method} failed: {error}")
        self.method = method
        self.error = error


class StoreConflict(TocsinError):
    """A concurrent writer won a uniqueness race; the unit of work may be redone."""


class ConfigError(TocsinError):
    """A setting is missing or invalid."""


class SchemaOutOfDate(TocsinError):
    """The database schema is older than the code."""
