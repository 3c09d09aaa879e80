"""While silenced, each check asks Alertmanager which alerts still fire (a fake AlertSource here;
the real one in tests/end_to_end/test_silenced_resolution.py), on SQLite and Postgres."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.clock import FakeClock
from bot.domain.alerts import Alert
from bot.domain.intake import IntakeRules
from bot.domain.silences import SILENCE_CHECK
from bot.loops.timers import TimerScheduler
from bot.services.alerts import AlertIntake
from bot.services.silence_watch import SilenceWatch
from bot.services.silences import SilenceService
from bot.store.models import TimerRow
from bot.store.repository import Database
from bot.store.timers import TimerStore
from integrations.alertmanager import SilenceError, parse_webhook
from tests.builders import make_alert, make_payload, utc

START = utc("2026-11-26T15:36:00Z")
EVERY = timedelta(seconds=30)
WEB1 = make_alert(service="api", instance="web-1")
WEB2 = make_alert(service="api", instance="web-2")


@dataclass
class FakeSilencer:
    async def create(
        self,
        matchers: Mapping[str, str],
        *,
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        return "s-1"

    async def expire(self, silence_id: str) -> None:
        return None


@dataclass
class FakeAlertmanager:
    """The alerts it holds, by webhook alert; `down` makes it unreachable."""

    held: list[dict] = field(default_factory=list)  # type: ignore[type-arg]
    down: bool = False
    asked: list[dict[str, str]] = field(default_factory=list)

    async def alerts(self, matchers: Mapping[str, str]) -> list[Alert]:
        self.asked.append(dict(matchers))
        if self.down:
            raise SilenceError("Alertmanager unreachable: ClientConnectorError")
        if not self.held:
            return []
        return list(parse_webhook(json.dumps(make_payload(self.held)).encode()).alerts)


@dataclass
class World:
    db: Database
    clock: FakeClock
    intake: AlertIntake
    silences: SilenceService
    alertmanager: FakeAlertmanager
    scheduler: TimerScheduler

    async def notify(self, *alerts: dict) -> None:  # type: ignore[type-arg]
        body = json.dumps(make_payload(list(alerts)))
        await self.intake.ingest(parse_webhook(body.encode()), body=body, now=self.clock.now())

    async def check(self) -> None:
        """Let the next check come due, and run it as the scheduler does."""
        self.clock.advance(seconds=EVERY.total_seconds())
        await self.scheduler.run_due()
        await self.scheduler.drain()

    async def timeline(self) -> list[str]:
        return [e.text for e in await self.db.run(lambda tx: tx.timeline(1))]

    async def pending_checks(self) -> int:
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(TimerRow.id).where(
                    TimerRow.kind == SILENCE_CHECK, TimerRow.state == "pending"
                )
            )
            return len(list(rows))


def world(db: Database) -> World:
    clock = FakeClock(START)
    intake = AlertIntake(
        store=db, rules=IntakeRules(reopen_window=timedelta(minutes=30), auto_resolve=False)
    )
    alertmanager = FakeAlertmanager()
    watch = SilenceWatch(store=db, source=alertmanager, intake=intake, now=clock.now, every=EVERY)
    return World(
        db=db,
        clock=clock,
        intake=intake,
        silences=SilenceService(
            store=db,
            silencer=FakeSilencer(),
            now=clock.now,
            duration=timedelta(hours=1),
            check_every=EVERY,
        ),
        alertmanager=alertmanager,
        scheduler=TimerScheduler(
            db=db,
            store=TimerStore(db),
            handlers={},
            tasks={SILENCE_CHECK: watch.fire},
            now=clock.now,
        ),
    )


async def silenced(db: Database) -> World:
    w = world(db)
    await w.notify(WEB1, WEB2)
    await w.silences.silence(1, actor="U0ALICE01", actor_name="alice")
    return w


async def test_resolutions_alertmanager_holds_back_reach_the_incident_once(db: Database) -> None:
    w = await silenced(db)
    w.alertmanager.held = [WEB2]  # web-1 resolved; its resolve is silenced
    await w.check()
    assert w.alertmanager.asked == [{"alertname": "HighErrorRate", "severity": "critical"}]
    assert "1 alert resolved: HighErrorRate" in await w.timeline()
    assert "All alerts resolved" not in await w.timeline()
    assert await w.pending_checks() == 1  # web-2 still fires under the silence

    w.alertmanager.held = []
    await w.check()
    timeline = await w.timeline()
    assert timeline.count("1 alert resolved: HighErrorRate") == 2
    assert timeline.count("All alerts resolved") == 1
    assert await w.pending_checks() == 0  # nothing the silence hides fires: no more checks

    # The silence ends and Alertmanager notifies what Tocsin already knows: nothing new.
    ended = "2026-11-26T15:36:10Z"
    await w.notify(
        {**WEB1, "status": "resolved", "endsAt": ended},
        {**WEB2, "status": "resolved", "endsAt": ended},
    )
    assert await w.timeline() == timeline


async def test_alertmanager_out_of_reach_changes_nothing_and_is_asked_again(
    db: Database,
) -> None:
    w = await silenced(db)
    before = await w.timeline()
    w.alertmanager.down = True
    await w.check()
    assert await w.timeline() == before
    assert await w.pending_checks() == 1

    w.alertmanager.down, w.alertmanager.held = False, [WEB2]
    await w.check()
    assert "1 alert resolved: HighErrorRate" in await w.timeline()


async def test_unsilence_ends_the_checks(db: Database) -> None:
    w = await silenced(db)
    await w.silences.unsilence(1, actor="U0ALICE01")
    assert await w.pending_checks() == 0
    await w.check()
    assert w.alertmanager.asked == []
    assert "1 alert resolved: HighErrorRate" not in await w.timeline()
