"""Outbox jobs that belong to no incident: the daily digest and its chart, /diag graphs."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bot.domain.diagnostics import DEMO_DATA
from bot.domain.digest import Digest
from bot.domain.outbox import JobKind, OutboxJob
from bot.slack.outbox.graph_jobs import send_graph
from bot.slack.outbox.jobs import JobContext, post_once, post_text_once, upload_png
from bot.slack.render.digest import digest_fallback, render_digest
from bot.slack.render.digest_chart import render_trends
from bot.store.outbox import Job, JobOutcome

WorkspaceHandler = Callable[[JobContext, Job], Awaitable[JobOutcome]]


async def post_digest(ctx: JobContext, job: Job) -> JobOutcome:
    """The digest message, once; a duplicate beats a lost digest when history is unreadable."""
    _, channel_id = await post_once(
        ctx,
        job,
        str(job.payload["channel"]),
        history_optional=True,
        text=str(job.payload.get("text", "")),
        blocks=job.payload.get("blocks"),
        unfurl_links=False,
    )
    # Uploads need the channel's id; a digest may be configured with a channel name.
    return JobOutcome(follow_ups=_chart(job, channel_id))


def _chart(job: Job, channel_id: str) -> list[OutboxJob]:
    if not job.payload.get("png"):
        return []
    return [
        OutboxJob(
            kind=JobKind.UPLOAD_CHART,
            idem_key=f"chart:{job.idem_key}",
            payload={
                "channel": channel_id,
                "png": job.payload["png"],
                "title": job.payload.get("chart_title") or "KPI trends",
            },
        )
    ]


async def upload_chart(ctx: JobContext, job: Job) -> JobOutcome:
    """The digest's chart, uploaded into the digest's channel."""
    await upload_png(ctx, job, str(job.payload["channel"]))
    return JobOutcome()


async def post_notice(ctx: JobContext, job: Job) -> JobOutcome:
    """Tocsin's own trouble (a job given up), told once in the alerts channel."""
    await post_text_once(ctx, job, str(job.payload["channel"]), history_optional=True)
    return JobOutcome()


WORKSPACE_HANDLERS: Mapping[JobKind, WorkspaceHandler] = {
    JobKind.POST_DIGEST: post_digest,
    JobKind.UPLOAD_CHART: upload_chart,
    JobKind.POST_NOTICE: post_notice,
    JobKind.SEND_GRAPH: send_graph,
}


async def digest_jobs(digest: Digest, channel: str, idem_key: str) -> list[OutboxJob]:
    """The outbox job that posts a digest to one channel, its chart drawn off the event loop."""
    charted = digest.charted
    png = await asyncio.to_thread(render_trends, charted, digest.day)
    payload: dict[str, Any] = {
        "channel": channel,
        "text": digest_fallback(digest),
        "blocks": render_digest(digest),
    }
    if png is not None:
        payload["png"] = base64.b64encode(png).decode()
        demo = f" ({DEMO_DATA})" if any(v.demo for v in charted) else ""
        payload["chart_title"] = f"KPI trends to {digest.day.isoformat()}{demo}"
    return [OutboxJob(kind=JobKind.POST_DIGEST, idem_key=idem_key, payload=payload)]
