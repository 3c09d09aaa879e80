"""Work for the Slack edge, written in the same transaction as the change that needs it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.text import Rich

# A job put back until its incident's channel or card exists says so with this prefix; the
# store makes such jobs due again the moment that channel or card is recorded.
WAITING = "waiting: "
WAITING_FOR_CHANNEL = f"{WAITING}channel not created yet"
WAITING_FOR_CARD = f"{WAITING}card not posted yet"
WAITING_FOR_ANNOUNCEMENT = f"{WAITING}announcement not posted yet"
# The store wakes a waiting job as soon as the channel or card is recorded, also when that
# happened while the job ran: this delay is only a safety net, long enough that the jobs of
# incidents still waiting for their channel in a storm cost few looks.
WAITING_POLL = 30.0


class JobKind(StrEnum):
    """The Slack work an incident can need; the Slack edge knows how to do each."""

    OPEN_CHANNEL = "open_channel"
    SET_TOPIC = "set_topic"
    INVITE_ONCALL = "invite_oncall"
    POST_CARD = "post_card"
    PIN_CARD = "pin_card"
    UPDATE_CARD = "update_card"
    ANNOUNCE = "announce"
    POST_NOTE = "post_note"
    NOTIFY = "notify"
    OPEN_DM = "open_dm"
    POST_DM = "post_dm"
    POST_ALERTS_NOTE = "post_alerts_note"
    POST_DIAGNOSTIC = "post_diagnostic"
    UPLOAD_IMAGE = "upload_image"
    ARCHIVE_CHANNEL = "archive_channel"  # the closing summary, then the archive
    # Workspace jobs: no incident, the channel is in the payload.
    POST_DIGEST = "post_digest"
    UPLOAD_CHART = "upload_chart"
    POST_NOTICE = "post_notice"  # Tocsin's own trouble, told in the alerts channel
    SEND_GRAPH = "send_graph"  # a /diag graph, to the person who asked or where they asked
    CONTACT = "contact"  # a page through a person's contact method beyond Slack (email, push)
    REACH_CHECK = "reach_check"  # after a method failed: did any of the person's methods work?
    SERVICE_EVENT = "service_event"  # PagerDuty, Opsgenie or a webhook told of the incident


@dataclass(frozen=True)
class OutboxJob:
    """One durable unit of Slack work; `idem_key` makes enqueueing it twice harmless."""

    kind: JobKind
    idem_key: str
    incident_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    coalesce_key: str | None = None
    not_before: datetime | None = None
    waiting: str | None = None  # queued already waiting (a WAITING_* reason)


def parked_until_channel(job: OutboxJob, now: datetime) -> OutboxJob:
    """`job` queued as waiting for its incident's channel: recording the channel wakes it.

    Queued as due, a post into a channel that does not exist yet would be taken, find no
    channel, and be put back to wait, all for nothing; under a storm that is one such round per
    alert change of every incident whose channel waits for Slack's pace.
    """
    return replace(
        job, waiting=WAITING_FOR_CHANNEL, not_before=now + timedelta(seconds=WAITING_POLL)
    )


def card_update_job(incident_id: int, *, not_before: datetime | None = None) -> OutboxJob:
    """Re-render the incident card (not before `not_before`, when given); a pending update of
    the same card absorbs this one, and is brought forward when this one is due sooner."""
    return OutboxJob(
        kind=JobKind.UPDATE_CARD,
        idem_key=f"update_card:{incident_id}",
        incident_id=incident_id,
        coalesce_key=f"card:{incident_id}",
        not_before=not_before,
    )


def topic_update_job(incident_id: int) -> OutboxJob:
    """Refresh the channel topic (severity and state); pending refreshes coalesce."""
    return OutboxJob(
        kind=JobKind.SET_TOPIC,
        idem_key=f"set_topic:{incident_id}",
        incident_id=incident_id,
        coalesce_key=f"topic:{incident_id}",
    )


def state_changed_jobs(incident_id: int) -> list[OutboxJob]:
    """What every change of an incident's state needs: its card (and every copy of it, in DMs
    and the alerts channel) and its channel topic, re-rendered."""
    return [card_update_job(incident_id), topic_update_job(incident_id)]


def outcome_job(incident_id: int, idem: str, text: Rich) -> OutboxJob:
    """An outcome (acknowledged, escalated, resolved, reopened) told in the thread of the
    incident's announcement in the alerts channel."""
    return OutboxJob(
        kind=JobKind.POST_ALERTS_NOTE,
        idem_key=f"outcome:{incident_id}:{idem}",
        incident_id=incident_id,
        payload={"text": text.text, "refs": text.refs_data(), "thread": True},
    )


def note_job(incident_id: int, idem: str, text: Rich | str) -> OutboxJob:
    """Post a short note into the incident channel: plain text with its references, or (a
    string) text the Slack edge wrote with Slack's tokens."""
    payload: dict[str, Any] = (
        {"text": text.text, "refs": text.refs_data()} if isinstance(text, Rich) else {"text": text}
    )
    return OutboxJob(
        kind=JobKind.POST_NOTE,
        idem_key=f"note:{incident_id}:{idem}",
        incident_id=incident_id,
        payload=payload,
    )


def person_dm_job(
    incident_id: int, user: str, *, page: str, label: str, rule_page: str | None = None
) -> OutboxJob:
    """Send a person the incident's card in their DM (`page` names the occasion, once per
    person; `label` says why: "level 1", "new alerts joined"), opening the DM first.
    `rule_page` is the page whose notification rule asked for it, when that is not `page`."""
    payload = {"user": user, "page": page, "label": label}
    if rule_page is not None:
        payload["rule_page"] = rule_page
    return OutboxJob(
        kind=JobKind.OPEN_DM,
        idem_key=f"dm_open:{page}:{user}",
        incident_id=incident_id,
        payload=payload,
    )


def open_channel_job(incident_id: int) -> OutboxJob:
    """Create the incident's channel; follow-up jobs are enqueued when it exists."""
    return OutboxJob(
        kind=JobKind.OPEN_CHANNEL, idem_key=f"open_channel:{incident_id}", incident_id=incident_id
    )


def channel_setup_jobs(incident_id: int, *, announce: bool) -> list[OutboxJob]:
    """What follows once the channel exists: topic, invitations, the card, the announcement."""
    kinds = [JobKind.SET_TOPIC, JobKind.INVITE_ONCALL, JobKind.POST_CARD]
    if announce:
        kinds.append(JobKind.ANNOUNCE)
    return [
        OutboxJob(kind=k, idem_key=f"{k.value}:{incident_id}", incident_id=incident_id)
        for k in kinds
    ]
