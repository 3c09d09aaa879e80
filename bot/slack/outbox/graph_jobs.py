"""A /diag graph delivered where it was promised: in a DM with the person who asked, or, when
they asked to `share` it, in the channel where they asked.

An ephemeral reply cannot carry a file, so the graph goes out as an upload of its own. Each
call is a recorded step of the job, so a retry neither opens, uploads nor shares twice.
"""

from __future__ import annotations

import asyncio

from bot.errors import SlackCallError
from bot.slack.outbox.jobs import JobContext, upload_png
from bot.store.outbox import Job, JobOutcome

# files.completeUploadExternal's answers that mean Tocsin cannot share into the channel (its
# "not_in_channel": "User/bot membership is required"); the person gets the graph instead.
CANNOT_SHARE = frozenset(
    {"not_in_channel", "channel_not_found", "invalid_channel", "posting_to_channel_denied"}
    | {"is_archived"}
)


async def send_graph(ctx: JobContext, job: Job) -> JobOutcome:
    """Upload the graph into the channel it was shared in, else into the person's DM."""
    user, channel = str(job.payload["user"]), str(job.payload.get("channel") or "")
    comment = str(job.payload.get("comment") or "")
    if channel:
        try:
            await upload_png(ctx, job, channel, comment=comment)
            return JobOutcome()
        except SlackCallError as exc:
            if exc.code not in CANNOT_SHARE:
                raise
            comment = f"I could not share this graph in <#{channel}> ({exc.code}). {comment}"
    await upload_png(
        ctx, job, await ctx.once(job, "dm", lambda: dm_channel(ctx, user)), comment=comment
    )
    return JobOutcome()


async def dm_channel(ctx: JobContext, user: str) -> str:
    """The direct-message channel between the bot and `user` (conversations.open, asked once
    per person: Slack answers the same channel every time)."""
    async with ctx.dm_locks.setdefault(user, asyncio.Lock()):
        if user not in ctx.dm_channels:
            opened = await ctx.slack.call("conversations.open", users=user)
            ctx.dm_channels[user] = str(opened["channel"]["id"])
    return ctx.dm_channels[user]
