"""`tocsin digest`: print a digest (dry run) or post it now."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from bot.cli.digest_text import digest_text
from bot.cli.listen import listening_socket
from bot.clock import SystemClock
from bot.config import Settings
from bot.demo import DemoSources, StoredEpisodes
from bot.services.digest import DigestScheduler
from bot.store.engine import create_engine
from bot.store.models import OutboxJobRow
from bot.store.repository import Database

POST_TIMEOUT_S = 120.0


async def run_digest(settings: Settings, *, post: bool, name: str | None, day: date | None) -> int:
    """Print the digest of `day` (default yesterday), or queue it and see it posted."""
    from bot.main import build_app, build_digests, check_schema
    from bot.main.slack_target import SANDBOX_ALERTS
    from bot.main.sources import build_sources

    clock = SystemClock()
    if post and not settings.sandbox:
        app = await build_app(settings, public_url="http://127.0.0.1:0")
        try:
            if app.digests is None:
                return _fail("digests are not configured")
            # A running `tocsin serve` holds the outbox: queue the posts for it, and take
            # none of its jobs. With no server, this process sends them itself.
            server = await app.ownership.current_holder()
            start = None if server is not None else app.start_background
            return await _post(app.digests, app.db, name, day, start=start, server=server)
        finally:
            await app.close()
    db = Database(create_engine(settings.database_url))
    http = aiohttp.ClientSession()
    demo_server: web.AppRunner | None = None
    try:
        await check_schema(db, settings.database_url)
        demo = None
        if settings.sandbox:  # the sandbox's demo sources, served here while the digest is built
            sock = listening_socket("127.0.0.1", 0)
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"
            demo = DemoSources(base, StoredEpisodes(db, clock.now), clock)
        _, sources = build_sources(settings, http, demo)
        if demo is not None and demo.running:
            served = web.Application()
            demo.mount(served)
            demo_server = web.AppRunner(served, access_log=None)
            await demo_server.setup()
            await web.SockSite(demo_server, sock).start()
        scheduler = build_digests(
            settings,
            db,
            sources,
            default_channel=settings.alerts_channel or SANDBOX_ALERTS,
            now=clock.now,
        )
        if post:  # the sandbox lives in the running `tocsin serve`: its outbox posts this
            return await _post(scheduler, db, name, day, start=None)
        try:
            digest = scheduler.digest(name)
        except KeyError:
            return _fail(f"no digest named {name!r}")
        report = day or clock.now().astimezone(digest.zone).date() - timedelta(days=1)
        print(digest_text(await scheduler.builder.build(digest, report)))
        return 0
    finally:
        if demo_server is not None:
            await demo_server.cleanup()
        await http.close()
        await db.dispose()


async def _post(
    scheduler: DigestScheduler,
    db: Database,
    name: str | None,
    day: date | None,
    *,
    start: Callable[[], Awaitable[None]] | None,
    server: str | None = None,
) -> int:
    try:
        queued = await scheduler.post_now(name, day=day)
    except KeyError:
        return _fail(f"no digest named {name!r}")
    if not queued:
        return _fail("no channel to post to: set alerts_channel or digest.digests[].channels")
    keys = [idem for _, idem in queued]
    channels = ", ".join(channel for channel, _ in queued)
    if start is None and server is None:
        print(f"digest queued for {channels}; the running `tocsin serve` posts it")
        return 0
    if start is not None:
        await start()
    deadline = asyncio.get_running_loop().time() + POST_TIMEOUT_S
    while await _waiting(db, keys):
        if asyncio.get_running_loop().time() > deadline:
            return _fail(f"digest queued for {channels} but not posted within {POST_TIMEOUT_S:g}s")
        await asyncio.sleep(0.2)
    by = f" by the running `tocsin serve` ({server})" if server is not None else ""
    print(f"digest posted to {channels}{by}")
    return 0


async def _waiting(db: Database, keys: list[str]) -> int:
    """Digest jobs (and their charts) not yet done."""
    async with db.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxJobRow)
            .where(
                OutboxJobRow.idem_key.in_(keys + [f"chart:{k}" for k in keys]),
                OutboxJobRow.state.in_(("pending", "running")),
            )
        )
        return int(count or 0)


def _fail(message: str) -> int:
    print(f"tocsin: {message}", file=sys.stderr)
    return 2
