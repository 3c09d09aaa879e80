"""Benchmark: building and rendering the daily digest over a store with a long history.

A fresh store (SQLite file, or with `--database-url` a fresh database on that Postgres server,
dropped afterwards) is migrated with `schema.upgrade` and filled with Core inserts in batches:
10,000 incidents opened over the 90 days before today (UTC midnight), most acknowledged within
an hour and resolved within three days, sev1..sev4 and a channel each, and 1,000,000
timeline_events rows spread over them (the digest does not read them: they make the store as
big as a busy year would).

Timed, each `--runs` times after one untimed warm-up, in seconds:

  * build           DigestBuilder.build of yesterday with the shipped KPI definitions
                    (`DigestSettings().definitions()`) and KpiSources() empty: the incident
                    statistics are computed, the Prometheus and Supabase KPIs come back as
                    "not configured" at once.
  * render          `bot.slack.workspace_jobs.digest_jobs` of that digest: Block Kit and the
                    trend chart. The shipped charted KPIs are Prometheus and Supabase ones, so
                    with them unavailable there is no chart to draw.
  * render_chart    the same for a digest whose Prometheus and Supabase KPIs have values (an
                    in-process stub answers every query at once), so the PNG has its panels.

Prints one JSON object on stdout (median and max per measure); progress on stderr. Run from
the repository root:

    python tests/benchmarks/digest.py [--runs 5] [--database-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import asyncpg  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bot.config.digest import DigestSettings  # noqa: E402
from bot.domain.digest import Digest  # noqa: E402
from bot.domain.digest_schedule import ScheduledDigest  # noqa: E402
from bot.domain.incidents import Severity  # noqa: E402
from bot.services.digest import DigestBuilder, KpiSources  # noqa: E402
from bot.slack.outbox.workspace_jobs import digest_jobs  # noqa: E402
from bot.store import schema  # noqa: E402
from bot.store.digest import DigestStore  # noqa: E402
from bot.store.engine import create_engine  # noqa: E402
from bot.store.models import IncidentRow, TimelineEventRow  # noqa: E402
from bot.store.repository import Database  # noqa: E402
from tests.benchmarks.ingest import machine  # noqa: E402

log = logging.getLogger("bench.digest")

SEVERITIES = (Severity.SEV1, Severity.SEV2, Severity.SEV3, Severity.SEV4)
SEVERITY_WEIGHTS = (1, 3, 10, 6)
EVENT_KINDS = ("alert", "ack", "note", "escalated", "diagnostic", "resolved")


# --- data -------------------------------------------------------------------------------------


def incident_rows(count: int, days: int, end: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """`count` incidents opened over the `days` before `end`, oldest first."""
    span = days * 86400.0
    opened = sorted(end - timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
    rows = []
    for n, at in enumerate(opened, start=1):
        acked = at + timedelta(seconds=rng.uniform(30, 3600)) if rng.random() < 0.9 else None
        resolved: datetime | None = at + timedelta(seconds=rng.uniform(600, 3 * 86400))
        if resolved is not None and (resolved >= end or rng.random() < 0.03):
            resolved = None
        status = "resolved" if resolved else ("acknowledged" if acked else "triggered")
        key = f"bench:{n}"
        rows.append(
            {
                "key": key,
                "current_key": key,
                "source": "alertmanager",
                "title": f"HighErrorRate on svc-{n % 50:02d}",
                "slug_source": f"higherrorrate-svc-{n % 50:02d}",
                "severity": rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0].value,
                "status": status,
                "opened_at": at,
                "acknowledged_at": acked,
                "acknowledged_by": "U0BENCH" if acked else None,
                "resolved_at": resolved,
                "resolved_by": "U0BENCH" if resolved else None,
                "auto_resolve": False,
                "labels": {"service": f"svc-{n % 50:02d}"},
                "group_labels": {"alertname": "HighErrorRate"},
                "external_url": "",
                "channel_id": f"C{n:08d}",
                "channel_name": f"inc-{n}-higherrorrate",
                "updated_at": resolved or acked or at,
            }
        )
    return rows


def event_rows(
    incidents: Sequence[dict[str, Any]], count: int, rng: random.Random
) -> Iterator[list[dict[str, Any]]]:
    """`count` timeline events, each on a random incident after its opening, in batches."""
    batch: list[dict[str, Any]] = []
    for n in range(count):
        incident_id = rng.randrange(len(incidents))
        opened: datetime = incidents[incident_id]["opened_at"]
        batch.append(
            {
                "incident_id": incident_id + 1,  # a fresh table numbers rows from 1
                "at": opened + timedelta(seconds=rng.uniform(0, 86400)),
                "kind": EVENT_KINDS[n % len(EVENT_KINDS)],
                "actor": "U0BENCH",
                "text": f"event {n} of the benchmark",
                "data": {},
            }
        )
        if len(batch) == 10_000:
            yield batch
            batch = []
    if batch:
        yield batch


async def fill(db: Database, *, incidents: int, events: int, days: int, end: datetime) -> float:
    """Insert the incidents and events; the seconds it took."""
    rng = random.Random(20260101)  # the same store every run
    began = time.perf_counter()
    rows = incident_rows(incidents, days, end, rng)
    async with db.session() as session:
        await session.execute(insert(IncidentRow), rows)
    loaded = 0
    for batch in event_rows(rows, events, rng):
        async with db.session() as session:
            await session.execute(insert(TimelineEventRow), batch)
        loaded += len(batch)
        if loaded % 200_000 == 0:
            log.info("%d timeline events", loaded)
    async with db.sessions() as session:
        counted = await session.scalar(select(func.count()).select_from(TimelineEventRow))
    assert counted == events, counted
    return time.perf_counter() - began


# --- sources ----------------------------------------------------------------------------------


class InstantSources:
    """Prometheus and Supabase stand-ins that answer every KPI at once with a gentle wave."""

    async def values_at(self, query: str, moments: Sequence[datetime]) -> list[float | None]:
        return [0.01 + 0.002 * (i % 3) for i, _ in enumerate(moments)]

    async def values_for(
        self, sql: str, windows: Sequence[tuple[datetime, datetime]]
    ) -> list[float | None]:
        return [1000.0 + 37 * i for i, _ in enumerate(windows)]


# --- timing -----------------------------------------------------------------------------------


async def timed(work: Callable[[], Awaitable[Any]], runs: int) -> tuple[dict[str, Any], Any]:
    """One untimed warm-up, then `runs` timed calls; their median and max, and the last result."""
    result = await work()
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        result = await work()
        seconds.append(time.perf_counter() - began)
    summary = {
        "median_s": round(statistics.median(seconds), 4),
        "max_s": round(max(seconds), 4),
        "runs": [round(s, 4) for s in seconds],
    }
    return summary, result


def describe(digest: Digest) -> dict[str, Any]:
    return {
        "kpis": len(digest.values),
        "unavailable": sum(1 for v in digest.values if v.error is not None),
        "opened": digest.stats.opened,
        "resolved": digest.stats.resolved,
        "still_open": digest.stats.still_open,
        "mtta_s": digest.stats.mtta and round(digest.stats.mtta),
        "mttr_s": digest.stats.mttr and round(digest.stats.mttr),
        "charted": [v.kpi.name for v in digest.charted],
    }


async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fill the store at `url`, then time building and rendering."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday: date = (end - timedelta(days=1)).date()
    db = Database(create_engine(url))
    try:
        load_s = await fill(
            db, incidents=args.incidents, events=args.events, days=args.days, end=end
        )
        log.info("loaded in %.1f s", load_s)
        kpis = DigestSettings().definitions()
        config = ScheduledDigest()
        runs = DigestStore(db)
        plain = DigestBuilder(runs=runs, sources=KpiSources(), kpis=kpis)
        stub = InstantSources()
        full = DigestBuilder(runs=runs, sources=KpiSources(metrics=stub, database=stub), kpis=kpis)

        build, digest = await timed(lambda: plain.build(config, yesterday), args.runs)
        log.info("build: %s", build)
        render, jobs = await timed(lambda: digest_jobs(digest, "C0BENCH", "bench"), args.runs)
        charted = await full.build(config, yesterday)
        render_chart, chart_jobs = await timed(
            lambda: digest_jobs(charted, "C0BENCH", "bench"), args.runs
        )
        png = chart_jobs[0].payload.get("png")
        return {
            "store": make_url(url).get_backend_name(),
            "incidents": args.incidents,
            "timeline_events": args.events,
            "days": args.days,
            "load_s": round(load_s, 2),
            "build": {**build, "digest": describe(digest)},
            "render": {
                **render,
                "blocks": len(jobs[0].payload["blocks"]),
                "chart": "png" in jobs[0].payload,
            },
            "render_chart": {
                **render_chart,
                "blocks": len(chart_jobs[0].payload["blocks"]),
                "charted": len(charted.charted),
                "png_bytes": len(base64.b64decode(png)) if png else 0,
            },
        }
    finally:
        await db.dispose()


# --- stores -----------------------------------------------------------------------------------


@asynccontextmanager
async def sqlite_store(keep: bool) -> AsyncIterator[str]:
    """A migrated SQLite file in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="tocsin-bench-digest-"))
    url = f"sqlite+aiosqlite:///{folder / 'tocsin.db'}"
    try:
        await asyncio.to_thread(schema.upgrade, url)  # Alembic runs its own event loop
        yield url
    finally:
        if keep:
            log.info("kept %s", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def postgres_store(server_url: str, keep: bool) -> AsyncIterator[str]:
    """A fresh database on the server of `server_url`, migrated, dropped at the end."""
    server = make_url(server_url)
    name = f"tocsin_bench_{uuid.uuid4().hex[:8]}"
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(schema.upgrade, url)
        yield url
    finally:
        if keep:
            log.info("kept database %s", name)
        else:
            await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark on the store asked for."""
    report: dict[str, Any] = {"machine": machine()}
    if args.database_url:
        async with postgres_store(args.database_url, args.keep) as url:
            report["postgres"] = await bench(url, args)
    else:
        async with sqlite_store(args.keep) as url:
            report["sqlite"] = await bench(url, args)
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        help="a Postgres server (postgresql+asyncpg://user@host:port/db): a fresh database is "
        "created on it and dropped afterwards; default: a SQLite file",
    )
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000, help="timeline_events rows")
    parser.add_argument("--days", type=int, default=90, help="history the incidents span")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each measure")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    args = parser.parse_args(argv)
    if args.database_url and make_url(args.database_url).get_backend_name() != "postgresql":
        parser.error("--database-url must be a postgresql+asyncpg:// URL")
    if min(args.incidents, args.runs, args.days) < 1 or args.events < 0:
        parser.error("counts must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its JSON report."""
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    report = asyncio.run(run(args))
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
