"""Pages: invite a level's people, mention them in the channel, send each the card in a DM, and
say who could not be reached and why.

A page takes several Slack calls. Each call that changes something is a job of its own (the
mention, each DM) or a recorded step of one (the invitations), so a call that is paced,
answered 429, or lost with its process is retried alone: a retry never repeats a mention, an
invitation or a DM that was made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.contacts import plan_page, reach_check_job, rule_page
from bot.domain.outbox import JobKind, OutboxJob, card_update_job, note_job, person_dm_job
from bot.domain.text import Piece, Rich, join, phrase, usergroup
from bot.domain.text import user as person
from bot.domain.views import CardCopy, CopyKind, IncidentView
from bot.errors import SlackCallError
from bot.slack import render
from bot.slack.outbox.jobs import JobContext, incident_channel, post_once
from bot.store.outbox import Job, JobOutcome

INVITE_BATCH = 100  # users per conversations.invite (REF)
MEMBER = "already_in_channel"  # not a failure: the person is in the channel


@dataclass(frozen=True)
class Invites:
    """Who is in the channel after inviting, and who could not be invited, with Slack's reason."""

    reached: list[str]
    failed: dict[str, str]


async def invite_people(ctx: JobContext, job: Job, channel: str, users: Sequence[str]) -> Invites:
    """Invite `users` (those already in the channel count as reached); one person who cannot be
    invited does not keep the others out (`force`)."""
    failed: dict[str, str] = {}
    for number, start in enumerate(range(0, len(users), INVITE_BATCH)):
        batch = list(users[start : start + INVITE_BATCH])

        async def call(batch: list[str] = batch) -> dict[str, str]:
            return await _invite(ctx, channel, batch)

        failed.update(await ctx.once(job, f"invite:{number}", call))
    return Invites([u for u in users if u not in failed], failed)


async def _invite(ctx: JobContext, channel: str, users: list[str]) -> dict[str, str]:
    try:
        answer = await ctx.slack.call(
            "conversations.invite", channel=channel, users=",".join(users), force=True
        )
    except SlackCallError as exc:
        # Nobody could be invited: each person's reason, or the call's own for all of them.
        answer = exc.response if exc.response.get("errors") else {}
        if not answer:
            return {user: exc.code for user in users if exc.code != MEMBER}
    errors = {str(e.get("user")): str(e.get("error")) for e in answer.get("errors") or []}
    return {user: error for user, error in errors.items() if error != MEMBER}


async def reach(
    ctx: JobContext, job: Job, channel: str, users: Sequence[str], groups: Sequence[str]
) -> Invites:
    """Everyone `users` and `groups` name, invited into `channel`: who is in it now, and who
    (or which group) could not be reached, with Slack's reason."""
    people, failed = await _people(ctx, job, users, groups)
    invites = await invite_people(ctx, job, channel, people) if people else Invites([], {})
    return Invites(invites.reached, {**failed, **invites.failed})


async def _people(
    ctx: JobContext, job: Job, named: Sequence[str], groups: Sequence[str]
) -> tuple[list[str], dict[str, str]]:
    """The users named and the groups' members (not the bot), and the groups that could not be
    read, with Slack's reason."""
    users = [str(u) for u in named]
    failed: dict[str, str] = {}
    for group in groups:

        async def members(group: str = str(group)) -> dict[str, Any]:
            try:
                answer = await ctx.slack.call("usergroups.users.list", usergroup=group)
            except SlackCallError as exc:
                return {"error": exc.code}
            return {"users": [str(u) for u in answer.get("users", [])]}

        found = await ctx.once(job, f"members:{group}", members)
        if "error" in found:
            failed[f"subteam^{group}"] = str(found["error"])
        users += [str(u) for u in found.get("users", [])]
    me = await ctx.bot_user() if users else None
    return [u for u in dict.fromkeys(users) if u != me], failed


def _who(ref: str) -> Rich:
    """A person, or a user group (`subteam^S…`, as `reach` names one)."""
    return usergroup(ref.removeprefix("subteam^")) if ref.startswith("subteam^") else person(ref)


def _reasons(failed: dict[str, str]) -> Rich:
    return join([phrase(_who(ref), f" ({reason})") for ref, reason in failed.items()])


def page_text(
    label: str,
    reached: Sequence[str],
    failed: dict[str, str],
    then: str | None,
    services: Sequence[str] = (),
) -> Rich:
    """The page's message in the incident channel: who (and which paging service) is paged,
    and who could not be."""
    if not reached and services:
        told = ", ".join(services)
        return phrase(f":rotating_light: Paging {label}: {told} — please acknowledge.")
    if not reached:
        why: tuple[Piece, ...] = (
            (": ", _reasons(failed), ".") if failed else (": it names nobody.",)
        )
        moving = f" Paging {then} now." if then else " The policy has no further level."
        return phrase(f":warning: Nobody at {label} could be paged", *why, moving)
    mentions = join([person(u) for u in reached], " ")
    also = f" (and {', '.join(services)})" if services else ""
    lines: list[Piece] = [
        phrase(f":rotating_light: Paging {label}: ", mentions, f"{also} — please acknowledge.")
    ]
    lines += [
        phrase(":warning: ", _who(ref), f" could not be invited: {reason}")
        for ref, reason in failed.items()
    ]
    return join(lines, "\n")


async def notify(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """Page a level: invite its people, then queue the mention and one DM per person reached."""
    channel = incident_channel(view)
    incident_id = view.incident.id
    label = str(job.payload.get("label", "next level"))
    then = job.payload.get("then")
    invites = await reach(
        ctx, job, channel, job.payload.get("users", []), job.payload.get("usergroups", [])
    )
    failed = invites.failed
    services = [str(s) for s in job.payload.get("services", [])]
    text = page_text(label, invites.reached, failed, str(then) if then else None, services)
    # A user group's members were learnt of just now: their own notification rules (or the
    # default rule) start here, as a named person's started when the page was planned.
    named = job.payload.get("users", [])
    members = [user for user in invites.reached if user not in named]
    plan = plan_page(ctx.contacts.people, incident_id, job.idem_key, members, label, ctx.now())
    follow_ups = [note_job(incident_id, f"page:{job.idem_key}", text)]
    follow_ups += [
        dm_job(ctx, incident_id, job.idem_key, user, label)
        for user in invites.reached
        if user in plan.dm_now or (user in named and _dm_now(job, user))
    ]
    follow_ups += plan.jobs
    events = []
    if invites.reached:
        mentions = join([person(u) for u in invites.reached])
        events.append(
            ctx.event("page_reached", phrase(f"Paged {label}: ", mentions), users=invites.reached)
        )
    if failed:
        events.append(
            ctx.event(
                "page_unreachable",
                phrase(f"{label}: not reached: ", _reasons(failed)),
                **failed,
            )
        )
    step = None
    if not invites.reached and not services:
        step = (int(job.payload.get("level", 0)), int(job.payload.get("round", 0)))
        moving = f"paging {then} now" if then else "the policy has no further level"
        events.append(ctx.event("page_failed", f"Nobody at {label} could be paged; {moving}"))
    return JobOutcome(
        events=events, follow_ups=follow_ups, next_level_now=step, timers=list(plan.timers)
    )


def _dm_now(job: Job, user: str) -> bool:
    """Whether the page sends `user`, whom it names, the card in a DM now: unless their
    notification rule starts without it."""
    dm = job.payload.get("dm")
    return dm is None or user in dm


def dm_job(ctx: JobContext, incident_id: int, page: str, user: str, label: str) -> OutboxJob:
    """The DM of one person for one page: straight to its channel when that is known."""
    channel = ctx.dm_channels.get(user)
    if channel is not None:
        payload = {"user": user, "page": page, "label": label, "channel": channel}
        return _post_dm_job(incident_id, payload)
    return person_dm_job(incident_id, user, page=page, label=label)


def _post_dm_job(incident_id: int, payload: dict[str, Any]) -> OutboxJob:
    return OutboxJob(
        kind=JobKind.POST_DM,
        idem_key=f"dm:{payload['page']}:{payload['user']}",
        incident_id=incident_id,
        payload=payload,
    )


async def open_dm(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """conversations.open with one person (the same channel every time), then the DM."""
    user = str(job.payload["user"])
    # Pages of many incidents open the same people's DMs: one call per person is enough.
    async with ctx.dm_locks.setdefault(user, asyncio.Lock()):
        if user not in ctx.dm_channels:
            try:
                opened = await ctx.slack.call("conversations.open", users=user)
            except SlackCallError as exc:
                return _dm_failed(ctx, job, view, user, exc.code)
            ctx.dm_channels[user] = str(opened["channel"]["id"])
    payload = {**job.payload, "channel": ctx.dm_channels[user]}
    payload.pop("steps", None)
    return JobOutcome(follow_ups=[_post_dm_job(view.incident.id, payload)])


async def post_dm(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """The card in the person's DM, once; after an uncertain try, the DM's history says."""
    user = str(job.payload["user"])
    label = job.payload.get("label")
    try:
        ts, channel = await post_once(
            ctx,
            job,
            str(job.payload["channel"]),
            history_optional=True,
            text=render.dm_card_text(view, str(label) if label else None),
            blocks=render.render_incident_card(view),
        )
    except SlackCallError as exc:
        return _dm_failed(ctx, job, view, user, exc.code)
    copy = CardCopy(CopyKind.DM, channel, ts, user=user, label=str(label) if label else None)
    return JobOutcome(
        events=[
            ctx.event(
                "dm_sent",
                phrase("Sent ", person(user), " the card"),
                user=user,
                page=rule_page(job.payload),
            )
        ],
        copies=[copy],
        follow_ups=[card_update_job(view.incident.id)],  # the card says who was paged, when
    )


def _dm_failed(ctx: JobContext, job: Job, view: IncidentView, user: str, reason: str) -> JobOutcome:
    """The timeline says the DM failed; the channel names the person if none of their methods
    worked (bot.slack.outbox.contact_jobs.check_reach)."""
    text = phrase("Could not send ", person(user), f" a direct message: {reason}")
    page = rule_page(job.payload)
    event = ctx.event("dm_failed", text, user=user, page=page, failure=f"Slack DM: {reason}")
    return JobOutcome(
        events=[event], follow_ups=[reach_check_job(view.incident.id, job.idem_key, user, page)]
    )


async def invite_oncall(ctx: JobContext, job: Job, view: IncidentView) -> JobOutcome:
    """Invite the configured on-call users and user group members; name who could not be."""
    groups = [ctx.oncall_usergroup] if ctx.oncall_usergroup else []
    invites = await reach(ctx, job, incident_channel(view), ctx.oncall_users, groups)
    failed = invites.failed
    events = []
    if invites.reached:
        mentions = join([person(u) for u in invites.reached])
        events.append(ctx.event("invited", phrase("Invited ", mentions), users=invites.reached))
    follow_ups = []
    if failed:
        text = phrase("Could not invite on-call: ", _reasons(failed))
        events.append(ctx.event("invite_failed", text, **failed))
        note = phrase(":warning: ", text)
        follow_ups.append(note_job(view.incident.id, f"invite_failed:{job.idem_key}", note))
    return JobOutcome(events=events, follow_ups=follow_ups)
