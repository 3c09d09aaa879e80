"""Another process holds the SQLite store's write lock (`tocsin db upgrade`, a backup): the
server still answers. Slack requests are acknowledged while the lock is held; webhooks are
stored once it is let go, or, past the wait, refused 503 to be sent again; nothing is lost and
nothing is done twice."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.config import Settings
from bot.store.models import IncidentRow
from tests.builders import make_alert, make_payload
from tests.commands.conftest import Workspace
from tests.harness import RunningBot, eventually, running_bot, running_emulator

HOLD = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE alembic_version SET version_num = version_num")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("COMMIT")
"""


class LockHolder:
    """A process that holds the file's write lock until told to let it go."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "locked\n"

    def holding(self) -> bool:
        return self.proc.poll() is None

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.wait(30) == 0
        for pipe in (self.proc.stdin, self.proc.stdout):
            pipe.close()


@pytest.fixture
def store_file(tmp_path: Path, sqlite_template: Path) -> Path:
    target = tmp_path / "tocsin.db"
    shutil.copy(sqlite_template, target)
    return target


@pytest.fixture
def lock(store_file: Path) -> Iterator[LockHolder]:
    holder = LockHolder(store_file)
    yield holder
    if holder.holding():
        holder.release()


@pytest.fixture
async def bot(store_file: Path) -> AsyncIterator[RunningBot]:
    url = f"sqlite+aiosqlite:///{store_file}"
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(url, emulator, emulator_url) as running,
    ):
        yield running


async def count(bot: RunningBot, model: type) -> int:
    async with bot.app.db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def post_alert(bot: RunningBot, body: bytes) -> tuple[int, dict[str, str], dict]:  # type: ignore[type-arg]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{bot.url}/webhooks/alertmanager",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as response,
    ):
        return response.status, dict(response.headers), await response.json()


BODY = json.dumps(make_payload([make_alert("CheckoutDown", service="checkout")])).encode()


async def test_slack_is_answered_while_another_process_holds_the_lock(
    bot: RunningBot, lock: LockHolder
) -> None:
    ws = Workspace(bot)
    webhook = asyncio.ensure_future(post_alert(bot, BODY))
    declare, token = await ws.command_without_reply("declare Payments are slow sev2")
    # The event loop is free: the command is acknowledged, and help is answered, while the
    # other process still holds the lock and the webhook waits for it.
    assert declare.status == 200 and not declare.timed_out
    help_reply = await ws.command("help")
    assert "declare &lt;title&gt;" in help_reply["text"]
    assert lock.holding() and not webhook.done()

    lock.release()
    status, _headers, answer = await webhook
    assert (status, answer["decision"]) == (200, "open")
    reply = await ws.reply_to(token)
    assert reply["text"].startswith("Declared incident #") and "(sev2)" in reply["text"]

    def incident_channels() -> list[str]:
        return [c.name for c in ws.emulator.state.channels.values() if c.name.startswith("inc-")]

    await eventually(lambda: len(incident_channels()) == 2, what="both incidents' channels")
    assert await count(bot, IncidentRow) == 2
    # The same notification again changes nothing.
    assert (await post_alert(bot, BODY))[2]["decision"] == "duplicate"


async def test_a_webhook_that_waited_too_long_is_refused_503_and_stored_when_sent_again(
    store_file: Path, lock: LockHolder, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{store_file}"

    def quick(settings: Settings) -> None:
        settings.database_lock_wait = 0.2

    caplog.set_level(logging.WARNING, "bot.web")
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(url, emulator, emulator_url, tweak=quick) as bot,
    ):
        status, headers, answer = await post_alert(bot, BODY)
        assert status == 503 and headers["Retry-After"] == "5"
        assert answer == {"ok": False, "error": "the store is busy; send this notification again"}
        assert "alertmanager webhook not stored" in caplog.text
        assert lock.holding()

        lock.release()
        status, _headers, answer = await post_alert(bot, BODY)  # Alertmanager's retry
        assert (status, answer["decision"]) == (200, "open")
        assert await count(bot, IncidentRow) == 1
