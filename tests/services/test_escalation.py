"""Escalation on a fake clock and a real store: advancing, stopping on ack, surviving restarts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from bot.clock import FakeClock
from bot.domain.escalation import Level, Policy, Target, TargetKind
from bot.domain.incidents import Action
from bot.domain.intake import IntakeRules
from bot.domain.oncall import Layer, Override, Rotation
from bot.domain.timers import ESCALATE
from bot.loops.timers import TimerScheduler
from bot.services.alerts import AlertIntake
from bot.services.escalation import EscalationService
from bot.services.incidents import IncidentService, in_transaction
from bot.store.models import OutboxJobRow, TimerRow
from bot.store.repository import Database
from bot.store.timers import TimerStore
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload

START = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
POLICY = Policy(
    name="standard",
    levels=(
        Level((Target(TargetKind.USER, "U0FIRST01"),), timedelta(minutes=5)),
        Level((Target(TargetKind.ROTATION, "primary"),), timedelta(minutes=10)),
    ),
)
PRIMARY = Rotation(
    "primary",
    "Europe/Berlin",
    (Layer(("U0ROTA001", "U0ROTA002"), 0, time(9, 0), date(2026, 11, 2)),),
)


class World:
    """Tocsin's escalation parts over one store, as a process would build them."""

    def __init__(self, db: Database, clock: FakeClock, repeat: int = 0) -> None:
        policy = Policy(POLICY.name, POLICY.levels, repeat=repeat)
        self.db = db
        self.escalation = EscalationService(
            store=db,
            policies=[policy],
            default_policy="standard",
            rotations={"primary": PRIMARY},
            now=clock.now,
        )
        self.scheduler = TimerScheduler(
            db=db, store=TimerStore(db), handlers={ESCALATE: self.escalation.fire}, now=clock.now
        )
        self.intake = AlertIntake(
            store=db, rules=IntakeRules(timedelta(minutes=30), False), escalation=self.escalation
        )
        self.incidents = IncidentService(store=db, now=clock.now, escalation=self.escalation)

    async def open_incident(self, now: datetime) -> int:
        body = json.dumps(make_payload([make_alert(service="api")]))
        result = await self.intake.ingest(parse_webhook(body.encode()), body=body, now=now)
        assert result.incident_id is not None
        return result.incident_id

    async def pages(self) -> list[list[str]]:
        async with self.db.sessions() as session:
            rows = await session.scalars(
                select(OutboxJobRow).where(OutboxJobRow.kind == "notify").order_by(OutboxJobRow.id)
            )
            return [list(r.payload["users"]) for r in rows]


async def test_levels_advance_on_timeouts_then_stop_when_exhausted(db: Database) -> None:
    clock = FakeClock(START)
    world = World(db, clock)
    incident = await world.open_incident(clock.now())
    assert await world.scheduler.run_due() == 1
    assert await world.pages() == [["U0FIRST01"]]

    clock.advance(minutes=4, seconds=59)
    assert await world.scheduler.run_due() == 0
    clock.advance(seconds=1)
    assert await world.scheduler.run_due() == 1
    # 03:05 UTC on Thursday: the Berlin rotation started Monday 2 Nov, week 4 -> second member.
    assert await world.pages() == [["U0FIRST01"], ["U0ROTA002"]]

    # Level 2 has ten minutes to acknowledge before the policy is exhausted.
    clock.advance(minutes=9, seconds=59)
    assert await world.scheduler.run_due() == 0
    timeline = [e.kind for e in await world.incidents.timeline(incident)]
    assert "escalation_exhausted" not in timeline
    clock.advance(seconds=1)
    assert await world.scheduler.run_due() == 1
    timeline = [e.kind for e in await world.incidents.timeline(incident)]
    assert timeline.count("paged") == 2
    assert timeline.count("escalation_exhausted") == 1
    exhausted = await world.incidents.get(incident)
    assert exhausted.escalation_exhausted_at == clock.now()
    assert await world.pages() == [["U0FIRST01"], ["U0ROTA002"]]  # no last resort named
    clock.advance(hours=1)
    assert await world.scheduler.run_due() == 0  # nothing more: it was said once


async def test_repeat_starts_over_from_the_first_level(db: Database) -> None:
    clock = FakeClock(START)
    world = World(db, clock, repeat=1)
    await world.open_incident(clock.now())
    for minutes in (0, 5, 10, 5):
        clock.advance(minutes=minutes)
        await world.scheduler.run_due()
    assert await world.pages() == [["U0FIRST01"], ["U0ROTA002"], ["U0FIRST01"], ["U0ROTA002"]]


async def test_acknowledge_stops_escalation(db: Database) -> None:
    clock = FakeClock(START)
    world = World(db, clock)
    incident = await world.open_incident(clock.now())
    await world.scheduler.run_due()
    await world.incidents.act(incident, Action.ACKNOWLEDGE, actor="U0FIRST01")
    clock.advance(hours=2)
    assert await world.scheduler.run_due() == 0
    assert await world.pages() == [["U0FIRST01"]]
    kinds = [e.kind for e in await world.incidents.timeline(incident)]
    assert "escalation_stopped" in kinds


async def test_escalate_now_jumps_to_the_next_level(db: Database) -> None:
    clock = FakeClock(START)
    world = World(db, clock)
    incident_id = await world.open_incident(clock.now())
    await world.scheduler.run_due()
    incident = await world.incidents.get(incident_id)
    text = await in_transaction(
        db, lambda tx: world.escalation.escalate_now(tx, incident, actor="U0BOSS001")
    )
    assert "level 2" in text
    assert await world.scheduler.run_due() == 1
    assert await world.pages() == [["U0FIRST01"], ["U0ROTA002"]]


async def test_an_override_takes_the_rotation_page(db: Database) -> None:
    clock = FakeClock(START)
    world = World(db, clock)
    await world.open_incident(clock.now())
    await world.scheduler.run_due()
    override = Override("primary", "U0COVER01", START, START + timedelta(hours=4))
    await in_transaction(db, lambda tx: tx.add_override(override, by="U0BOSS001", at=START))
    clock.advance(minutes=5)
    await world.scheduler.run_due()
    assert await world.pages() == [["U0FIRST01"], ["U0COVER01"]]


async def test_a_restart_neither_loses_nor_repeats_a_page(db: Database, database_url: str) -> None:
    clock = FakeClock(START)
    first = World(db, clock)
    await first.open_incident(clock.now())
    await first.scheduler.run_due()

    # A process dies holding the level-2 timer it had just claimed.
    clock.advance(minutes=5)
    store = TimerStore(db)
    (due,) = await store.due(clock.now())
    assert await store.claim(due, clock.now())

    from bot.store.engine import create_engine

    restarted_db = Database(create_engine(database_url))
    try:
        second = World(restarted_db, clock)
        assert await second.scheduler.run_due() == 0  # the lease still holds
        clock.advance(seconds=31)
        assert await second.scheduler.run_due() == 1
        assert await second.scheduler.run_due() == 0
        assert await second.pages() == [["U0FIRST01"], ["U0ROTA002"]]
        async with restarted_db.sessions() as session:
            states = sorted(await session.scalars(select(TimerRow.state)))
        assert states == ["fired", "fired", "pending"]  # the last: when the policy runs out
    finally:
        await restarted_db.dispose()
