"""The later steps of people's notification rules (bot.domain.contacts): each is a timer that,
while the incident stays unacknowledged, notifies that step's contact methods."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.domain.contacts import SLACK, ContactKind, People, step_jobs
from bot.domain.incidents import IncidentStatus, TimelineEvent
from bot.domain.outbox import person_dm_job
from bot.domain.text import phrase, user
from bot.domain.timers import DueTimer
from bot.ports import ContactSender, IncidentTransaction


class ContactSteps:
    """Fires the CONTACT_STEP timers (acknowledging or resolving the incident cancels them)."""

    def __init__(self, people: People, now: Callable[[], datetime]) -> None:
        self.people = people
        self.now = now

    async def fire(self, tx: IncidentTransaction, timer: DueTimer) -> None:
        """Notify the step's methods, if the incident is still unacknowledged."""
        incident = await tx.get_incident(timer.incident_id or 0)
        if incident is None or incident.status is not IncidentStatus.TRIGGERED:
            return
        person, index = str(timer.payload["user"]), int(timer.payload["step"])
        steps = self.people.steps_of(person)
        if index >= len(steps):
            return  # the rule was shortened since the page
        step, page, label = steps[index], str(timer.payload["page"]), str(timer.payload["label"])
        now = self.now()
        jobs = step_jobs(incident.id, page, person, index, step, label)
        if SLACK in step.notify:
            dm = person_dm_job(
                incident.id, person, page=f"{page}:{index}", label=label, rule_page=page
            )
            jobs.append(dm)
        methods = ", ".join(step.notify)
        text = phrase("Still unacknowledged: notifying ", user(person), f" by {methods}")
        event = TimelineEvent("contact_step", "tocsin", now, text, {"user": person})
        await tx.add_events(incident.id, [event])
        await tx.enqueue(jobs, at=now)


@dataclass(frozen=True)
class MethodTried:
    """One contact method of a person, tried: its name, its service, and what came of it."""

    name: str
    service: str
    ok: bool
    reason: str = ""


TEST_TITLE = "Tocsin test notification"
TEST_BODY = (
    "This is a test of how Tocsin pages you ({name}). No incident is open and there is "
    "nothing to acknowledge."
)


class ContactTest:
    """Sends a test notification through each of a person's contact methods (`/oncall test`,
    `tocsin notify test`), and says what came of each."""

    def __init__(self, people: People, sender: ContactSender | None) -> None:
        self.people = people
        self.sender = sender

    async def test(self, user: str) -> list[MethodTried]:
        """Every method of `user`, tried once, in their order; Slack is the reply itself."""
        person = self.people.person(user)
        tried = [MethodTried(SLACK, "Slack", True, "you are reading it")]
        for name, contact in person.contacts.items():
            if contact.kind is ContactKind.SLACK:
                continue
            if self.sender is None:
                tried.append(MethodTried(name, contact.shown, False, "no sender configured"))
                continue
            body = TEST_BODY.format(name=name)
            delivery = await self.sender.send(contact, title=TEST_TITLE, body=body)
            tried.append(MethodTried(name, contact.shown, delivery.ok, delivery.reason))
        return tried
