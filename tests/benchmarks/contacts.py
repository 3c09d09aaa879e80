"""Benchmark: pages beyond Slack in a storm.

50 alert groups arrive at once; each opens an incident whose policy pages the same three
people, each with a three-step rule while the page is unacknowledged: the Slack DM and a push
at once, an email after `--email-after` (default 20 s), a webhook call after `--hook-after`
(default 40 s). Tocsin runs as a real `python -m bot serve` process on SQLite, against a
SlackEmulator with Slack's documented limits, a real SMTP server (aiosmtpd) and a local HTTP
endpoint for apprise's json:// pushes and hooks, all served from this process. Storm mode is
off: each group pages on its own.

Reports: notifications delivered per method, duplicates (the same incident, person and method
delivered twice; goal 0), and the delay from each step's due time (the incident's page, on
its timeline, plus the step's `after`) to its delivery (goal: p99 <= 1 s). Slack DMs are
counted too; their pace is Slack's (one message a second per DM channel), reported apart.
`stages` says where the delay went: the later steps' timers from due to fired, and each
method's job from queued to done. `--keep FILE` keeps a copy of the bot's database.

Output: one JSON object on stdout; progress on stderr. Run from the repository root:

    python tests/benchmarks/contacts.py [--groups 50]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from email import message_from_bytes  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402
import yaml  # noqa: E402
from aiohttp import web  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

from bot.store import schema  # noqa: E402
from tests.builders import make_alert, make_payload  # noqa: E402
from tests.harness import ServeProcess, bot_env, running_emulator  # noqa: E402
from tests.pages import dm_times  # noqa: E402
from tests.realservers import free_port  # noqa: E402

log = logging.getLogger("contacts")
PEOPLE = {"U0ALICE01": "alice", "U0BOB0001": "bob", "U0CAROL01": "carol"}
NUMBER = re.compile(r"#(\d+) ")


class Deliveries:
    """What the outside destinations received: (incident, person, method) -> arrival times."""

    def __init__(self) -> None:
        self.arrived: dict[tuple[int, str, str], list[datetime]] = {}

    def add(self, title: str, user: str, method: str) -> None:
        found = NUMBER.search(title)
        if found is not None:
            key = (int(found.group(1)), user, method)
            self.arrived.setdefault(key, []).append(datetime.now(UTC))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.content)
        user = str(envelope.rcpt_tos[0]).split("@")[0]
        self.add(str(mail["Subject"]), user, "email")
        return "250 OK"

    async def http(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.add(str(body.get("title", "")), request.match_info["user"], request.match_info["m"])
        return web.Response(text="ok")


def config(http_port: int, smtp_port: int, email_after: str, hook_after: str) -> dict[str, Any]:
    """tocsin.yml: one policy paging the three, each with a three-step rule."""
    people = {
        user: {
            "contacts": {
                "push": f"json://127.0.0.1:{http_port}/push/{user}",
                "mail": f"email:{user}@example.com",
                "hook": f"json://127.0.0.1:{http_port}/hook/{user}",
            },
            "rules": [
                {"after": "0s", "notify": ["slack", "push"]},
                {"after": email_after, "notify": ["mail"]},
                {"after": hook_after, "notify": ["hook"]},
            ],
        }
        for user in PEOPLE
    }
    return {
        "alerts_channel": "alerts",
        "storm": False,
        "escalation": {
            "default": "storm",
            "policies": [
                {
                    "name": "storm",
                    "levels": [{"targets": [f"user:{u}" for u in PEOPLE], "timeout": "1h"}],
                }
            ],
        },
        "people": people,
        "notify": {
            "email": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "from": "tocsin@example.com",
                "security": "none",
            }
        },
    }


def paged_at(database: Path) -> dict[int, datetime]:
    """When each incident's first level was paged, from its timeline."""
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT incident_id, min(at) FROM timeline_events WHERE kind = 'paged' "
            "GROUP BY incident_id"
        ).fetchall()
    found = {}
    for incident, at in rows:
        when = datetime.fromisoformat(str(at))
        found[int(incident)] = when if when.tzinfo else when.replace(tzinfo=UTC)
    return found


def stages(database: Path) -> dict[str, Any]:
    """Where the delay goes: a later step's timer from due to fired, and each method's job from
    queued to done (seconds)."""
    with sqlite3.connect(database) as db:
        timers = db.execute(
            "SELECT due_at, fired_at FROM timers "
            "WHERE kind = 'contact_step' AND fired_at IS NOT NULL"
        ).fetchall()
        jobs = db.execute(
            "SELECT json_extract(payload, '$.method'), created_at, updated_at FROM outbox "
            "WHERE kind = 'contact' AND state = 'done'"
        ).fetchall()
    lag = sorted(_seconds(due, fired) for due, fired in timers)
    by_method: dict[str, list[float]] = {}
    for method, queued, done in jobs:
        by_method.setdefault(str(method), []).append(_seconds(queued, done))
    return {
        "timer_due_to_fired": _summary(lag),
        "job_queued_to_done": {m: _summary(sorted(v)) for m, v in by_method.items()},
    }


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


async def run(
    groups: int, email_after: float, hook_after: float, timeout: float, keep: Path | None
) -> dict[str, Any]:
    """The storm, measured."""
    deliveries = Deliveries()
    smtp_port = free_port()
    smtp = Controller(deliveries, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    app = web.Application()
    app.router.add_post("/{m}/{user}", deliveries.http)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    http_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    after = {"push": 0.0, "email": email_after, "hook": hook_after}
    expected = groups * len(PEOPLE) * len(after)
    try:
        with tempfile.TemporaryDirectory(prefix="tocsin-contacts-") as tmp:
            workdir = Path(tmp)
            database = workdir / "contacts.db"
            url = f"sqlite+aiosqlite:///{database}"
            await asyncio.to_thread(schema.upgrade, url)
            settings = config(http_port, smtp_port, f"{email_after:g}s", f"{hook_after:g}s")
            (workdir / "tocsin.yml").write_text(yaml.safe_dump(settings))
            async with running_emulator() as (emulator, emulator_url):
                for user, name in PEOPLE.items():
                    emulator.add_user(user, name)
                serve = ServeProcess(bot_env(url, emulator_url), free_port(), workdir / "s.log")
                serve.env["TOCSIN_CONFIG"] = str(workdir / "tocsin.yml")
                await serve.start()
                try:
                    log.info("%d groups, 3 people, %d notifications beyond Slack", groups, expected)
                    await post_storm(serve.url, groups)
                    deadline = time.monotonic() + timeout
                    while time.monotonic() < deadline:
                        got = sum(len(v) for v in deliveries.arrived.values())
                        if got >= expected and len(dm_times(emulator)) >= groups * len(PEOPLE):
                            break
                        log.info("%d of %d delivered", got, expected)
                        await asyncio.sleep(2)
                    await asyncio.sleep(2)  # anything sent twice has arrived too
                finally:
                    serve.stop()
                pages = paged_at(database)
                where = stages(database)
                dms = dm_times(emulator)
                if keep is not None:
                    shutil.copy(database, keep)
    finally:
        smtp.stop()
        await runner.cleanup()
    return report(deliveries, pages, dms, after, groups, expected) | {"stages": where}


async def post_storm(url: str, groups: int) -> None:
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            name = f"ContactStorm{i:03d}"
            body = make_payload([make_alert(name, service="api")], group=name)
            async with session.post(f"{url}/webhooks/alertmanager", json=body) as response:
                assert response.status == 200, response.status

        await asyncio.gather(*(one(i) for i in range(groups)))


def report(
    deliveries: Deliveries,
    pages: dict[int, datetime],
    dms: list[tuple[tuple[str, str, str], float]],
    after: dict[str, float],
    groups: int,
    expected: int,
) -> dict[str, Any]:
    """The figures."""
    delays: dict[str, list[float]] = {method: [] for method in after}
    for (incident, _user, method), times in deliveries.arrived.items():
        paged = pages.get(incident)
        if paged is not None:
            due = paged + timedelta(seconds=after[method])
            delays[method].append((min(times) - due).total_seconds())
    every = sorted(d for values in delays.values() for d in values)
    per_dm = Counter(key for key, _ in dms)
    return {
        "groups": groups,
        "people": len(PEOPLE),
        "expected_beyond_slack": expected,
        "delivered": {
            m: sum(len(t) for (_, _, mm), t in deliveries.arrived.items() if mm == m) for m in after
        },
        "duplicates": sum(len(t) - 1 for t in deliveries.arrived.values()),
        "slack_dms": len(dms),
        "duplicate_slack_dms": sum(n - 1 for n in per_dm.values()),
        "delay_seconds": {m: _summary(sorted(values)) for m, values in delays.items() if values}
        | {"all": _summary(every)},
    }


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
    return {
        "p50": round(statistics.median(values), 3),
        "p99": round(p99, 3),
        "max": round(values[-1], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--email-after", type=float, default=20.0, help="seconds")
    parser.add_argument("--hook-after", type=float, default=40.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds")
    parser.add_argument("--keep", type=Path, help="copy the bot's SQLite database here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's every SMTP line
    figures = asyncio.run(
        run(args.groups, args.email_after, args.hook_after, args.timeout, args.keep)
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
