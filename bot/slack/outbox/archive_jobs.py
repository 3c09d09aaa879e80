"""Archiving a resolved incident's channel: the closing summary, then conversations.archive.

Each step is recorded once done: a retry (after a 429, a lost answer, a restart) neither posts
the summary twice nor archives twice. The summary carries its own key in its metadata, so a
post whose answer was lost is found in the channel's history instead of being made again.
"""

from __future__ import annotations

import logging

from bot.domain.archive import archived_event, still_due
from bot.domain.text import Rich, refs_from_data
from bot.domain.views import IncidentView
from bot.errors import SlackCallError
from bot.slack import render
from bot.slack.outbox.jobs import JobContext, incident_channel, post_once
from bot.store.outbox import Job, JobOutcome

log = logging.getLogger(__name__)


async def archive_channel(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """Post the closing summary once, then archive the channel; reopened since: nothing."""
    if not still_due(view.incident, job.payload):
        log.info("incident %s was reopened: its channel stays open", view.incident.id)
        return JobOutcome()
    channel = incident_channel(view)
    await ctx.once(job, "summary", lambda: _post_summary(ctx, job, channel))
    await ctx.once(job, "archived", lambda: _archive(ctx, channel))
    return JobOutcome(events=[archived_event(ctx.now())])


async def _post_summary(ctx: JobContext, job: Job, channel: str) -> bool:
    plain = str(job.payload.get("text", ""))
    text = render.slack_text(Rich(plain, refs_from_data(job.payload.get("refs") or [])))
    try:
        await post_once(ctx, job, channel, key=str(job.payload["summary_key"]), text=text)
    except SlackCallError as exc:
        if exc.code != "is_archived":
            raise
        return False  # a person archived it first: there is no last word to add
    return True


async def _archive(ctx: JobContext, channel: str) -> bool:
    try:
        await ctx.slack.call("conversations.archive", channel=channel)
    except SlackCallError as exc:
        # Archived already: by an earlier try whose answer was lost, or by a person.
        if exc.code != "already_archived":
            raise
    return True
