"""Which process drains the outbox and runs the schedulers: the one holding the store's lease.

Slack's rate budget belongs to the app, and a job must be sent by one sender: so however many
Tocsin processes share a store (a CLI command beside `tocsin serve`, replicas on Postgres),
exactly one, the holder of the `outbox` lease, runs the outbox worker, the timer and digest
schedulers. It renews the lease every `ttl / 3`; a holder that dies stops renewing, and
another process takes the lease over once it expires. A process that loses the lease (its
database was unreachable longer than `ttl`) stops its loops, and tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.loops.backoff import Backoff
from bot.store.lease import LeaseStore

log = logging.getLogger(__name__)
OUTBOX_LEASE = "outbox"
TTL = timedelta(seconds=6)


async def _nothing() -> None:
    return None


def new_holder() -> str:
    """A name for this process that no other process shares: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Ownership:
    """Holds the outbox lease while it can; `on_acquired` starts the loops, `on_lost` stops
    them."""

    def __init__(
        self,
        *,
        leases: LeaseStore,
        now: Callable[[], datetime],
        on_acquired: Callable[[], Awaitable[None]] = _nothing,
        on_lost: Callable[[], Awaitable[None]] = _nothing,
        ttl: timedelta = TTL,
        holder: str | None = None,
        name: str = OUTBOX_LEASE,
    ) -> None:
        self.leases = leases
        self.now = now
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self.ttl = ttl
        self.holder = holder or new_holder()
        self.name = name
        self.holding = False
        self._expires_at = datetime.min.replace(tzinfo=UTC)
        self._stopping = asyncio.Event()
        every = self.ttl.total_seconds() / 3  # the lease is renewed (or tried) this often
        self._asking = Backoff(f"renewing or taking the {name} lease", first=every, cap=every)
        self._starting = Backoff("starting the outbox loops", first=every, cap=every)

    async def try_once(self) -> bool:
        """Take or renew the lease now; start or stop the loops if that changed anything."""
        now = self.now()
        try:
            if self.holding:
                kept = await self.leases.renew(self.name, self.holder, now=now, ttl=self.ttl)
            else:
                kept = await self.leases.acquire(self.name, self.holder, now=now, ttl=self.ttl)
        except Exception as error:
            # The store could not be asked (busy, down). A lease not yet expired is still this
            # process's: no one else can have taken it, so keep working until it runs out.
            kept = self.holding and self.now() < self._expires_at
            self._asking.failed(error)
        else:
            self._asking.succeeded()
            if kept:
                self._expires_at = now + self.ttl
        if kept and not self.holding:
            try:
                await self.on_acquired()
            except Exception as error:
                # The loops could not start (the store went away again): the lease is still
                # this process's, and the next round starts them.
                self._starting.failed(error)
                return False
            self._starting.succeeded()
            self.holding = True
            log.info("this process (%s) now drains the outbox", self.holder)
        elif not kept and self.holding:
            self.holding = False
            log.warning("lost the %s lease: this process stops sending to Slack", self.name)
            await self.on_lost()
        return self.holding

    async def current_holder(self) -> str | None:
        """Who holds the lease now (this process or another), if anyone does."""
        return await self.leases.holder(self.name, now=self.now())

    async def run(self) -> None:
        """Keep the lease (or wait for it) until stopped; the first try is the caller's
        (`try_once` at start), this one renews or tries again every `ttl / 3`."""
        backoff = Backoff(f"the {self.name} lease loop")
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.ttl.total_seconds() / 3)
            if self._stopping.is_set():
                return
            try:
                await self.try_once()
            except Exception as error:  # stopping the loops failed, say: try again next round
                backoff.failed(error)
            else:
                backoff.succeeded()

    async def stop(self) -> None:
        """Stop the loops this process runs and give the lease up for the next holder."""
        self._stopping.set()
        if self.holding:
            self.holding = False
            await self.on_lost()
            try:
                await self.leases.release(self.name, self.holder)
            except Exception:
                log.exception("the %s lease could not be released; it expires by itself", self.name)
