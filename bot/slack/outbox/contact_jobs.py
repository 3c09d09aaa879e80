"""A page through a person's contact method beyond Slack (email, push, SMS, a webhook): sent at
most once, recorded on the timeline with its outcome, and said in the channel when it failed.

A person none of whose methods worked for a page, with none left to try, is named in the channel
once, with each method's reason (`check_reach`, queued after each method that failed).

A send is marked on the job before it starts. A job found marked but not finished (its process
died mid-send) is not sent again, since the destination may already have it: the timeline says
so instead. A send the destination refused or failed is retried with backoff, `attempts` times.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from bot.domain.contacts import (
    Contact,
    Delivery,
    ServiceNotice,
    dedup_key,
    reach_check_job,
    rule_page,
)
from bot.domain.escalation import service_label
from bot.domain.incidents import IncidentStatus
from bot.domain.outbox import note_job
from bot.domain.text import phrase
from bot.domain.text import user as person
from bot.domain.views import IncidentView
from bot.slack.outbox.caller import RetryLater
from bot.slack.outbox.contacts import Contacts, message
from bot.slack.outbox.jobs import JobContext
from bot.store.outbox import Job, JobOutcome

log = logging.getLogger(__name__)
SENDING = "sending"  # the step marked before the send
SENT = "contact_sent"  # the timeline event of a page delivered beyond Slack


async def contact(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """Send one step's method to one person, unless the incident was acknowledged meanwhile."""
    contacts = ctx.contacts
    user, name = str(job.payload["user"]), str(job.payload["method"])
    page = rule_page(job.payload)
    if view.incident.status is not IncidentStatus.TRIGGERED:
        return JobOutcome()  # acknowledged or resolved before this step's turn: nothing to send
    found = contacts.people.person(user).contact(name)
    if found is None:
        return _failed(ctx, job, view, user, name, None, f"{name!r} is no longer a contact")
    steps = job.payload.get("steps", {})
    if SENDING in steps:
        text = phrase(
            f"{name.capitalize()} to ",
            person(user),
            f" ({found.shown}) may have been sent before Tocsin restarted; not sent again",
        )
        contacts.on_outcome(found.shown, "unknown", None)
        event = ctx.event("contact_unknown", text, user=user, method=name, page=page)
        return JobOutcome(events=[event])
    slot = await _paced(ctx, user, found)
    await ctx.once(job, SENDING, _marked)
    delivery = await _send(contacts, found, view, str(job.payload.get("label", "a page")))
    if not delivery.ok:
        _unpaced(ctx, user, found, slot)
    if delivery.ok:
        contacts.on_outcome(found.shown, "sent", _delay(ctx, job))
        text = phrase(f"{name.capitalize()} to ", person(user), f" sent ({found.shown})")
        event = ctx.event(SENT, text, user=user, method=name, service=found.shown, page=page)
        return JobOutcome(events=[event])
    # The destination has not got it: the mark goes, and the send may be tried again.
    job.payload["steps"].pop(SENDING, None)
    await ctx.store.record_steps(job)
    if delivery.retry and job.attempts + 1 < contacts.attempts:
        reason = f"{found.shown}: {delivery.reason}"
        raise RetryLater(2.0, reason, counts_attempt=True)
    return _failed(ctx, job, view, user, name, found, delivery.reason)


async def _paced(ctx: JobContext, user: str, found: Contact) -> datetime | None:
    """Take a slot of the pace of this service for `user` (its time, to give back if the send
    fails); while the window is full the job is put back (no attempt counted)."""
    contacts = ctx.contacts
    most = contacts.pace_at_most.get(found.shown)
    if most is None:
        return None
    key = (user, found.shown)
    async with contacts.pace_locks.setdefault(key, asyncio.Lock()):
        now = ctx.now()
        since = now - contacts.pace_within
        if key not in contacts.paced:
            contacts.paced[key] = [
                at
                for at, data in await ctx.store.events_since(SENT, since)
                if data.get("user") == user and data.get("service") == found.shown
            ]
        sent = sorted(at for at in contacts.paced[key] if at > since)
        if len(sent) >= most:
            contacts.paced[key] = sent
            wait = max((sent[-most] + contacts.pace_within - now).total_seconds(), 1.0)
            log.info("page of %s by %s held %.0f s: %d sent lately", user, found.shown, wait, most)
            reason = f"{found.shown}: {most} pages to this person lately"
            raise RetryLater(wait, reason, counts_attempt=False)
        contacts.paced[key] = [*sent, now]
        return now


def _unpaced(ctx: JobContext, user: str, found: Contact, slot: datetime | None) -> None:
    """Give a pace slot back: the send failed."""
    taken = ctx.contacts.paced.get((user, found.shown))
    if slot is not None and taken is not None and slot in taken:
        taken.remove(slot)


async def _marked() -> bool:
    return True


async def _send(contacts: Contacts, found: Contact, view: IncidentView, label: str) -> Delivery:
    if contacts.sender is None:
        return Delivery(False, "no contact sender is configured", retry=False)
    link = contacts.channel_link(view.incident.channel_id or "")
    title, body = message(view, label, link)
    return await contacts.sender.send(found, title=title, body=body)


def _delay(ctx: JobContext, job: Job) -> float | None:
    due = job.created_at
    return (ctx.now() - due).total_seconds() if due is not None else None


def _failed(
    ctx: JobContext,
    job: Job,
    view: IncidentView,
    user: str,
    name: str,
    found: Contact | None,
    reason: str,
) -> JobOutcome:
    """The method failed for good: the timeline and a log line say so, and the channel names
    the person if none of their methods worked (`check_reach`)."""
    shown = found.shown if found is not None else name
    ctx.contacts.on_outcome(shown, "failed", None)
    log.warning(
        "page of %s by %s (%s) failed: %s",
        user,
        name,
        shown,
        reason,
        extra={"user": user, "method": name, "service": shown, "reason": reason},
    )
    text = phrase(f"{name.capitalize()} to ", person(user), f" failed ({shown}): {reason}")
    page = rule_page(job.payload)
    failure = f"{name} ({shown}): {reason}"
    event = ctx.event("contact_failed", text, user=user, method=name, page=page, failure=failure)
    return JobOutcome(
        events=[event],
        follow_ups=[reach_check_job(view.incident.id, job.idem_key, user, page)],
    )


async def check_reach(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """After a method failed: if none of the person's methods worked for the page and none is
    left to try (no later step, no send under way), name them in the channel, once per page.
    Each failed method queues this check after its failure is recorded, so the last one to
    fail sees the others' outcomes. (Acknowledging cancels the steps not yet due, so a person
    who had one left when somebody acknowledged is not named.)"""
    user, page = str(job.payload["user"]), str(job.payload["page"])
    reach = await ctx.store.reach(view.incident.id, user, page)
    if not reach.unreachable:
        return JobOutcome()
    how = ": " if len(reach.failures) == 1 else " by any of their methods: "
    text = phrase("Could not reach ", person(user), how + "; ".join(reach.failures))
    return JobOutcome(
        events=[ctx.event("person_unreached", text, user=user, page=page)],
        follow_ups=[
            note_job(view.incident.id, f"unreached:{page}:{user}", phrase(":warning: ", text))
        ],
    )


async def service_event(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """Tell a paging service the incident triggered, was acknowledged or resolved. The service
    keeps one alert per incident (its dedup key or alias), so a retry is harmless: 429, 5xx
    and unreachable are retried with backoff until `outbox.give_up_after`."""
    kind, name, action = (str(job.payload[k]) for k in ("service", "name", "action"))
    label = service_label(kind, name)
    contacts = ctx.contacts
    incident = view.incident
    notice = ServiceNotice(
        incident_id=incident.id,
        action=action,
        dedup_key=dedup_key(incident.id),
        title=incident.title,
        severity=incident.severity.value,
        status=incident.status.value,
        link=contacts.channel_link(incident.channel_id or ""),
    )
    if contacts.services is None:
        delivery = Delivery(False, "no paging service is configured", retry=False)
    else:
        delivery = await contacts.services.send_event(kind, name, notice)
    if delivery.ok:
        contacts.on_outcome(kind, "sent", _delay(ctx, job))
        text = f"{label}: {action} sent"
        return JobOutcome(events=[ctx.event("service_told", text, service=kind, name=name)])
    if delivery.retry:
        raise RetryLater(2.0, f"{label}: {delivery.reason}", counts_attempt=True)
    contacts.on_outcome(kind, "failed", None)
    log.warning(
        "%s refused the %s of incident %s: %s",
        label,
        action,
        incident.id,
        delivery.reason,
        extra={"service": kind, "target": name, "action": action, "reason": delivery.reason},
    )
    text = f"{label} refused the {action}: {delivery.reason}"
    return JobOutcome(
        events=[ctx.event("service_failed", text, service=kind, name=name)],
        follow_ups=[note_job(incident.id, f"service_failed:{job.idem_key}", f":warning: {text}")],
    )
