"""An upload is three calls (an upload URL, the bytes, the share); each is a recorded step,
so a 429 on the share or a share whose answer was lost neither uploads nor shares twice."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from bot.domain.outbox import JobKind, OutboxJob
from bot.slack.emulator import RateLimit, SlackEmulator
from bot.store.digest import DigestStore
from tests.harness import RunningBot, eventually, running_bot, running_emulator

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()


async def upload(bot: RunningBot, channel: str, key: str) -> None:
    job = OutboxJob(
        kind=JobKind.UPLOAD_CHART,
        idem_key=key,
        payload={"channel": channel, "png": PNG, "title": "KPI trends"},
    )
    await DigestStore(bot.app.db).enqueue([job], now=datetime.now(UTC))
    bot.app.worker.wake()


def shared(emulator: SlackEmulator, channel: str) -> list[str]:
    return [f for m in emulator.state.channel_messages(channel) for f in m.files]


async def test_a_lost_share_answer_is_not_shared_again(database_url: str) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as bot,
    ):
        channel = emulator.add_channel("kpis", members=[emulator.bot_user_id])
        emulator.lose_answers("files.completeUploadExternal")
        await upload(bot, channel, "chart:lost")
        await eventually(bot.app.worker.store.depth_is_zero, timeout=30, what="the job done")
        assert len(emulator.calls_to("conversations.history")) == 1  # the retry looked
        assert len(shared(emulator, channel)) == 1
        assert len(emulator.calls_to("files.getUploadURLExternal")) == 1
        assert [c.status for c in emulator.calls_to("files.completeUploadExternal")] == [503]


async def test_a_429_on_the_share_shares_the_same_file_once(database_url: str) -> None:
    async with (
        running_emulator() as (emulator, url),
        running_bot(database_url, emulator, url) as bot,
    ):
        channel = emulator.add_channel("kpis", members=[emulator.bot_user_id])
        emulator.set_rate_limit(
            "files.completeUploadExternal", RateLimit(calls=1, window_seconds=2, retry_after=1)
        )
        await upload(bot, channel, "chart:one")
        await eventually(lambda: len(shared(emulator, channel)) == 1, what="the first chart")
        await upload(bot, channel, "chart:two")
        await eventually(lambda: len(shared(emulator, channel)) == 2, timeout=30, what="both")
        assert len(set(shared(emulator, channel))) == 2
        completes = [c.status for c in emulator.calls_to("files.completeUploadExternal")]
        assert completes[0] == completes[-1] == 200 and set(completes[1:-1]) == {429}
        assert len(emulator.calls_to("files.getUploadURLExternal")) == 2
