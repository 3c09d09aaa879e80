"""Diagnostic results in the incident channel: those ready together go out as one message.

Slack lets an app post about one message per second into a channel. A playbook's results
usually arrive within a moment of each other, and one message per result would queue them a
second apart; one message for all that are due takes one slot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.domain.diagnostics import POSTED_EVENT
from bot.domain.outbox import JobKind, OutboxJob
from bot.domain.views import IncidentView
from bot.services.diagnostics import result_from_payload
from bot.slack import ids
from bot.slack.outbox.jobs import Batching, JobContext, card_channel, jobs_metadata, posted_keys
from bot.slack.render import diagnostics as render_diagnostics
from bot.store.outbox import Job, JobOutcome


async def post_diagnostics(ctx: JobContext, jobs: Sequence[Job], view: IncidentView) -> JobOutcome:
    """Results in one message below the card, tagged with every job's key; graphs follow.

    After an uncertain earlier try the channel's history says which results that try posted:
    only the others are posted now.
    """
    channel = card_channel(view)
    unposted = list(jobs)
    if any(job.attempts > 0 for job in jobs):
        posted = await posted_keys(ctx, channel)
        unposted = [job for job in jobs if job.idem_key not in posted]
    if unposted:
        results = [result_from_payload(job.payload) for job in unposted]
        await ctx.slack.call(
            "chat.postMessage",
            channel=channel,
            text=render_diagnostics.posted_text(results),
            blocks=render_diagnostics.render_posted(results),
            metadata=jobs_metadata(ids.DIAGNOSTICS_METADATA_EVENT, unposted),
        )
    # What people saw, and when: the results computed earlier are on the timeline already, but
    # they appear in the channel only now (a drill's report times this, not the computing).
    count = len(jobs)
    posted_event = ctx.event(
        POSTED_EVENT, f"{count} diagnostic result{'s' if count != 1 else ''} posted", count=count
    )
    # Enqueueing is idempotent by key: graphs of results posted by a lost try are not doubled.
    return JobOutcome(
        events=[posted_event],
        follow_ups=[_upload(job, view) for job in jobs if job.payload.get("png")],
    )


def _upload(job: Job, view: IncidentView) -> OutboxJob:
    return OutboxJob(
        kind=JobKind.UPLOAD_IMAGE,
        idem_key=f"upload:{job.idem_key}",
        incident_id=view.incident.id,
        payload={"png": job.payload["png"], "title": job.payload.get("title") or "graph"},
    )


def blocks_of(job: Job) -> int:
    """How many of a message's blocks the job's result takes."""
    return len(render_diagnostics.render_result(result_from_payload(job.payload)))


BATCHES: Mapping[JobKind, Batching] = {
    JobKind.POST_DIAGNOSTIC: Batching(
        handler=post_diagnostics,
        weight=blocks_of,
        capacity=render_diagnostics.MAX_MESSAGE_BLOCKS,
    ),
}
