"""How a page reaches a person beyond the incident channel: their contact methods and their
notification rules ("Slack DM at once, push after 2 min, SMS after 5 min"), GoAlert-style.

A page notifies each person it names through their rule's steps while the incident stays
unacknowledged: a step due at once is queued with the page; a later one is a durable timer,
cancelled when the incident is acknowledged or resolved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from bot.domain.outbox import JobKind, OutboxJob
from bot.domain.timers import Timer

SLACK = "slack"  # the contact every person has: the card in their Slack DM
EMAIL = "email:"  # "email:dana@example.com", sent through the configured SMTP server
CONTACT_STEP = "contact_step"  # the timer of a later step of a person's rule


class ContactKind(StrEnum):
    """How a contact is reached."""

    SLACK = "slack"
    EMAIL = "email"
    APPRISE = "apprise"  # any destination apprise knows by URL (ntfy, Pushover, Twilio, ...)


@dataclass(frozen=True)
class Contact:
    """One way to reach a person: "slack", "email:<address>", or an apprise URL."""

    address: str

    @property
    def kind(self) -> ContactKind:
        """Which sender delivers it."""
        if self.address == SLACK:
            return ContactKind.SLACK
        if self.address.startswith(EMAIL):
            return ContactKind.EMAIL
        return ContactKind.APPRISE

    @property
    def shown(self) -> str:
        """What may be shown of it (a log line, the timeline, Slack): the service, never the
        URL, whose user, password, host or path may be the secret."""
        if self.kind is ContactKind.APPRISE:
            return urlsplit(self.address).scheme or "unknown"
        return self.kind.value


@dataclass(frozen=True)
class Delivery:
    """What sending through a contact method came to; `reason` says why it failed, in words
    that name no secret ("push failed: 401 Unauthorized")."""

    ok: bool
    reason: str = ""
    retry: bool = True  # a failure worth trying again (a 5xx, a timeout), not a refusal


@dataclass(frozen=True)
class Reach:
    """What one page's notifications of one person came to so far."""

    pending: bool  # a later step of their rule, or a send, is still to come
    reached: bool  # a method delivered the page (or may have, before a restart)
    failures: tuple[str, ...] = ()  # each method that failed, in words, in order

    @property
    def unreachable(self) -> bool:
        """None of the person's methods worked, and none is left to try."""
        return not self.pending and not self.reached and bool(self.failures)


def rule_page(payload: Mapping[str, object]) -> str:
    """The page whose notification rule a job or timer of a person follows (a later step's
    Slack DM has a page of its own, so that it is sent once per step)."""
    return str(payload.get("rule_page") or payload.get("page") or "")


def reach_check_job(incident_id: int, failed: str, user: str, page: str) -> OutboxJob:
    """After the job `failed` (an idempotency key) could not reach `user`: name them in the
    channel if none of their methods worked for `page` and none is left to try."""
    return OutboxJob(
        kind=JobKind.REACH_CHECK,
        idem_key=f"reach_check:{failed}",
        incident_id=incident_id,
        payload={"user": user, "page": page},
    )


@dataclass(frozen=True)
class ServiceNotice:
    """What a paging service is told of an incident: one alert per incident (`dedup_key`),
    triggered, acknowledged or resolved."""

    incident_id: int
    action: str  # trigger, acknowledge, resolve
    dedup_key: str
    title: str
    severity: str  # sev1 (the worst) .. sev4
    status: str
    link: str


def dedup_key(incident_id: int) -> str:
    """The key a paging service knows the incident by (PagerDuty's dedup_key, Opsgenie's
    alias): the same for every event of the incident."""
    return f"tocsin-incident-{incident_id}"


@dataclass(frozen=True)
class NotifyStep:
    """Notify these contact methods (by name) once the page is `after` old and unacknowledged."""

    after: timedelta
    notify: tuple[str, ...]


DEFAULT_STEPS: tuple[NotifyStep, ...] = (NotifyStep(timedelta(0), (SLACK,)),)


@dataclass(frozen=True)
class Person:
    """A person's contact methods by name, and their rule (empty: the default rule)."""

    contacts: Mapping[str, Contact] = field(default_factory=dict)
    steps: tuple[NotifyStep, ...] = ()

    def contact(self, name: str) -> Contact | None:
        """The contact method `name` names ("slack" is everyone's)."""
        return Contact(SLACK) if name == SLACK else self.contacts.get(name)


@dataclass(frozen=True)
class People:
    """Everyone's contact methods and rules, and the rule of people without one."""

    people: Mapping[str, Person] = field(default_factory=dict)
    default_steps: tuple[NotifyStep, ...] = DEFAULT_STEPS

    def person(self, user: str) -> Person:
        """`user`'s methods and rule (someone tocsin.yml does not name: Slack only)."""
        return self.people.get(user, Person())

    def steps_of(self, user: str) -> tuple[NotifyStep, ...]:
        """The steps a page of `user` follows."""
        return self.person(user).steps or self.default_steps


@dataclass(frozen=True)
class ContactPlan:
    """What a page does beyond the channel: who gets the Slack DM now, the other methods due
    now, and the timers of the later steps."""

    dm_now: tuple[str, ...]
    jobs: tuple[OutboxJob, ...]
    timers: tuple[Timer, ...]


def plan_page(
    people: People, incident_id: int, page: str, users: Sequence[str], label: str, now: datetime
) -> ContactPlan:
    """The steps of each paged person's rule: those due at once, and timers for the rest."""
    dm_now: list[str] = []
    jobs: list[OutboxJob] = []
    timers: list[Timer] = []
    for user in users:
        for index, step in enumerate(people.steps_of(user)):
            if step.after > timedelta(0):
                timers.append(step_timer(incident_id, page, user, index, label, now + step.after))
                continue
            if SLACK in step.notify:
                dm_now.append(user)
            jobs += step_jobs(incident_id, page, user, index, step, label)
    return ContactPlan(tuple(dm_now), tuple(jobs), tuple(timers))


def step_jobs(
    incident_id: int, page: str, user: str, index: int, step: NotifyStep, label: str
) -> list[OutboxJob]:
    """The jobs of one step's methods other than the Slack DM (that one is the page's own)."""
    return [
        contact_job(incident_id, page, user, index, name, label)
        for name in step.notify
        if name != SLACK
    ]


def contact_job(
    incident_id: int, page: str, user: str, index: int, name: str, label: str
) -> OutboxJob:
    """Notify `user` through their method `name`, once for this step of this page."""
    return OutboxJob(
        kind=JobKind.CONTACT,
        idem_key=f"contact:{page}:{user}:{index}:{name}",
        incident_id=incident_id,
        payload={"user": user, "method": name, "step": index, "page": page, "label": label},
    )


def step_timer(
    incident_id: int, page: str, user: str, index: int, label: str, due: datetime
) -> Timer:
    """The timer of a later step: at `due`, if nobody acknowledged, its methods are notified."""
    return Timer(
        kind=CONTACT_STEP,
        idem_key=f"contact_step:{page}:{user}:{index}",
        due_at=due,
        incident_id=incident_id,
        payload={"user": user, "step": index, "page": page, "label": label},
    )


def service_event_job(
    incident_id: int, version: int, kind: str, name: str, action: str
) -> OutboxJob:
    """Tell a paging service (`kind` pagerduty, opsgenie or webhook; `name` its keys in
    tocsin.yml) that the incident triggered, was acknowledged or resolved: once per version
    of the incident. Its dedup key (PagerDuty) or alias (Opsgenie) is the incident's, so the
    service keeps one alert per incident however often it is told."""
    return OutboxJob(
        kind=JobKind.SERVICE_EVENT,
        idem_key=f"service:{kind}:{name}:{incident_id}:v{version}:{action}",
        incident_id=incident_id,
        payload={"service": kind, "name": name, "action": action},
    )
