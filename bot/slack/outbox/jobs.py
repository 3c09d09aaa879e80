"""What each outbox job does in Slack, and what it records when it is done."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import aiohttp

from bot.domain.channel_names import incident_channel_name, slugify, with_suffix
from bot.domain.incidents import TimelineEvent
from bot.domain.outbox import (
    WAITING_FOR_ANNOUNCEMENT,
    WAITING_FOR_CARD,
    WAITING_FOR_CHANNEL,
    WAITING_POLL,
    JobKind,
    OutboxJob,
    card_update_job,
    channel_setup_jobs,
)
from bot.domain.text import RefKind, Rich, phrase, ref, refs_from_data
from bot.domain.views import CardCopy, CopyKind, IncidentView
from bot.errors import SlackCallError
from bot.slack import ids, render
from bot.slack.channels import find_channel
from bot.slack.outbox.caller import RetryLater, SlackCaller
from bot.slack.outbox.contacts import Contacts
from bot.slack.render.storm import split_offer
from bot.store.outbox import Job, JobOutcome, OutboxStore

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_NAME_ATTEMPTS = 20
ACTOR = "tocsin"


class JobFailed(Exception):
    """The job cannot succeed; the text goes on the incident's timeline."""


@dataclass
class JobContext:
    """What job handlers need; built once by the composition root."""

    slack: SlackCaller
    store: OutboxStore
    now: Callable[[], datetime]
    alerts_channel: str | None = None
    oncall_users: Sequence[str] = ()
    oncall_usergroup: str | None = None
    http: aiohttp.ClientSession | None = None
    bot_user_id: str | None = field(default=None)
    # Each person's direct-message channel, learnt from conversations.open (it never changes).
    dm_channels: dict[str, str] = field(default_factory=dict)
    dm_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    wake_timers: Callable[[], None] = lambda: None
    contacts: Contacts = field(default_factory=Contacts)  # pages beyond Slack

    async def once(self, job: Job, step: str, make: Callable[[], Awaitable[T]]) -> T:
        """The result of one step of a job that makes several calls: made and kept the first
        time, read back on every retry, so a retry never repeats a call that was done."""
        steps = job.payload.setdefault("steps", {})
        if step in steps:
            return cast(T, steps[step])
        result = await make()
        steps[step] = result
        await self.store.record_steps(job)
        return result

    async def bot_user(self) -> str:
        """The bot's own user id (auth.test, asked once)."""
        if self.bot_user_id is None:
            self.bot_user_id = str((await self.slack.call("auth.test"))["user_id"])
        return self.bot_user_id

    def event(self, kind: str, text: Rich | str, **data: Any) -> TimelineEvent:
        """A timeline event by Tocsin, now."""
        return TimelineEvent(kind=kind, actor=ACTOR, at=self.now(), text=text, data=data)


Handler = Callable[[JobContext, Job, IncidentView], Awaitable[JobOutcome]]
BatchHandler = Callable[[JobContext, Sequence[Job], IncidentView], Awaitable[JobOutcome]]


@dataclass(frozen=True)
class Batching:
    """How jobs of one kind and incident, due together, are done by one Slack call.

    Each job takes `weight(job)` of the call's `capacity` (a message's blocks, say); the worker
    hands `handler` the oldest due jobs that fit, and every one of them is done when it returns.
    """

    handler: BatchHandler
    weight: Callable[[Job], int]
    capacity: int


def _waiting(reason: str) -> RetryLater:
    return RetryLater(WAITING_POLL, reason, counts_attempt=False)


def incident_channel(view: IncidentView) -> str:
    """The incident's channel, or wait for it."""
    if not view.incident.channel_id:
        raise _waiting(WAITING_FOR_CHANNEL)
    return view.incident.channel_id


def card_channel(view: IncidentView) -> str:
    """The channel, once the card is in it: nothing is posted above the card."""
    channel = incident_channel(view)
    if not view.incident.card_ts:
        raise _waiting(WAITING_FOR_CARD)
    return channel


async def open_channel(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """conversations.create, with a suffix on `name_taken`, adopting our own half-made channel."""
    inc = view.incident
    setup = channel_setup_jobs(inc.id, announce=ctx.alerts_channel is not None)
    if inc.channel_id:
        return JobOutcome(follow_ups=setup)
    attempt = int(job.payload.get("name_attempt", 0))
    name = with_suffix(
        incident_channel_name(inc.opened_at.date(), inc.id, view.slug_source), attempt
    )
    try:
        channel = (await ctx.slack.call("conversations.create", name=name))["channel"]
    except SlackCallError as exc:
        if exc.code != "name_taken":
            raise JobFailed(f"Could not create channel #{name}: {exc.code}") from None
        channel = await _adoptable(ctx, name)
        if channel is None:
            if attempt + 1 >= MAX_NAME_ATTEMPTS:
                raise JobFailed(
                    f"Could not create channel: #{name} and its variants are taken"
                ) from None
            raise _rename(job, attempt + 1) from None
    return JobOutcome(
        incident_patch={"channel_id": channel["id"], "channel_name": channel["name"]},
        events=[
            ctx.event(
                "channel_created", f"Channel #{channel['name']} created", channel=channel["id"]
            )
        ],
        follow_ups=setup,
    )


class Rename(RetryLater):
    """Try the next channel name at once."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(0.0, "name_taken", counts_attempt=False)
        self.payload = payload


def _rename(job: Job, attempt: int) -> Rename:
    return Rename({**job.payload, "name_attempt": attempt})


async def _adoptable(ctx: JobContext, name: str) -> dict[str, Any] | None:
    """A channel of this name that we created and no incident owns: an earlier try that crashed."""
    me = await ctx.bot_user()

    async def list_page(cursor: str) -> dict[str, Any]:
        return await ctx.slack.call(
            "conversations.list",
            types="public_channel",
            exclude_archived=True,
            limit=999,  # "must be an integer under 1000" (REF)
            cursor=cursor,
        )

    channel = await find_channel(list_page, name, max_pages=50)
    if channel is None or channel.get("creator") != me:
        return None
    owned = await ctx.store.incident_with_channel(channel["id"])
    return channel if owned is None else None


async def set_topic(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """conversations.setTopic with severity, state and title."""
    if not view.incident.channel_id:
        return JobOutcome()  # the channel, once made, gets the topic as it is then
    await ctx.slack.call(
        "conversations.setTopic", channel=incident_channel(view), topic=render.channel_topic(view)
    )
    return JobOutcome()


async def post_card(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """Post the alert card; after an uncertain earlier try, find that post, not a second one."""
    blocks = render.render_incident_card(view)
    ts, _ = await post_once(
        ctx,
        job,
        incident_channel(view),
        event_type=ids.CARD_METADATA_EVENT,
        text=render.card_text(view),
        blocks=blocks,
    )
    follow_ups = [
        OutboxJob(
            kind=JobKind.PIN_CARD,
            idem_key=f"pin_card:{view.incident.id}",
            incident_id=view.incident.id,
        )
    ]
    # Updates made while the post was on its way found no card to update: catch up once.
    fresh = await ctx.store.incident_view(view.incident.id)
    if fresh is not None and render.render_incident_card(fresh) != blocks:
        follow_ups.append(card_update_job(view.incident.id))
    return JobOutcome(
        incident_patch={"card_ts": ts},
        events=[ctx.event("card_posted", "Alert card posted", ts=ts)],
        follow_ups=follow_ups,
    )


async def post_once(
    ctx: JobContext,
    job: Job,
    channel: str,
    *,
    history_optional: bool = False,
    event_type: str = ids.POST_METADATA_EVENT,
    key: str | None = None,
    **message: Any,
) -> tuple[str, str]:
    """chat.postMessage tagged with the job's key (or `key`, for one of the job's several
    posts); after an uncertain earlier try, find that post instead of making a second one.
    Returns the message's ts and its channel's id.

    `history_optional`: when the channel's history cannot be read (not a member), post anyway.
    """
    key = key or job.idem_key
    if job.attempts > 0:
        try:
            thread = message.get("thread_ts")
            ts = (await posted_keys(ctx, channel, thread_ts=thread)).get(key)
        except SlackCallError:
            if not history_optional:
                raise
            ts = None
        if ts is not None:
            return ts, channel
    response = await ctx.slack.call(
        "chat.postMessage",
        channel=channel,
        metadata={
            "event_type": event_type,
            "event_payload": {"idem_key": key},
        },
        **message,
    )
    return str(response["ts"]), str(response.get("channel") or channel)


def jobs_metadata(event_type: str, jobs: Sequence[Job]) -> dict[str, Any]:
    """Message metadata naming every job one message does, so a retry can tell it was posted."""
    # Metadata values are strings, numbers, booleans or objects (semantics.md): the list of
    # keys goes as one JSON string.
    keys = json.dumps([j.idem_key for j in jobs])
    return {"event_type": event_type, "event_payload": {"idem_keys": keys}}


async def recent_messages(
    ctx: JobContext, channel: str, *, metadata: bool = False, thread_ts: str | None = None
) -> list[dict[str, Any]]:
    """Where an uncertain earlier try of a job would have left its message or file: the
    channel's last 100 messages, newest first, or the thread of `thread_ts` (a channel's
    history does not show thread replies)."""
    params: dict[str, Any] = {"include_all_metadata": True} if metadata else {}
    if thread_ts is not None:
        thread = await ctx.slack.call(
            "conversations.replies", channel=channel, ts=thread_ts, limit=200, **params
        )
        return list(thread.get("messages", []))
    history = await ctx.slack.call("conversations.history", channel=channel, limit=100, **params)
    return list(history.get("messages", []))


async def posted_keys(
    ctx: JobContext, channel: str, *, thread_ts: str | None = None
) -> dict[str, str]:
    """The job keys tagged on the channel's recent messages (or the thread's), each with its
    message's ts."""
    found: dict[str, str] = {}
    for message in await recent_messages(ctx, channel, metadata=True, thread_ts=thread_ts):
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        keys = [payload.get("idem_key"), *_key_list(payload.get("idem_keys"))]
        found.update({str(key): str(message["ts"]) for key in keys if key})
    return found


def _key_list(value: Any) -> list[Any]:
    """The keys of a message's `idem_keys`: a JSON list in a string (older posts: a list)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []


async def pin_card(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """Pin the card; already pinned is fine."""
    if not view.incident.card_ts:
        raise _waiting(WAITING_FOR_CARD)
    try:
        await ctx.slack.call(
            "pins.add", channel=incident_channel(view), timestamp=view.incident.card_ts
        )
    except SlackCallError as exc:
        if exc.code != "already_pinned":
            raise
    return JobOutcome()


async def update_card(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """Re-render the card in place from the incident as it is now."""
    if not view.incident.card_ts:
        if not view.incident.channel_id:
            return JobOutcome()  # the card, posted later, will show the state as it is then
        raise _waiting(WAITING_FOR_CARD)
    blocks = render.render_incident_card(view)
    message = {"text": render.card_text(view), "blocks": blocks}
    channel, ts = incident_channel(view), view.incident.card_ts

    async def edit() -> bool:
        await ctx.slack.call("chat.update", channel=channel, ts=ts, **message)
        return True

    if not view.copies:
        await edit()
        return JobOutcome()
    # Its copies' edits may be paced (chat.update is Tier 3) and the job tried again: the
    # retry does not edit the card in the channel again, unless the incident changed since.
    await ctx.once(job, f"card:{_digest(message)}", edit)
    for copy in view.copies:
        await _update_copy(ctx, job, view, copy, blocks)
    return JobOutcome()


def _digest(message: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(message, sort_keys=True).encode()).hexdigest()[:16]


async def _update_copy(
    ctx: JobContext, job: Job, view: IncidentView, copy: CardCopy, blocks: list[dict[str, Any]]
) -> None:
    """Edit one copy of the card to the incident's state. A copy that can no longer be edited
    (the person deleted the DM, the channel was archived) is left alone."""
    if copy.kind is CopyKind.DM:
        message: dict[str, Any] = {
            "text": render.dm_card_text(view, copy.label),
            "blocks": blocks,
        }
    else:
        message = {"text": render.announcement_text(view)}

    async def edit() -> bool:
        try:
            await ctx.slack.call("chat.update", channel=copy.channel, ts=copy.ts, **message)
        except SlackCallError as exc:
            if exc.code not in _COPY_GONE:
                raise
            log.info(
                "copy %s/%s of incident %s not edited: %s",
                copy.channel,
                copy.ts,
                view.incident.id,
                exc.code,
            )
        return True

    # A retry (after a 429 on the third copy, say) does not make the same edit again; an
    # update that found the incident changed since makes the new one.
    await ctx.once(job, f"copy:{copy.channel}:{copy.ts}:{_digest(message)}", edit)


# chat.update's errors for a message that cannot be edited (contracts README: chat.update),
# and for a channel that is gone.
_COPY_GONE = frozenset(
    {"message_not_found", "cant_update_message", "channel_not_found", "is_archived"}
)


async def announce(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """Tell the alerts channel, with a link to the incident channel."""
    if not ctx.alerts_channel:
        return JobOutcome()
    incident_channel(view)
    channel = ctx.alerts_channel
    text = render.announcement_text(view)
    try:
        ts, posted_in = await post_once(ctx, job, channel, history_optional=True, text=text)
    except SlackCallError as exc:
        if exc.code != "not_in_channel":
            raise

        async def join() -> bool:
            await ctx.slack.call("conversations.join", channel=channel)
            return True

        await ctx.once(job, "joined", join)
        ts, posted_in = await post_once(ctx, job, channel, history_optional=True, text=text)
    announced = phrase("Announced in ", ref(RefKind.CHANNEL, channel, f"#{channel}"))
    return JobOutcome(
        events=[ctx.event("announced", announced)],
        copies=[CardCopy(CopyKind.ANNOUNCEMENT, posted_in, ts)],
    )


async def post_text_once(
    ctx: JobContext,
    job: Job,
    channel: str,
    *,
    history_optional: bool = False,
    thread_ts: str | None = None,
) -> None:
    """The job's `text` (with its `refs`, or with Slack's tokens), escaped and posted once
    (in the thread of `thread_ts`, when given)."""
    plain = str(job.payload.get("text", ""))
    refs = job.payload.get("refs")
    text = render.slack_text(Rich(plain, refs_from_data(refs)) if refs is not None else plain)
    thread = {"thread_ts": thread_ts} if thread_ts else {}
    await post_once(ctx, job, channel, history_optional=history_optional, text=text, **thread)


async def post_note(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """A short message in the incident channel, once; never above the card. A calm storm's
    note carries a Split button for each group it offers (`split`: [id, title] pairs)."""
    offered = job.payload.get("split")
    if not offered:
        await post_text_once(ctx, job, card_channel(view))
        return JobOutcome()
    text = render.slack_text(str(job.payload.get("text", "")))
    groups = [(int(number), str(title)) for number, title in offered]
    await post_once(ctx, job, card_channel(view), text=text, blocks=split_offer(text, groups))
    return JobOutcome()


async def post_alerts_note(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """A message in the alerts channel, once: a status update, or an outcome in the thread of
    the incident's announcement (which it waits for; announced nowhere, it goes top-level)."""
    if not ctx.alerts_channel:
        return JobOutcome()
    thread = None
    if job.payload.get("thread"):
        announcement = view.announcement()
        if announcement is None and not await ctx.store.announce_settled(view.incident.id):
            raise _waiting(WAITING_FOR_ANNOUNCEMENT)
        thread = announcement.ts if announcement is not None else None
    await post_text_once(ctx, job, ctx.alerts_channel, history_optional=True, thread_ts=thread)
    return JobOutcome()


async def upload_image(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """Upload a PNG to the incident channel: get an upload URL, POST, complete the upload."""
    await upload_png(ctx, job, incident_channel(view))
    return JobOutcome()


async def upload_png(ctx: JobContext, job: Job, channel: str, *, comment: str = "") -> None:
    """Upload the job's `png` (base64) titled `title` into a channel, step by step: a retry
    sends the bytes to the upload URL it got before, and shares the file only if no earlier
    try did (the channel's history says). `comment`: the message text that introduces it."""
    data = base64.b64decode(str(job.payload["png"]))
    title = str(job.payload.get("title") or "graph")
    filename = f"{slugify(title)[:60]}.png"

    async def get_target() -> dict[str, str]:
        got = await ctx.slack.call(
            "files.getUploadURLExternal", filename=filename, length=len(data)
        )
        return {"upload_url": str(got["upload_url"]), "file_id": str(got["file_id"])}

    async def send() -> bool:
        if ctx.http is None:
            raise JobFailed("no HTTP session for uploads")
        try:
            async with ctx.http.post(target["upload_url"], data=data) as response:
                if response.status >= 400:
                    reason = f"upload answered HTTP {response.status}"
                    raise RetryLater(5.0, reason, counts_attempt=True)
        except aiohttp.ClientError as exc:
            reason = f"upload failed: {type(exc).__name__}"
            raise RetryLater(5.0, reason, counts_attempt=True) from None
        return True

    target = await ctx.once(job, "upload_target", get_target)
    await ctx.once(job, "uploaded", send)
    if job.attempts > 0 and await _shared(ctx, channel, target["file_id"]):
        return
    introduced = {"initial_comment": comment} if comment else {}
    await ctx.slack.call(
        "files.completeUploadExternal",
        files=[{"id": target["file_id"], "title": title}],
        channel_id=channel,
        **introduced,
    )


async def _shared(ctx: JobContext, channel: str, file_id: str) -> bool:
    """True when a recent message of the channel carries the file (an earlier try shared it)."""
    try:
        messages = await recent_messages(ctx, channel)
    except SlackCallError:
        return False
    return any(f.get("id") == file_id for message in messages for f in message.get("files") or [])
