"""`people:` and `notify:` in tocsin.yml: each person's contact methods and notification rules,
the rule of everyone else, and the SMTP server that sends `email:` contacts."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.domain.contacts import (
    DEFAULT_STEPS,
    EMAIL,
    SLACK,
    Contact,
    ContactKind,
    NotifyStep,
    People,
    Person,
)
from bot.domain.durations import config_duration


class RuleStepConfig(BaseModel):
    """One step of a notification rule: these methods, once the page is `after` old."""

    model_config = ConfigDict(extra="forbid")

    after: timedelta = Field(default=timedelta(0), description="e.g. 0s, 2m, 5m")
    notify: list[str] = Field(min_length=1, description='contact names, or "slack"')

    _after = field_validator("after", mode="before")(lambda value: config_duration(value))

    def to_domain(self) -> NotifyStep:
        """The step as the domain knows it."""
        return NotifyStep(self.after, tuple(self.notify))


def _steps(rules: list[RuleStepConfig]) -> tuple[NotifyStep, ...]:
    return tuple(sorted((r.to_domain() for r in rules), key=lambda step: step.after))


class PersonConfig(BaseModel):
    """A person (keyed by Slack user id): how to reach them, and when."""

    model_config = ConfigDict(extra="forbid")

    contacts: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='name -> "slack", "email:<address>" or an apprise URL (ntfy://, ...)',
    )
    rules: list[RuleStepConfig] = Field(default_factory=list)

    @field_validator("contacts")
    @classmethod
    def _contacts(cls, contacts: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, address in contacts.items():
            problem = contact_problem(address.get_secret_value())
            if problem:
                raise ValueError(f"contact {name!r}: {problem}")
        return contacts

    @model_validator(mode="after")
    def _rules_name_contacts(self) -> PersonConfig:
        for step in self.rules:
            for name in step.notify:
                if name != SLACK and name not in self.contacts:
                    known = ", ".join([SLACK, *self.contacts])
                    raise ValueError(f"rules name {name!r}, which is not a contact ({known})")
        return self

    def shown(self) -> dict[str, object]:
        """The person as `tocsin config check` prints them: each contact by its service only."""
        contacts = {n: _masked(a.get_secret_value()) for n, a in self.contacts.items()}
        rules = [
            {"after": f"{step.after.total_seconds():g}s", "notify": step.notify}
            for step in self.rules
        ]
        return {"contacts": contacts, "rules": rules}

    def to_domain(self) -> Person:
        """The person as the domain knows them."""
        contacts = {name: Contact(a.get_secret_value()) for name, a in self.contacts.items()}
        return Person(contacts=contacts, steps=_steps(self.rules))


def _masked(address: str) -> str:
    contact = Contact(address)
    return f"{contact.shown}://…" if contact.kind is ContactKind.APPRISE else contact.shown


def quiet_apprise() -> None:
    """Keep apprise's own log lines out of Tocsin's log: some name a destination's URL, token
    included. (Tocsin reads them per send with apprise.LogCapture, and says the reason.)"""
    logging.getLogger("apprise").propagate = False


def _apprise_knows(address: str) -> bool:
    from apprise import Apprise  # the destinations apprise knows, by URL

    quiet_apprise()
    return Apprise.instantiate(address) is not None


def contact_problem(address: str) -> str | None:
    """What is wrong with a contact address, or None; never repeats the address (it may hold a
    secret)."""
    contact = Contact(address)
    if contact.kind is ContactKind.EMAIL:
        mailbox = address.removeprefix(EMAIL)
        if "@" not in mailbox or any(c in mailbox for c in " ,;<>"):
            return "an email contact is email:<one address>"
        return None
    if contact.kind is ContactKind.APPRISE and (
        "://" not in address or not _apprise_knows(address)
    ):
        scheme = address.split("://", 1)[0] if "://" in address else "no scheme"
        return (
            f'not a URL apprise can send to ({scheme}); use "slack", '
            '"email:<address>" or an apprise URL such as ntfy://host/topic'
        )
    return None


class EmailConfig(BaseModel):
    """The SMTP server that sends `email:` contacts."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(alias="from", description="the From address")
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["starttls", "ssl", "none"] = "starttls"


class PagerDutyConfig(BaseModel):
    """A PagerDuty service's Events API v2 integration (`pagerduty:<name>` in a policy)."""

    model_config = ConfigDict(extra="forbid")

    routing_key: SecretStr
    url: str = "https://events.pagerduty.com/v2/enqueue"  # the EU's: events.eu.pagerduty.com


class OpsgenieConfig(BaseModel):
    """An Opsgenie API integration (`opsgenie:<name>` in a policy)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr
    url: str = "https://api.opsgenie.com"  # the EU's: https://api.eu.opsgenie.com


class WebhookConfig(BaseModel):
    """A URL told of each page, acknowledgement and resolution, signed with `secret`
    (`webhook:<name>` in a policy)."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr
    secret: SecretStr | None = None


class PaceConfig(BaseModel):
    """At most `at_most[service]` pages per person through a service within `within` (SMS and
    voice cost money and wake harder; others are not paced). A page over the limit waits."""

    model_config = ConfigDict(extra="forbid")

    within: timedelta = timedelta(minutes=15)
    at_most: dict[str, int] = Field(default_factory=lambda: {"twilio": 3})

    _within = field_validator("within", mode="before")(lambda value: config_duration(value))

    @field_validator("at_most")
    @classmethod
    def _positive(cls, at_most: dict[str, int]) -> dict[str, int]:
        for service, most in at_most.items():
            if most < 1:
                raise ValueError(f"{service}: at least 1")
        return at_most


class NotifyConfig(BaseModel):
    """How pages reach people beyond Slack."""

    model_config = ConfigDict(extra="forbid")

    email: EmailConfig | None = None
    pagerduty: dict[str, PagerDutyConfig] = Field(default_factory=dict)
    opsgenie: dict[str, OpsgenieConfig] = Field(default_factory=dict)
    webhooks: dict[str, WebhookConfig] = Field(default_factory=dict)
    default_rules: list[RuleStepConfig] = Field(
        default_factory=lambda: [RuleStepConfig(after=timedelta(0), notify=[SLACK])],
        description="the rule of people who have none: the Slack DM at once",
    )
    attempts: int = Field(
        default=3, ge=1, le=10, description="tries of a failing contact method, with backoff"
    )
    pace: PaceConfig = Field(default_factory=PaceConfig)

    @field_validator("default_rules")
    @classmethod
    def _only_slack(cls, rules: list[RuleStepConfig]) -> list[RuleStepConfig]:
        for step in rules:
            if set(step.notify) - {SLACK}:
                raise ValueError('the default rule can only notify "slack" (nobody has contacts)')
        return rules


def people_of(people: dict[str, PersonConfig], notify: NotifyConfig) -> People:
    """Everyone's contacts and rules, as the domain knows them."""
    default = _steps(notify.default_rules) or DEFAULT_STEPS
    return People({user: p.to_domain() for user, p in people.items()}, default)


def email_without_server(people: dict[str, PersonConfig], notify: NotifyConfig) -> str | None:
    """The first email contact when no SMTP server is configured to send it, or None."""
    if notify.email is not None:
        return None
    for user, person in people.items():
        for name, address in person.contacts.items():
            if address.get_secret_value().startswith(EMAIL):
                return f"people.{user}.contacts.{name}"
    return None


def unknown_service(notify: NotifyConfig, kind: str, name: str) -> str | None:
    """What is wrong with a policy's `kind:name` paging service target, or None."""
    known: dict[str, dict[str, object]] = {
        "pagerduty": dict(notify.pagerduty),
        "opsgenie": dict(notify.opsgenie),
        "webhook": dict(notify.webhooks),
    }
    if kind not in known or name in known[kind]:
        return None
    section = "webhooks" if kind == "webhook" else kind
    return f"{kind}:{name} is not configured: add it under notify.{section}"
