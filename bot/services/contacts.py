"""The later steps of people's notification rules (bot.domain.contacts): each is a timer that,
while the incident stays unacknowledged, notifies that step's contact methods."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.domain.contacts import SLACK, People, step_jobs
from bot.domain.incidents import IncidentStatus, TimelineEvent
from bot.domain.outbox import person_dm_job
from bot.domain.text import phrase, user
from bot.domain.timers import DueTimer
from bot.ports import IncidentTransaction


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
            jobs.append(person_dm_job(incident.id, person, page=f"{page}:{index}", label=label))
        methods = ", ".join(step.notify)
        text = phrase("Still unacknowledged: notifying ", user(person), f" by {methods}")
        event = TimelineEvent("contact_step", "tocsin", now, text, {"user": person})
        await tx.add_events(incident.id, [event])
        await tx.enqueue(jobs, at=now)
