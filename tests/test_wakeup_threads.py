"""A unit of work on the store's thread wakes a loop waiting on the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

from bot.loops.wakeup import Wakeup


async def test_a_wake_from_another_thread_ends_the_wait() -> None:
    wakeup = Wakeup()
    woken = asyncio.Event()

    async def loop() -> None:
        await wakeup.wait(3600.0)  # only the wake can end this wait
        woken.set()

    waiting = asyncio.create_task(loop())
    await asyncio.sleep(0)  # the loop runs up to its wait
    waking = threading.Event()

    def from_the_store_thread() -> None:
        waking.wait()
        time.sleep(0.05)  # let the event loop settle into waiting for I/O
        wakeup.set()

    thread = threading.Thread(target=from_the_store_thread)
    thread.start()
    waking.set()
    # A wake that did not reach the sleeping event loop would leave it waiting for the hour.
    await asyncio.wait_for(woken.wait(), 20)  # a hang guard, not a time bound
    await waiting
    thread.join()
