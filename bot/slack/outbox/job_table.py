"""Which handler does each kind of outbox job, and what the worker must know to pace it."""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain.outbox import JobKind, OutboxJob
from bot.domain.views import IncidentView
from bot.slack.outbox.archive_jobs import archive_channel
from bot.slack.outbox.contact_jobs import check_reach, contact, service_event
from bot.slack.outbox.jobs import (
    Handler,
    announce,
    open_channel,
    pin_card,
    post_alerts_note,
    post_card,
    post_note,
    set_topic,
    update_card,
    upload_image,
)
from bot.slack.outbox.paging import invite_oncall, notify, open_dm, post_dm
from bot.store.outbox import Job

HANDLERS: Mapping[JobKind, Handler] = {
    JobKind.OPEN_CHANNEL: open_channel,
    JobKind.SET_TOPIC: set_topic,
    JobKind.INVITE_ONCALL: invite_oncall,
    JobKind.POST_CARD: post_card,
    JobKind.PIN_CARD: pin_card,
    JobKind.UPDATE_CARD: update_card,
    JobKind.ANNOUNCE: announce,
    JobKind.POST_NOTE: post_note,
    JobKind.NOTIFY: notify,
    JobKind.OPEN_DM: open_dm,
    JobKind.POST_DM: post_dm,
    JobKind.POST_ALERTS_NOTE: post_alerts_note,
    JobKind.UPLOAD_IMAGE: upload_image,
    JobKind.ARCHIVE_CHANNEL: archive_channel,
    JobKind.CONTACT: contact,
    JobKind.SERVICE_EVENT: service_event,
    JobKind.REACH_CHECK: check_reach,
}

# Jobs that post into the incident's channel or the alerts channel (paced per channel), so the
# worker leaves the jobs of a channel that must wait in the queue.
POSTS_INTO_INCIDENT_CHANNEL = frozenset(
    {JobKind.POST_CARD, JobKind.POST_NOTE, JobKind.POST_DIAGNOSTIC, JobKind.ARCHIVE_CHANNEL}
)
POSTS_INTO_ALERTS_CHANNEL = frozenset({JobKind.ANNOUNCE, JobKind.POST_ALERTS_NOTE})
# Jobs that post into the channel their payload names (a DM, the digest's channel).
POSTS_INTO_PAYLOAD_CHANNEL = frozenset({JobKind.POST_DM, JobKind.POST_DIGEST, JobKind.POST_NOTICE})


def posting_channel(job: Job, alerts_channel: str | None) -> str | None:
    """The channel a job posts into, when it posts and the channel is known."""
    if job.kind in POSTS_INTO_INCIDENT_CHANNEL:
        return job.channel_id
    if job.kind in POSTS_INTO_ALERTS_CHANNEL:
        return alerts_channel
    if job.kind in POSTS_INTO_PAYLOAD_CHANNEL:
        channel = job.payload.get("channel")
        return str(channel) if channel else None
    return None


# The first Web API method of each job, so the worker leaves paced jobs in the queue (a job
# that calls no Slack method, such as a page by email, is not paced by Slack's limits).
FIRST_METHOD: Mapping[JobKind, str] = {
    JobKind.POST_DIGEST: "chat.postMessage",
    JobKind.POST_NOTICE: "chat.postMessage",
    JobKind.UPLOAD_CHART: "files.getUploadURLExternal",
    JobKind.SEND_GRAPH: "files.getUploadURLExternal",
    JobKind.OPEN_CHANNEL: "conversations.create",
    JobKind.SET_TOPIC: "conversations.setTopic",
    JobKind.INVITE_ONCALL: "conversations.invite",
    JobKind.POST_CARD: "chat.postMessage",
    JobKind.PIN_CARD: "pins.add",
    JobKind.UPDATE_CARD: "chat.update",
    JobKind.ANNOUNCE: "chat.postMessage",
    JobKind.POST_NOTE: "chat.postMessage",
    JobKind.NOTIFY: "conversations.invite",
    JobKind.OPEN_DM: "conversations.open",
    JobKind.POST_DM: "chat.postMessage",
    JobKind.POST_ALERTS_NOTE: "chat.postMessage",
    JobKind.POST_DIAGNOSTIC: "chat.postMessage",
    JobKind.UPLOAD_IMAGE: "files.getUploadURLExternal",
    JobKind.ARCHIVE_CHANNEL: "chat.postMessage",  # the closing summary
}


# The jobs that make no Slack call, so Slack's limits do not pace them: the worker takes them
# first, in a lane of their own.
UNPACED: tuple[JobKind, ...] = tuple(kind for kind in HANDLERS if kind not in FIRST_METHOD)


# The jobs that read only the incident itself (its title, severity, state and channel), not its
# alerts, card copies or who is on call: the worker reads no more for them.
INCIDENT_ONLY = frozenset({JobKind.CONTACT, JobKind.SERVICE_EVENT, JobKind.REACH_CHECK})


# The jobs that page people in Slack: the worker looks at them before the rest of the Slack
# work (cards, notes, edits), which may wait; a page may not.
PAGES: tuple[JobKind, ...] = (JobKind.NOTIFY, JobKind.OPEN_DM, JobKind.POST_DM)


# What each job does, said to people when it could not be done ("Tocsin could not ...").
WHAT: Mapping[JobKind, str] = {
    JobKind.OPEN_CHANNEL: "create the incident's channel",
    JobKind.SET_TOPIC: "set the channel topic",
    JobKind.INVITE_ONCALL: "invite the on-call people",
    JobKind.POST_CARD: "post the alert card",
    JobKind.PIN_CARD: "pin the alert card",
    JobKind.UPDATE_CARD: "update the alert card",
    JobKind.ANNOUNCE: "announce the incident here",
    JobKind.POST_NOTE: "post a note in the incident channel",
    JobKind.NOTIFY: "page {label}",
    JobKind.OPEN_DM: "send <@{user}> the page",
    JobKind.POST_DM: "send <@{user}> the page",
    JobKind.POST_ALERTS_NOTE: "post an update here",
    JobKind.POST_DIAGNOSTIC: "post a diagnostic result",
    JobKind.UPLOAD_IMAGE: "upload a graph",
    JobKind.ARCHIVE_CHANNEL: "archive the incident's channel",
    JobKind.POST_DIGEST: "post the daily digest",
    JobKind.UPLOAD_CHART: "upload the digest's chart",
    JobKind.SEND_GRAPH: "send <@{user}> the graph they asked for",
    JobKind.CONTACT: "page <@{user}> beyond Slack",
    JobKind.SERVICE_EVENT: "tell a paging service of the incident",
    JobKind.REACH_CHECK: "say whether <@{user}> could be reached",
}


def failure_notice(
    job: Job, view: IncidentView | None, reason: str, alerts_channel: str
) -> OutboxJob:
    """The alerts channel's notice of a job given up: what was not done, for which incident."""
    fields = {"label": job.payload.get("label", "a level"), "user": job.payload.get("user", "")}
    what = WHAT.get(job.kind, job.kind.value).format(**fields)
    text = f":warning: Tocsin could not {what}"
    if view is not None:
        channel = f" in <#{view.incident.channel_id}>" if view.incident.channel_id else ""
        inc = view.incident
        text += f" for incident #{inc.id} ([{inc.severity.value}] {inc.title}){channel}"
    text += f": {reason[:300]}"
    return OutboxJob(
        kind=JobKind.POST_NOTICE,
        idem_key=f"notice:failed:{job.id}",
        payload={"channel": alerts_channel, "text": text},
    )
