"""The polling loops' wake-up: a storm of wakes costs one pass per gap, urgent wakes none.

Time is a virtual clock the test moves: `bot.loops.wakeup` reads it for its gaps and sleeps on it,
so what is asserted is which wakes start a pass, never how long anything took.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable

import pytest

import bot.loops.wakeup
from bot.loops.wakeup import Wakeup

# Binary fractions, so virtual instants add up exactly.
GAP = 1 / 16
HOUR = 3600.0  # a wait's timeout no test reaches: only a wake can end it


class VirtualTime:
    """time.monotonic and asyncio.sleep for `bot.loops.wakeup`; sleeps end when the test moves
    time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self.events: list[TrackedEvent] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, future))
        await future

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [(at, f) for at, f in self.sleepers if at <= self.now]
        self.sleepers = [(at, f) for at, f in self.sleepers if at > self.now]
        for _, future in due:
            future.set_result(None)

    def blocked(self) -> bool:
        """Nothing can go on until the test wakes it or moves time: a gap is being slept out,
        or a wait has found no wake."""
        return bool(self.sleepers) or any(e.waiting and not e.is_set() for e in self.events)


class TrackedEvent(asyncio.Event):
    """An Event that knows whether someone waits on it."""

    def __init__(self, clock: VirtualTime) -> None:
        super().__init__()
        self.waiting = False
        clock.events.append(self)

    async def wait(self) -> bool:  # type: ignore[override]
        self.waiting = True
        try:
            return await super().wait()
        finally:
            self.waiting = False


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualTime:
    virtual = VirtualTime()
    monkeypatch.setattr(bot.loops.wakeup, "time", virtual)
    monkeypatch.setattr(bot.loops.wakeup, "asyncio", VirtualAsyncio(virtual))
    return virtual


class VirtualAsyncio(types.SimpleNamespace):
    """asyncio as `bot.loops.wakeup` sees it: its sleeps and events are the virtual clock's."""

    def __init__(self, clock: VirtualTime) -> None:
        super().__init__(Event=lambda: TrackedEvent(clock), sleep=clock.sleep)

    def __getattr__(self, name: str) -> object:
        return getattr(asyncio, name)


async def settle(until: Callable[[], bool]) -> None:
    """Let the other tasks run until `until()` holds (it must, within a few loop turns)."""
    for _ in range(1000):
        if until():
            return
        await asyncio.sleep(0)
    raise AssertionError("the loop never settled")


async def passes_during(
    clock: VirtualTime, wakeup: Wakeup, seconds: float, *, wake_every: float, now: bool
) -> int:
    """How many passes a loop makes while something wakes it every `wake_every` seconds."""
    passes = 0
    stopped = False

    async def loop() -> None:
        nonlocal passes
        while not stopped:
            passes += 1
            await wakeup.wait(HOUR)

    running = asyncio.create_task(loop())
    await settle(clock.blocked)
    for _ in range(round(seconds / wake_every)):
        wakeup.set(now=now)
        await settle(clock.blocked)
        clock.advance(wake_every)
        await settle(clock.blocked)
    stopped = True
    wakeup.set(now=True)
    clock.advance(GAP)  # a gap being slept out ends too
    await asyncio.wait_for(running, 30)  # a hang guard only
    return passes


async def test_many_wakes_share_a_pass_per_gap(clock: VirtualTime) -> None:
    wakeup = Wakeup(min_gap=GAP)
    passes = await passes_during(clock, wakeup, 0.5, wake_every=1 / 1024, now=False)
    # The first pass, one for the first wake, then one per gap (0.5 s / 1/16 s): about 10,
    # not one per wake (512).
    assert 8 <= passes <= 11, passes


async def test_urgent_wakes_skip_the_gap(clock: VirtualTime) -> None:
    wakeup = Wakeup(min_gap=GAP)
    wakes = 64
    passes = await passes_during(clock, wakeup, wakes / 256, wake_every=1 / 256, now=True)
    # 16 wakes per gap, each answered by a pass of its own.
    assert passes >= wakes, passes


async def test_a_wake_within_the_gap_waits_out_the_rest_of_it(clock: VirtualTime) -> None:
    wakeup = Wakeup(min_gap=GAP)
    wakeup.set(now=True)
    await wakeup.wait(HOUR)  # a pass starts at 0
    clock.advance(GAP / 4)
    wakeup.set()
    waiting = asyncio.create_task(wakeup.wait(HOUR))
    await settle(lambda: waiting.done() or clock.blocked())
    assert not waiting.done()  # sleeping out the gap
    clock.advance(GAP / 2)
    await settle(lambda: waiting.done() or clock.blocked())
    assert not waiting.done()
    clock.advance(GAP / 4)  # the gap is over
    await asyncio.wait_for(waiting, 30)  # a hang guard only


async def test_a_wake_after_a_quiet_spell_is_answered_at_once(clock: VirtualTime) -> None:
    wakeup = Wakeup(min_gap=GAP)
    wakeup.set(now=True)
    await wakeup.wait(HOUR)  # a pass starts at 0
    clock.advance(GAP + GAP / 2)  # quiet for longer than the gap
    wakeup.set()
    waiting = asyncio.create_task(wakeup.wait(HOUR))
    # Time does not move: only the wake can end this wait, and no gap may hold it.
    await settle(lambda: waiting.done() or clock.blocked())
    assert waiting.done()
    assert clock.sleepers == []


async def test_a_wait_lasts_until_it_is_woken(clock: VirtualTime) -> None:
    wakeup = Wakeup(min_gap=GAP)
    waiting = asyncio.create_task(wakeup.wait(HOUR))
    await settle(clock.blocked)
    assert not waiting.done()  # no wake, and an hour's timeout: nothing can end it but a wake
    wakeup.set(now=True)
    await asyncio.wait_for(waiting, 30)  # a hang guard only


async def test_without_a_wake_the_timeout_ends_the_wait() -> None:
    wakeup = Wakeup(min_gap=0.05)
    # Nothing wakes it: returning at all means the timeout ended the wait.
    await asyncio.wait_for(wakeup.wait(0.01), 30)  # the outer timeout is a hang guard only
