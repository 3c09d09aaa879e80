"""auth, users, usergroups, files and views methods of the Slack emulator."""

from __future__ import annotations

import secrets
from typing import Any

from bot.slack.emulator.blocks import fill_ids, validate_view
from bot.slack.emulator.methods.chat import Content, bot_message
from bot.slack.emulator.methods.conversations import Handler, member_channel
from bot.slack.emulator.params import Ctx, Params, SlackError, missing
from bot.slack.emulator.render import PERMALINK_BASE
from bot.slack.emulator.state import StoredFile, View, new_id

TRIGGER_TTL = 3.0  # seconds a trigger_id stays usable (contracts 1.4)


def auth_test(ctx: Ctx, p: Params) -> dict[str, Any]:
    """auth.test"""
    state = ctx.state
    return {
        "url": f"{PERMALINK_BASE}/",
        "team": state.team_name,
        "user": state.bot_name,
        "team_id": state.team_id,
        "user_id": state.bot_user_id,
        "bot_id": state.bot_id,
        "is_enterprise_install": False,
    }


def users_info(ctx: Ctx, p: Params) -> dict[str, Any]:
    """users.info"""
    user = ctx.state.users.get(p.get_str("user") or "")
    if user is None:
        raise SlackError("user_not_found")
    return {"user": ctx.render.user(user)}


def usergroup_users(ctx: Ctx, p: Params) -> dict[str, Any]:
    """usergroups.users.list"""
    group = ctx.state.usergroups.get(p.get_str("usergroup") or "")
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group.users)}


def get_upload_url(ctx: Ctx, p: Params) -> dict[str, Any]:
    """files.getUploadURLExternal (the URL is an emulator route that takes the bytes by POST)"""
    filename = p.require("filename")
    if p.get_str("length") is None:
        raise missing("length")
    file_id = new_id("F", ctx.state.files)
    ctx.state.files[file_id] = StoredFile(
        id=file_id,
        name=filename,
        length=p.get_int("length", 0),
        user=ctx.state.bot_user_id,
        created=int(ctx.wall),
    )
    return {"upload_url": f"{ctx.base_url}upload/{file_id}", "file_id": file_id}


def _pending_files(ctx: Ctx, p: Params) -> list[tuple[StoredFile, str]]:
    items = p.get_json("files", "invalid_arguments")
    if not isinstance(items, list) or not items:
        raise missing("files")
    found = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise SlackError("invalid_arguments")
        stored = ctx.state.files.get(item["id"])
        if stored is None or not stored.uploaded or stored.completed:
            raise SlackError("file_not_found")
        found.append((stored, str(item.get("title") or stored.name)))
    return found


def complete_upload(ctx: Ctx, p: Params) -> dict[str, Any]:
    """files.completeUploadExternal (shares into channel_id as a message with `files`)"""
    pending = _pending_files(ctx, p)
    ref = p.get_str("channel_id") or (p.get_str("channels") or "").split(",")[0]
    channel = member_channel(ctx, ref) if ref else None
    for stored, title in pending:
        stored.title, stored.completed = title, True
    if channel is not None:
        content = Content(p.get_str("initial_comment"), None, None, None)
        msg = bot_message(ctx, channel.id, content, p.get_str("thread_ts") or None)
        msg.bot_id = None
        msg.files = [stored.id for stored, _ in pending]
        msg.extra.update(upload=True, display_as_bot=False)
        for stored, _ in pending:
            stored.channels.append(channel.id)
    return {"files": [ctx.render.file(stored) for stored, _ in pending]}


def _use_trigger(ctx: Ctx, trigger_id: str) -> str:
    trigger = ctx.state.triggers.get(trigger_id)
    if trigger is None:
        raise SlackError("invalid_trigger_id")
    if trigger.used:
        raise SlackError("exchanged_trigger_id")
    if ctx.now - trigger.issued_at > TRIGGER_TTL:
        raise SlackError("expired_trigger_id")
    trigger.used = True
    return trigger.user


def _view_arg(p: Params) -> dict[str, Any]:
    view = p.get_json("view", "invalid_arguments")
    if view is None:
        raise missing("view")
    errors = validate_view(view)
    if errors:
        raise SlackError("invalid_arguments", messages=errors)
    assert isinstance(view, dict)
    return {**view, "blocks": fill_ids(view.get("blocks", []))}


def _view_json(ctx: Ctx, stored: View) -> dict[str, Any]:
    body, state = stored.view, ctx.state
    return {
        "id": stored.id,
        "team_id": state.team_id,
        "state": {"values": {}},
        "hash": stored.hash,
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        "clear_on_close": False,
        "notify_on_close": False,
        **body,
        "root_view_id": stored.id,
        "previous_view_id": None,
        "app_id": state.app_id,
        "app_installed_team_id": state.team_id,
        "bot_id": state.bot_id,
    }


def _new_hash(ctx: Ctx) -> str:
    return f"{int(ctx.wall)}.{secrets.token_urlsafe(6)}"


def views_open(ctx: Ctx, p: Params) -> dict[str, Any]:
    """views.open"""
    trigger_id = p.require("trigger_id")
    view = _view_arg(p)
    user = _use_trigger(ctx, trigger_id)
    stored = View(id=new_id("V", ctx.state.views), user=user, view=view, hash=_new_hash(ctx))
    ctx.state.views[stored.id] = stored
    return {"view": _view_json(ctx, stored)}


def views_update(ctx: Ctx, p: Params) -> dict[str, Any]:
    """views.update (by view_id or external_id; hash_conflict on a stale hash)"""
    view_id, external_id = p.get_str("view_id"), p.get_str("external_id")
    if not view_id and not external_id:
        raise missing("view_id")
    stored = ctx.state.views.get(view_id or "")
    if stored is None and external_id:
        by_external = (
            v for v in ctx.state.views.values() if v.view.get("external_id") == external_id
        )
        stored = next(by_external, None)
    if stored is None:
        raise SlackError("not_found")
    view = _view_arg(p)
    if p.get_str("hash") and p.get_str("hash") != stored.hash:
        raise SlackError("hash_conflict")
    stored.view, stored.hash = view, _new_hash(ctx)
    return {"view": _view_json(ctx, stored)}


METHODS: dict[str, Handler] = {
    "auth.test": auth_test,
    "files.completeUploadExternal": complete_upload,
    "files.getUploadURLExternal": get_upload_url,
    "usergroups.users.list": usergroup_users,
    "users.info": users_info,
    "views.open": views_open,
    "views.update": views_update,
}
