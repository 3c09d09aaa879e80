"""The polling loops' wake-up: a storm of wakes costs one pass per gap, urgent wakes none."""

from __future__ import annotations

import asyncio
import time

from bot.wakeup import Wakeup


async def passes_during(wakeup: Wakeup, seconds: float, *, wake_every: float, now: bool) -> int:
    """How many passes a loop makes while something wakes it every `wake_every` seconds."""
    passes = 0
    stop = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal passes
        while time.monotonic() < stop:
            passes += 1
            await wakeup.wait(10.0)

    async def waker() -> None:
        while time.monotonic() < stop:
            wakeup.set(now=now)
            await asyncio.sleep(wake_every)
        wakeup.set(now=True)

    await asyncio.gather(loop(), waker())
    return passes


async def test_many_wakes_share_a_pass_per_gap() -> None:
    passes = await passes_during(Wakeup(min_gap=0.05), 0.5, wake_every=0.001, now=False)
    # 0.5 s / 0.05 s gap: about 10 passes, not one per wake (~500).
    assert 3 <= passes <= 13


async def test_urgent_wakes_skip_the_gap() -> None:
    passes = await passes_during(Wakeup(min_gap=0.05), 0.3, wake_every=0.005, now=True)
    assert passes > 30


async def test_a_wake_after_a_quiet_spell_is_answered_at_once() -> None:
    wakeup = Wakeup(min_gap=0.05)
    wakeup.set(now=True)
    await wakeup.wait(10.0)  # a pass starts now
    await asyncio.sleep(0.06)
    started = time.monotonic()
    wakeup.set()
    await wakeup.wait(10.0)
    assert time.monotonic() - started < 0.03


async def test_without_a_wake_the_timeout_ends_the_wait() -> None:
    started = time.monotonic()
    await Wakeup(min_gap=0.05).wait(0.1)
    assert 0.09 <= time.monotonic() - started < 0.5
