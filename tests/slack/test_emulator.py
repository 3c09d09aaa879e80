"""The Slack emulator, driven by the real slack_sdk AsyncWebClient."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.emulator import (
    TIER_METHODS,
    EmulatorState,
    RateLimit,
    SlackEmulator,
    documented_rate_limits,
    sign_request,
)

PAYLOADS = Path("/work/shared/contracts/payloads")
HUMAN = "U0HUMAN0001"
OTHER = "U0HUMAN0002"
BotHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


@asynccontextmanager
async def started(emulator: SlackEmulator) -> AsyncIterator[AsyncWebClient]:
    await emulator.start()
    emulator.add_user(HUMAN, "alice", real_name="Alice")
    emulator.add_user(OTHER, "bob")
    try:
        assert emulator.base_url is not None
        yield AsyncWebClient(
            token=emulator.bot_token, base_url=emulator.base_url, retry_handlers=[]
        )
    finally:
        await emulator.stop()


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(signing_secret="bot-secret")
    async with started(emu):
        yield emu


@pytest.fixture
def client(emulator: SlackEmulator) -> AsyncWebClient:
    assert emulator.base_url is not None
    return AsyncWebClient(token=emulator.bot_token, base_url=emulator.base_url, retry_handlers=[])


async def slack_error(call: Awaitable[Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


async def new_channel(client: AsyncWebClient, name: str = "inc-1") -> str:
    created = await client.conversations_create(name=name)
    channel_id: str = created["channel"]["id"]
    return channel_id


@asynccontextmanager
async def bot_server(handler: BotHandler) -> AsyncIterator[str]:
    """A tiny bot endpoint on a free port; yields its URL."""
    app = web.Application()
    app.router.add_post("/slack/events", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    finally:
        await runner.cleanup()


# --- signing -----------------------------------------------------------------------------------


def test_signature_vector() -> None:
    vector = payload("slack-signature-vector.json")
    body = vector["raw_body"].encode()
    ts = int(vector["x_slack_request_timestamp"])
    assert sign_request(vector["signing_secret"], ts, body) == vector["x_slack_signature"]


# --- auth and dispatch -------------------------------------------------------------------------


async def test_auth_errors_and_unknown_method(emulator: SlackEmulator) -> None:
    assert emulator.base_url is not None
    anonymous = AsyncWebClient(base_url=emulator.base_url, retry_handlers=[])
    assert (await slack_error(anonymous.auth_test())).response["error"] == "not_authed"
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=emulator.base_url, retry_handlers=[])
    assert (await slack_error(wrong.auth_test())).response["error"] == "invalid_auth"
    right = AsyncWebClient(token=emulator.bot_token, base_url=emulator.base_url)
    unknown = await slack_error(right.api_call("chat.doesNotExist"))
    assert unknown.response.status_code == 404
    assert unknown.response["error"] == "unknown_method"
    assert [c.status for c in emulator.calls] == [200, 200, 404]


async def test_auth_test(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    res = await client.auth_test()
    assert res["user_id"] == emulator.bot_user_id == "U0TOCSINBOT"
    assert res["team_id"] == emulator.team_id == "T0EMULATOR"
    assert {"url", "team", "user", "bot_id"} <= set(res.data)


async def test_token_as_form_param_and_blocks_as_json_string(emulator: SlackEmulator) -> None:
    channel = emulator.add_channel("form", members=[emulator.bot_user_id])
    blocks = json.dumps([{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}])
    form = {"token": emulator.bot_token, "channel": channel, "blocks": blocks}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{emulator.base_url}chat.postMessage", data=form) as resp,
    ):
        body = await resp.json()
    assert body["ok"] is True
    assert body["message"]["blocks"][0]["text"]["text"] == "*hi*"
    assert body["message"]["blocks"][0]["block_id"]  # Slack fills missing block ids


# --- channels ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("a" * 81, "invalid_name_maxlength"),
        ("-_-", "invalid_name_punctuation"),
        ("Incident", "invalid_name_specials"),
        ("inc 42", "invalid_name_specials"),
        ("inc.42", "invalid_name_specials"),
    ],
)
async def test_channel_name_rules(client: AsyncWebClient, name: str, error: str) -> None:
    assert (await slack_error(client.conversations_create(name=name))).response["error"] == error


async def test_create_shape_and_name_taken(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    res = await client.conversations_create(name="a" * 80, is_private=True)
    channel = res["channel"]
    expected_keys = set(payload("slack-conversations-create-ok.json")["channel"])
    assert expected_keys <= set(channel)
    assert re.fullmatch(r"C[A-Z0-9]{10}", channel["id"])
    assert channel["creator"] == emulator.bot_user_id
    assert channel["is_member"] is True and channel["is_private"] is True
    taken = await slack_error(client.conversations_create(name="a" * 80))
    assert taken.response.data == payload("slack-conversations-create-name-taken.json")


async def test_name_taken_by_archived_channel(client: AsyncWebClient) -> None:
    channel = await new_channel(client, "old-incident")
    await client.conversations_archive(channel=channel)
    res = await slack_error(client.conversations_create(name="old-incident"))
    assert res.response["error"] == "name_taken"


async def test_invite_rules(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    channel = await new_channel(client)
    await client.conversations_invite(channel=channel, users=HUMAN)
    elsewhere = emulator.add_channel("elsewhere")
    cases = [
        (channel, HUMAN, "already_in_channel"),
        (channel, "U0NOBODY", "user_not_found"),
        (channel, emulator.bot_user_id, "cant_invite_self"),
        ("C0MISSING00", HUMAN, "channel_not_found"),
        (elsewhere, HUMAN, "not_in_channel"),
    ]
    for target, users, error in cases:
        err = await slack_error(client.conversations_invite(channel=target, users=users))
        assert err.response["error"] == error


async def test_invite_is_all_or_nothing_without_force(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    """DOCS conversations.invite: users who could be invited are not invited if any invite
    fails; the answer names each failure in `errors` (REF example)."""
    channel = await new_channel(client)
    await client.conversations_invite(channel=channel, users=HUMAN)
    emulator.add_user("U0CAROL001", "carol")
    # A member already in the channel fails the call: carol is not invited either.
    err = await slack_error(
        client.conversations_invite(channel=channel, users=f"{HUMAN},U0CAROL001")
    )
    assert err.response["error"] == "already_in_channel"
    assert err.response["errors"] == [{"user": HUMAN, "ok": False, "error": "already_in_channel"}]
    err = await slack_error(
        client.conversations_invite(
            channel=channel, users=f"U0NOBODY,{emulator.bot_user_id},U0CAROL001"
        )
    )
    assert err.response["error"] == "user_not_found"
    assert err.response["errors"] == [
        {"user": "U0NOBODY", "ok": False, "error": "user_not_found"},
        {"user": emulator.bot_user_id, "ok": False, "error": "cant_invite_self"},
    ]
    members = await client.conversations_members(channel=channel)
    assert set(members["members"]) == {emulator.bot_user_id, HUMAN}


async def test_invite_with_force_invites_the_valid_ones(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    """REF `force`: continue inviting the valid ones while disregarding invalid IDs; the
    answer lists the disregarded ones in `errors`."""
    channel = await new_channel(client)
    await client.conversations_invite(channel=channel, users=HUMAN)
    emulator.add_user("U0CAROL001", "carol")
    emulator.add_user("U0DAVE0001", "dave")
    emulator.deactivate_user("U0DAVE0001")
    answer = await client.conversations_invite(
        channel=channel, users=f"{HUMAN},U0CAROL001,U0NOBODY,U0DAVE0001", force=True
    )
    assert answer["ok"] is True
    assert answer["errors"] == [
        {"user": HUMAN, "ok": False, "error": "already_in_channel"},
        {"user": "U0NOBODY", "ok": False, "error": "user_not_found"},
        {"user": "U0DAVE0001", "ok": False, "error": "cant_invite"},
    ]
    members = await client.conversations_members(channel=channel)
    assert set(members["members"]) == {emulator.bot_user_id, HUMAN, "U0CAROL001"}
    # Nobody valid left: an error, as without force.
    err = await slack_error(
        client.conversations_invite(channel=channel, users="U0NOBODY", force=True)
    )
    assert err.response["error"] == "user_not_found"


async def test_channel_arguments_are_ids_except_for_posting(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    """REF: conversations.join/invite/setTopic/history, pins.add and chat.update take a
    conversation ID; chat.postMessage also takes a name (and answers with the ID)."""
    public = emulator.add_channel("ops-alerts", members=[HUMAN])
    for call in (
        client.conversations_join(channel="#ops-alerts"),
        client.conversations_join(channel="ops-alerts"),
        client.conversations_setTopic(channel="#ops-alerts", topic="x"),
        client.conversations_history(channel="#ops-alerts"),
        client.conversations_invite(channel="#ops-alerts", users=HUMAN),
        client.pins_add(channel="#ops-alerts", timestamp="1.000001"),
    ):
        assert (await slack_error(call)).response["error"] == "channel_not_found"
    await client.conversations_join(channel=public)
    posted = await client.chat_postMessage(channel="#ops-alerts", text="hello")
    assert posted["channel"] == public
    by_name = await client.chat_postMessage(channel="ops-alerts", text="again")
    assert by_name["channel"] == public
    err = await slack_error(client.chat_update(channel="#ops-alerts", ts=posted["ts"], text="x"))
    assert err.response["error"] == "channel_not_found"


async def test_set_topic_join_and_info(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    channel = await new_channel(client)
    await client.conversations_setTopic(channel=channel, topic="SEV1: api down")
    info = await client.conversations_info(channel=channel)
    assert info["channel"]["topic"]["value"] == "SEV1: api down"
    too_long = await slack_error(client.conversations_setTopic(channel=channel, topic="x" * 251))
    assert too_long.response["error"] == "too_long"
    public = emulator.add_channel("general", members=[HUMAN])
    await client.conversations_join(channel=public)
    assert (await client.conversations_info(channel=public))["channel"]["is_member"] is True


async def test_list_pagination(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    for i in range(5):
        await new_channel(client, f"inc-{i}")
    emulator.add_channel("secret", is_private=True, members=[HUMAN])
    names: list[str] = []
    cursor = None
    while True:
        page = await client.conversations_list(limit=2, cursor=cursor, types="public_channel")
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert names == [f"inc-{i}" for i in range(5)]


# --- messages ----------------------------------------------------------------------------------


async def test_post_update_pin_flow(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    channel = await new_channel(client)
    first = await client.chat_postMessage(channel="#inc-1", text="Incident opened")
    second = await client.chat_postMessage(channel=channel, text="second")
    assert set(payload("slack-chat-postMessage-ok.json")) == set(first.data)
    assert {"bot_id", "subtype", "text", "ts", "type"} <= set(first["message"])
    assert first["channel"] == channel
    assert re.fullmatch(r"\d+\.\d{6}", first["ts"]) and first["ts"] < second["ts"]
    updated = await client.chat_update(channel=channel, ts=first["ts"], text="Incident resolved")
    assert updated["ts"] == first["ts"]
    await client.pins_add(channel=channel, timestamp=first["ts"])
    again = await slack_error(client.pins_add(channel=channel, timestamp=first["ts"]))
    assert again.response["error"] == "already_pinned"
    missing = await slack_error(client.pins_add(channel=channel, timestamp="1.000001"))
    assert missing.response["error"] == "message_not_found"
    pins = await client.pins_list(channel=channel)
    assert [p["message"]["text"] for p in pins["items"]] == ["Incident resolved"]
    history = await client.conversations_history(channel=channel)
    assert [m["text"] for m in history["messages"]] == ["second", "Incident resolved"]
    assert "edited" in history["messages"][1]
    stored = emulator.state.message(channel, first["ts"])
    assert stored is not None and stored.edits[0]["text"] == "Incident opened"


async def test_permalink_and_ephemeral(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    channel = await new_channel(client)
    posted = await client.chat_postMessage(channel=channel, text="hi")
    link = await client.chat_getPermalink(channel=channel, message_ts=posted["ts"])
    no_dot = posted["ts"].replace(".", "")
    assert link["permalink"] == f"https://emulator.slack.local/archives/{channel}/p{no_dot}"
    outsider = await slack_error(client.chat_postEphemeral(channel=channel, user=HUMAN, text="x"))
    assert outsider.response["error"] == "user_not_in_channel"
    await client.conversations_invite(channel=channel, users=HUMAN)
    eph = await client.chat_postEphemeral(channel=channel, user=HUMAN, text="only you")
    assert [m.ephemeral_to for m in emulator.state.messages if m.ts == eph["message_ts"]] == [HUMAN]
    history = await client.conversations_history(channel=channel)
    assert "only you" not in [m["text"] for m in history["messages"]]


async def test_post_errors(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    channel = await new_channel(client)
    archived = await new_channel(client, "archived")
    await client.conversations_archive(channel=archived)
    human_ts = emulator.post_user_message(channel, HUMAN, "from a human")
    post, update = client.chat_postMessage, client.chat_update
    cases: list[tuple[Callable[[], Awaitable[Any]], str]] = [
        (lambda: post(channel="C0MISSING00", text="x"), "channel_not_found"),
        (lambda: client.api_call("chat.postMessage", json={"channel": channel}), "no_text"),
        (lambda: post(channel=channel, text="x" * 40_001), "msg_too_long"),
        (lambda: post(channel=emulator.add_channel("x"), text="x"), "not_in_channel"),
        (lambda: post(channel=archived, text="x"), "is_archived"),
        (lambda: update(channel=channel, ts="1.000001", text="x"), "message_not_found"),
        (lambda: update(channel=channel, ts=human_ts, text="x"), "cant_update_message"),
    ]
    for call, error in cases:
        assert (await slack_error(call())).response["error"] == error


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


async def test_block_kit_limits(client: AsyncWebClient) -> None:
    channel = await new_channel(client)
    await client.chat_postMessage(channel=channel, text="ok", blocks=[header("h")] * 50)
    await client.chat_postMessage(channel=channel, text="ok", blocks=[header("h" * 150)])
    too_many = await slack_error(
        client.chat_postMessage(channel=channel, text="x", blocks=[header("h")] * 51)
    )
    assert too_many.response["error"] == "invalid_blocks"
    long_header = await slack_error(
        client.chat_postMessage(channel=channel, text="x", blocks=[header("h" * 151)])
    )
    assert long_header.response["error"] == "invalid_blocks"
    assert "/blocks/0/text" in long_header.response["response_metadata"]["messages"][0]
    unknown = await slack_error(
        client.chat_postMessage(channel=channel, text="x", blocks=[{"type": "banner"}])
    )
    assert unknown.response["error"] == "invalid_blocks"


async def test_metadata_only_with_include_all_metadata(client: AsyncWebClient) -> None:
    channel = await new_channel(client)
    meta = {"event_type": "incident_opened", "event_payload": {"incident_id": 42}}
    await client.chat_postMessage(channel=channel, text="opened", metadata=meta)
    plain = await client.conversations_history(channel=channel)
    assert "metadata" not in plain["messages"][0]
    full = await client.conversations_history(channel=channel, include_all_metadata=True)
    assert full["messages"][0]["metadata"] == meta


async def test_users_and_usergroups(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    emulator.add_usergroup("S0ONCALL001", "oncall", [HUMAN, OTHER])
    assert (await client.usergroups_users_list(usergroup="S0ONCALL001"))["users"] == [HUMAN, OTHER]
    nope = await slack_error(client.usergroups_users_list(usergroup="S0NOPE"))
    assert nope.response["error"] == "no_such_subteam"
    user = (await client.users_info(user=HUMAN))["user"]
    assert (user["name"], user["real_name"], user["tz"]) == ("alice", "Alice", "UTC")
    gone = await slack_error(client.users_info(user="U0NOBODY"))
    assert gone.response["error"] == "user_not_found"


# --- files and views ---------------------------------------------------------------------------


async def test_file_upload_two_step(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    channel = await new_channel(client)
    res = await client.files_upload_v2(
        channel=channel, content="timeline\n", filename="timeline.txt", initial_comment="export"
    )
    file_id = res["file"]["id"]
    assert emulator.state.files[file_id].content() == b"timeline\n"
    assert [c.method for c in emulator.calls][-2:] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    message = (await client.conversations_history(channel=channel))["messages"][0]
    assert message["text"] == "export"
    assert [f["id"] for f in message["files"]] == [file_id]


async def test_a_file_shared_into_a_dm_reaches_the_person(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    # docs.slack.dev conversations.open: one user in `users` opens (or resumes) the 1:1 DM
    # with the calling bot; the same conversation each time.
    first = (await client.conversations_open(users=HUMAN))["channel"]["id"]
    again = (await client.conversations_open(users=HUMAN))["channel"]["id"]
    assert first == again and first.startswith("D")
    nobody = await slack_error(client.conversations_open(users="U0NOBODY"))
    assert nobody.response["error"] == "user_not_found"

    # files.completeUploadExternal: `channel_id` shares the file there, `initial_comment`
    # is the message text that introduces it.
    res = await client.files_upload_v2(
        channel=first, content=b"png", filename="graph.png", initial_comment="p95 latency"
    )
    (message,) = (await client.conversations_history(channel=first))["messages"]
    assert message["text"] == "p95 latency"
    assert [f["id"] for f in message["files"]] == [res["file"]["id"]]
    dm = emulator.state.channels[first]
    assert dm.is_im and dm.im_user == HUMAN and HUMAN in dm.members


async def test_complete_without_upload_fails(client: AsyncWebClient) -> None:
    url = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    err = await slack_error(client.files_completeUploadExternal(files=[{"id": url["file_id"]}]))
    assert err.response["error"] == "file_not_found"


MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Declare incident"}}


async def test_views_open_needs_a_fresh_unused_trigger() -> None:
    clock = FakeClock()
    emulator = SlackEmulator(clock=clock)
    async with started(emulator) as client:
        bad = await slack_error(client.views_open(trigger_id="1.2.x", view=MODAL))
        assert bad.response["error"] == "invalid_trigger_id"
        trigger = emulator.new_trigger_id(HUMAN)
        await client.views_open(trigger_id=trigger, view=MODAL)
        reused = await slack_error(client.views_open(trigger_id=trigger, view=MODAL))
        assert reused.response["error"] == "exchanged_trigger_id"
        late = emulator.new_trigger_id(HUMAN)
        clock.now += 3.5
        expired = await slack_error(client.views_open(trigger_id=late, view=MODAL))
        assert expired.response["error"] == "expired_trigger_id"


async def test_views_open_and_update(emulator: SlackEmulator, client: AsyncWebClient) -> None:
    opened = await client.views_open(trigger_id=emulator.new_trigger_id(HUMAN), view=MODAL)
    view_id = opened["view"]["id"]
    assert re.fullmatch(r"V[A-Z0-9]{10}", view_id)
    renamed = {**MODAL, "title": {"type": "plain_text", "text": "Declared"}}
    updated = await client.views_update(view_id=view_id, view=renamed)
    assert updated["view"]["title"]["text"] == "Declared"
    long_title = {"type": "modal", "title": {"type": "plain_text", "text": "x" * 25}}
    err = await slack_error(
        client.views_open(trigger_id=emulator.new_trigger_id(HUMAN), view=long_title)
    )
    assert err.response["error"] == "invalid_arguments"


async def test_a_submission_answered_with_update_shows_the_new_view(
    emulator: SlackEmulator, client: AsyncWebClient
) -> None:
    """DOCS (modals, "Updating a view in response to view_submission"): an ack with
    `response_action: update` and a view replaces the modal, which stays open; a plain ack
    closes it."""
    replacement = {
        **MODAL,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Done"}}],
    }
    answers = [json.dumps({"response_action": "update", "view": replacement}), ""]

    async def bot(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text=answers.pop(0), content_type="application/json")

    opened = await client.views_open(trigger_id=emulator.new_trigger_id(HUMAN), view=MODAL)
    view_id = opened["view"]["id"]
    async with bot_server(bot) as url:
        reply, errors = await emulator.send_view_submission(url, view_id, {})
        assert (reply.status, errors) == (200, None)
        assert emulator.state.views[view_id].view == replacement
        await emulator.send_view_submission(url, view_id, {})
    assert view_id not in emulator.state.views


# --- rate limits and latency -------------------------------------------------------------------


def test_documented_rate_limits() -> None:
    limits = documented_rate_limits()
    assert TIER_METHODS["conversations.create"] == 2
    assert TIER_METHODS["chat.postMessage"] == "special"
    assert limits["conversations.create"] == RateLimit(calls=20, window_seconds=60.0)
    assert limits["conversations.invite"].calls == 50
    assert limits["users.info"].calls == 100
    assert limits["chat.postMessage"].calls == 600
    assert limits["chat.postMessage"].per_channel_per_second == 1.0


async def test_429_with_retry_after_and_call_not_performed() -> None:
    emulator = SlackEmulator(rate_limits={"conversations.create": RateLimit(calls=1)})
    async with started(emulator) as client:
        await client.conversations_create(name="first")
        err = await slack_error(client.conversations_create(name="second"))
    assert err.response.status_code == 429
    assert err.response["error"] == "ratelimited"
    assert 1 <= int(err.response.headers["Retry-After"]) <= 60
    assert [c.name for c in emulator.state.channels.values()] == ["first"]
    assert [c.status for c in emulator.calls_to("conversations.create")] == [200, 429]
    assert emulator.violations == []


async def test_violation_when_retry_after_is_ignored() -> None:
    clock = FakeClock()
    limit = RateLimit(calls=1, window_seconds=60, retry_after=5)
    emulator = SlackEmulator(rate_limits={"conversations.create": limit}, clock=clock)
    async with started(emulator) as client:
        await client.conversations_create(name="a")
        await slack_error(client.conversations_create(name="b"))
        assert emulator.violations == []
        clock.now += 4
        await slack_error(client.conversations_create(name="c"))  # ignored Retry-After: 5
        assert [v.params["name"] for v in emulator.violations] == ["c"]
        clock.now += 60
        await client.conversations_create(name="d")  # well behaved: waited
    assert len(emulator.violations) == 1


async def test_per_channel_post_limit_allows_a_short_burst() -> None:
    emulator = SlackEmulator(per_channel_post_limit=1.0, clock=FakeClock())
    async with started(emulator) as client:
        busy, quiet = await new_channel(client, "busy"), await new_channel(client, "quiet")
        for i in range(3):
            await client.chat_postMessage(channel=busy, text=f"burst {i}")
        err = await slack_error(client.chat_postMessage(channel=busy, text="one too many"))
        assert err.response.status_code == 429
        await client.chat_postMessage(channel=quiet, text="other channel is fine")
    assert emulator.violations == []


async def test_well_behaved_client_causes_no_violation() -> None:
    limit = RateLimit(calls=1, window_seconds=1.0)
    emulator = SlackEmulator(rate_limits={"conversations.create": limit})
    async with started(emulator) as client:
        client.retry_handlers = [AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
        await client.conversations_create(name="a")
        await client.conversations_create(name="b")  # 429, waits Retry-After, retries
    assert [c.status for c in emulator.calls_to("conversations.create")] == [200, 429, 200]
    assert emulator.violations == []


async def test_latency_per_method() -> None:
    emulator = SlackEmulator(latency={"auth.test": 0.2})
    async with started(emulator) as client:
        start = time.perf_counter()
        await client.auth_test()
        slow = time.perf_counter() - start
        start = time.perf_counter()
        await client.conversations_list()
        fast = time.perf_counter() - start
    assert slow >= 0.2 > fast


async def test_mounted_as_subapp_uses_the_mount_prefix() -> None:
    emulator = SlackEmulator()
    root = web.Application()
    root.add_subapp("/sandbox/api/", emulator.make_app())
    runner = web.AppRunner(root)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/sandbox/api/"
    try:
        client = AsyncWebClient(token=emulator.bot_token, base_url=base, retry_handlers=[])
        res = await client.files_getUploadURLExternal(filename="a.txt", length=1)
    finally:
        await runner.cleanup()
    assert res["upload_url"].startswith(f"{base}upload/F")


# --- Slack -> bot ------------------------------------------------------------------------------


async def verified_form(request: web.Request, secret: str) -> dict[str, str] | None:
    body = await request.read()
    if not SignatureVerifier(secret).is_valid_request(body, dict(request.headers)):
        return None
    return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


SLASH_FIELDS = [
    "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
    "command", "text", "response_url", "trigger_id",
]  # fmt: skip


async def test_signed_slash_command(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    channel = await new_channel(client)
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        form = await verified_form(request, "bot-secret")
        if form is None:
            return web.Response(status=401)
        seen.append(form)
        reply = {"response_type": "in_channel", "text": "Declared"}
        async with aiohttp.ClientSession() as s, s.post(form["response_url"], json=reply) as r:
            assert r.status == 200
        return web.json_response({"text": "working on it"})

    async with bot_server(handler) as url:
        reply = await emulator.send_slash_command(
            url, "/incident", "declare api down", user_id=HUMAN, channel_id=channel
        )
        forged = await emulator.send_slash_command(
            url, "/incident", "x", user_id=HUMAN, channel_id=channel, signing_secret="wrong"
        )
    assert (reply.status, forged.status) == (200, 401)
    assert list(seen[0]) == SLASH_FIELDS
    assert seen[0]["command"] == "/incident" and seen[0]["text"] == "declare api down"
    assert seen[0]["response_url"].startswith(f"{emulator.base_url}response/")
    assert [p.effect for p in emulator.state.response_posts] == ["in_channel", "ephemeral"]
    history = await client.conversations_history(channel=channel)
    assert history["messages"][0]["text"] == "Declared"


async def test_block_action_replaces_message(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    channel = await new_channel(client)
    button = {"type": "button", "action_id": "ack", "text": {"type": "plain_text", "text": "Ack"}}
    blocks = [{"type": "actions", "block_id": "actions", "elements": [button]}]
    posted = await client.chat_postMessage(channel=channel, text="Alert", blocks=blocks)
    received: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        form = await verified_form(request, "bot-secret")
        assert form is not None
        action = json.loads(form["payload"])
        received.append(action)
        update = {"replace_original": True, "text": "Acked by alice"}
        async with aiohttp.ClientSession() as s, s.post(action["response_url"], json=update):
            pass
        return web.Response()

    async with bot_server(handler) as url:
        reply = await emulator.send_block_action(
            url,
            action_id="ack",
            value="inc-1",
            user_id=HUMAN,
            channel_id=channel,
            message_ts=posted["ts"],
        )
    assert reply.status == 200 and not reply.timed_out
    action = received[0]
    assert set(payload("slack-block-actions.json")) <= set(action)
    assert action["container"]["message_ts"] == posted["ts"]
    assert action["actions"][0]["value"] == "inc-1"
    assert action["actions"][0]["text"]["text"] == "Ack"
    history = await client.conversations_history(channel=channel)
    assert [(m["ts"], m["text"]) for m in history["messages"]] == [(posted["ts"], "Acked by alice")]


async def test_response_url_is_usable_five_times(
    client: AsyncWebClient, emulator: SlackEmulator
) -> None:
    channel = await new_channel(client)
    urls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        form = await verified_form(request, "bot-secret")
        assert form is not None
        urls.append(form["response_url"])
        return web.Response()

    async with bot_server(handler) as url:
        await emulator.send_slash_command(url, "/incident", "", user_id=HUMAN, channel_id=channel)
    statuses = []
    async with aiohttp.ClientSession() as session:
        for i in range(6):
            async with session.post(urls[0], json={"text": f"update {i}"}) as resp:
                statuses.append(resp.status)
    assert statuses == [200] * 5 + [404]
    seen_by_human = [m.text for m in emulator.state.messages if m.ephemeral_to == HUMAN]
    assert seen_by_human == [f"update {i}" for i in range(5)]


async def test_not_started_still_signs_with_dummy_response_url() -> None:
    emulator = SlackEmulator(signing_secret="bot-secret")
    forms: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        form = await verified_form(request, "bot-secret")
        assert form is not None
        forms.append(form)
        return web.Response()

    async with bot_server(handler) as url:
        await emulator.send_slash_command(url, "/incident", "", user_id=HUMAN, channel_id="C1")
    assert forms[0]["response_url"].startswith("http://emulator.invalid/")


# --- state -------------------------------------------------------------------------------------


async def test_state_snapshot_roundtrip(client: AsyncWebClient, emulator: SlackEmulator) -> None:
    channel = await new_channel(client)
    await client.chat_postMessage(channel=channel, text="hello", metadata={"event_type": "x"})
    snapshot = json.loads(json.dumps(emulator.state.to_dict()))
    restored = EmulatorState.from_dict(snapshot)
    assert restored == emulator.state
    assert restored.to_dict() == snapshot


# --- Socket Mode -------------------------------------------------------------------------------


async def test_socket_mode_connection_hello_envelopes_and_acks(emulator: SlackEmulator) -> None:
    """Socket Mode (semantics.md): apps.connections.open takes the app-level token only and
    gives a one-time websocket URL; Slack says hello, then sends envelopes that the app acks
    with their envelope_id (and a payload where the type takes a response)."""
    base = emulator.base_url
    assert base is not None
    async with aiohttp.ClientSession() as session:

        async def open_with(token: str) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(f"{base}apps.connections.open", headers=headers) as r:
                return dict(await r.json())

        assert (await open_with(emulator.bot_token))["error"] == "not_allowed_token_type"
        assert (await open_with("xapp-wrong"))["error"] == "invalid_auth"
        opened = await open_with(emulator.app_token)
        assert opened["ok"] is True and opened["url"].startswith("ws://")
        headers = {"Authorization": f"Bearer {emulator.app_token}"}
        async with session.post(f"{base}auth.test", headers=headers) as r:
            assert (await r.json())["error"] == "not_allowed_token_type"
        async with session.ws_connect(opened["url"]) as socket:
            hello = await socket.receive_json()
            assert hello["type"] == "hello" and hello["num_connections"] == 1

            async def answer() -> dict[str, Any]:
                envelope = await socket.receive_json()
                await socket.send_json(
                    {"envelope_id": envelope["envelope_id"], "payload": {"text": "Got it"}}
                )
                return dict(envelope)

            app = asyncio.ensure_future(answer())
            reply = await emulator.send_slash_command(
                "http://127.0.0.1:9/unused",
                "/incident",
                "declare A & B",
                user_id=HUMAN,
                channel_id="C0NOWHERE01",
            )
            envelope = await app
        assert envelope["type"] == "slash_commands"
        assert envelope["accepts_response_payload"] is True
        assert envelope["payload"]["command"] == "/incident"
        assert envelope["payload"]["text"] == "declare A &amp; B"  # escaped as over HTTP
        assert envelope["payload"]["user_id"] == HUMAN
        assert (reply.status, json.loads(reply.body)) == (200, {"text": "Got it"})
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # the ticket was used
            await session.ws_connect(opened["url"])
        assert refused.value.status == 401


async def test_metadata_outside_the_published_schema_is_ignored_with_a_warning(
    client: AsyncWebClient,
) -> None:
    """DOCS message-metadata: an invalid event_type "returns an invalid_metadata_schema warning
    and is ignored"; event_payload values are strings, numbers, booleans, flat objects or
    lists of them (node SDK MessageMetadata) - a list of strings is not among them."""
    channel = await new_channel(client)
    good = {"event_type": "tocsin_post", "event_payload": {"k": "a", "n": 1, "o": [{"x": True}]}}
    posted = await client.chat_postMessage(channel=channel, text="ok", metadata=good)
    assert "warning" not in posted.data
    for bad in (
        {"event_type": "tocsin.post", "event_payload": {"k": "a"}},
        {"event_type": "tocsin_post", "event_payload": {"keys": ["a", "b"]}},
    ):
        answer = await client.chat_postMessage(channel=channel, text="bad", metadata=bad)
        assert answer["ok"] is True and answer["warning"] == "invalid_metadata_schema"
    history = await client.conversations_history(channel=channel, include_all_metadata=True)
    kept = [m.get("metadata") for m in history["messages"] if m.get("text") in ("ok", "bad")]
    assert kept == [None, None, good]
