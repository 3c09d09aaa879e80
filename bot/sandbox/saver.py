"""Keeps the sandbox workspace in the bot's store: loaded at start, saved shortly after changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from typing import Any

from bot.loops.backoff import Backoff
from bot.slack.emulator import EmulatorState, SlackEmulator
from bot.store.sandbox import SandboxStore

log = logging.getLogger(__name__)
DELAY = 0.3  # a burst of API calls (a new incident makes ~10) is saved once


def snapshot(state: EmulatorState) -> dict[str, Any]:
    """The state to save; trigger ids live three seconds and are left out."""
    data = state.to_dict()
    data["triggers"] = {}
    return data


async def load_workspace(store: SandboxStore, emulator: SlackEmulator) -> bool:
    """Put the saved workspace into the emulator; False when nothing usable was saved."""
    data = await store.load()
    if data is None:
        return False
    try:
        state = EmulatorState.from_dict(data)
    except (TypeError, ValueError, KeyError) as exc:
        log.warning("sandbox: the saved workspace is unreadable (%s); starting empty", exc)
        return False
    state.triggers = {}
    emulator.state = state
    return True


class SandboxSaver:
    """Saves the emulator's state after each burst of changes, and once more on stop."""

    def __init__(
        self, store: SandboxStore, emulator: SlackEmulator, now: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.emulator = emulator
        self.now = now
        self.saved_revision = emulator.revision
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        emulator.watch(self._dirty.set)

    def start(self) -> None:
        """Start saving in the background."""
        self._task = asyncio.create_task(self._run(), name="sandbox-saver")

    async def _run(self) -> None:
        backoff = Backoff("sandbox: saving the workspace")
        while True:
            await self._dirty.wait()
            await asyncio.sleep(DELAY)
            self._dirty.clear()
            try:
                await self.save()
            except Exception as error:  # the store may be down for a while: keep the page working
                self._dirty.set()  # and save it once the store is back
                await asyncio.sleep(backoff.failed(error))
            else:
                backoff.succeeded()

    async def save(self) -> None:
        """Save the workspace now."""
        revision = self.emulator.revision
        await self.store.save(snapshot(self.emulator.state), revision=revision, at=self.now())
        self.saved_revision = revision

    async def stop(self) -> None:
        """Stop, saving what the last burst changed."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.saved_revision != self.emulator.revision:
            await self.save()


async def open_sandbox(
    store: SandboxStore, emulator: SlackEmulator, now: Callable[[], datetime]
) -> SandboxSaver:
    """Load the saved workspace into the emulator; return the saver that keeps it."""
    if await load_workspace(store, emulator):
        state = emulator.state
        log.info(
            "sandbox: restored %d channels and %d messages",
            len(state.channels),
            len(state.messages),
        )
    return SandboxSaver(store, emulator, now)
