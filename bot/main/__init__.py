"""Composition root: Settings -> engine -> adapters -> services -> Bolt app -> aiohttp app."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import SystemClock
from bot.config import Settings
from bot.config.people import people_of
from bot.config.playbooks import load_dir
from bot.demo import DemoSources, StoredEpisodes
from bot.domain.contacts import CONTACT_STEP
from bot.domain.escalation import Target, TargetKind
from bot.domain.flapping import FLAP_OVER, FlapRule
from bot.domain.intake import IntakeRules
from bot.domain.playbooks import Playbook
from bot.domain.silences import SILENCE_CHECK
from bot.domain.storms import STORM_CALM, StormRule
from bot.domain.timers import ARCHIVE, DIAGNOSTICS, DRILL_OVER, ESCALATE
from bot.errors import ConfigError, SchemaOutOfDate
from bot.loops.ownership import Ownership
from bot.loops.timers import TimerScheduler
from bot.loops.watch import LoopWatch
from bot.main.readiness import outbox_state, readiness_check
from bot.main.slack_target import (
    SANDBOX_PATH,
    SlackTarget,
    find_alerts_channel,
    group_members,
    slack_target,
)
from bot.main.sources import build_sources
from bot.observability.metrics import Metrics
from bot.observability.probes import dependency_probes
from bot.ports import Clock
from bot.sandbox.paging import PagingConfig
from bot.sandbox.people import SANDBOX_USER, add_people, with_sandbox_paging
from bot.sandbox.routes import SandboxDeps, add_sandbox_routes
from bot.sandbox.saver import SandboxSaver, open_sandbox
from bot.services.alerts import AlertIntake
from bot.services.archive import ChannelArchiver
from bot.services.contacts import ContactSteps, ContactTest
from bot.services.container import Services
from bot.services.diagnostics import DiagnosticsService
from bot.services.digest import DigestBuilder, DigestScheduler, KpiSources
from bot.services.drills import DrillService
from bot.services.escalation import EscalationService
from bot.services.flapping import FlapWatch
from bot.services.group_commit import GroupCommit
from bot.services.health import HealthService
from bot.services.incidents import IncidentService
from bot.services.oncall import OnCallService
from bot.services.permissions import Permissions
from bot.services.silence_watch import SilenceWatch
from bot.services.silences import SilenceService
from bot.services.storms import StormCalm
from bot.slack import actions
from bot.slack.app import build_bolt_app, slack_route
from bot.slack.emulator import SlackEmulator
from bot.slack.ids import COMMANDS
from bot.slack.outbox import OutboxWorker
from bot.slack.outbox.budget import SharedBudget
from bot.slack.outbox.caller import SlackCaller
from bot.slack.outbox.contacts import Contacts
from bot.slack.outbox.job_table import HANDLERS
from bot.slack.outbox.jobs import JobContext
from bot.slack.outbox.ratelimit import RateLimiter
from bot.slack.outbox.workspace_jobs import digest_jobs
from bot.store import schema
from bot.store.digest import DigestStore
from bot.store.engine import create_engine
from bot.store.lease import LeaseStore
from bot.store.outbox import OutboxStore
from bot.store.repository import Database
from bot.store.sandbox import SandboxStore
from bot.store.spend import SpendStore
from bot.store.timers import TimerStore
from bot.web import WebDeps, build_web_app
from bot.web.drills import drill_resolve_route, drill_status_route
from commands import diag, incident, kpi, oncall
from integrations.alertmanager import SilenceClient
from integrations.contacts import AppriseSender
from integrations.paging_services import PagingServices

log = logging.getLogger(__name__)
# The slash commands' and the card's listeners, registered into the Bolt app.
LISTENERS = (incident.register, oncall.register, diag.register, kpi.register, actions.register)


@dataclass
class Tocsin:
    """A built application, ready to serve."""

    settings: Settings
    db: Database
    metrics: Metrics
    web_app: web.Application
    worker: OutboxWorker
    intake: AlertIntake
    slack: SlackTarget
    client: AsyncWebClient
    scheduler: TimerScheduler
    services: Services
    http: aiohttp.ClientSession
    bolt: AsyncApp
    ownership: Ownership
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    socket_mode: AsyncSocketModeHandler | None = None
    sandbox: SandboxSaver | None = None
    digests: DigestScheduler | None = None
    loops: list[asyncio.Task[None]] = field(default_factory=list)
    watch: LoopWatch = field(default_factory=LoopWatch)
    budget: SharedBudget | None = None

    def __post_init__(self) -> None:
        self.ownership.on_acquired = self._start_loops
        self.ownership.on_lost = self._stop_loops

    async def start_background(self) -> None:
        """Start the store's checkpoints, and the outbox worker and schedulers once this
        process holds the store's outbox lease (at once, unless another process holds it)."""
        await self.db.checkpoint_in_background()
        if self.sandbox is not None:
            self.sandbox.start()
        if not await self.ownership.try_once():
            holder = await self.ownership.current_holder()
            if holder != self.ownership.holder:
                log.warning(
                    "another Tocsin (%s) sends to Slack for this store; this one answers HTTP "
                    "and takes over if that one stops",
                    holder,
                )
        self.tasks.append(self.watch.start("ownership", self.ownership.run()))
        app_token = self.settings.slack_app_token
        if app_token is not None and self.slack.emulator is None:
            # Socket Mode: Slack pushes requests over a websocket; /slack/events stays for HTTP.
            self.socket_mode = AsyncSocketModeHandler(
                self.bolt, app_token.get_secret_value(), web_client=self.client
            )
            await self.socket_mode.connect_async()  # type: ignore[no-untyped-call]
            log.info("Socket Mode: connected; Slack sends commands and clicks over the socket")

    async def _start_loops(self) -> None:
        # The lease is ours: any job left running was its sender's, who is gone; the calls it
        # made this minute count against the app's budget as ours do.
        await self.worker.store.release_all(self.worker.now())
        if self.budget is not None:
            await self.budget.take_over()
        self.loops = [
            self.watch.start("outbox", self.worker.run()),
            self.watch.start("timers", self.scheduler.run()),
        ]
        if self.digests is not None:
            self.loops.append(self.watch.start("digests", self.digests.run()))

    async def _stop_loops(self) -> None:
        self.watch.let_go(*self.loops)
        await self.worker.stop()
        await self.scheduler.stop()
        if self.digests is not None:
            await self.digests.stop()
        for task in self.loops:
            with suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=15)
        self.loops = []

    async def close(self) -> None:
        """Stop background work, give the outbox lease up, and release connections."""
        self.watch.let_all_go()
        if self.socket_mode is not None:
            await self.socket_mode.close_async()  # type: ignore[no-untyped-call]
        await self.ownership.stop()
        for task in self.tasks:
            with suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=15)
        await self.client.session.close() if self.client.session else None
        await self.http.close()
        if self.sandbox is not None:
            await self.sandbox.stop()
        await self.db.dispose()


async def check_schema(db: Database, url: str) -> None:
    """Create an empty database; refuse one whose schema is behind the code."""
    current = await schema.current_revision(db.engine)
    head = schema.head_revision()
    if current == head:
        return
    if current is None and not await _has_tables(db):
        await asyncio.to_thread(schema.upgrade, url)
        return
    if schema.is_newer(current):
        raise SchemaOutOfDate(
            f"database schema is at {current}, newer than this Tocsin knows ({head}): "
            "a newer Tocsin upgraded it; run that version"
        )
    raise SchemaOutOfDate(
        f"database schema is at {current or 'an unknown version'}, the code needs {head}: "
        "run `tocsin db upgrade`"
    )


async def _has_tables(db: Database) -> bool:
    async with db.engine.connect() as connection:
        names = await connection.run_sync(lambda c: c.dialect.get_table_names(c))
        return bool(names)


def _last_resort(settings: Settings) -> list[Target]:
    """Who is paged when a policy that names no last resort runs out: the on-call user group,
    else the on-call users (else nobody: the channel is told with @channel)."""
    if settings.oncall.usergroup:
        return [Target(TargetKind.USERGROUP, settings.oncall.usergroup)]
    return [Target(TargetKind.USER, u) for u in settings.oncall.users]


def _channel_link(target: SlackTarget, public_url: str) -> Callable[[str], str]:
    """The link a page beyond Slack gives to open the incident's channel: Slack's documented
    app_redirect deep link, or the sandbox page."""
    if target.emulator is not None:
        page = f"{public_url.rstrip('/')}/sandbox"
        return lambda channel: page
    return lambda channel: f"https://slack.com/app_redirect?channel={channel}"


async def build_app(
    settings: Settings,
    *,
    public_url: str,
    clock: Clock | None = None,
    pace_clock: Callable[[], float] = time.monotonic,
) -> Tocsin:
    """Wire every part of Tocsin together from Settings (`pace_clock`: seconds, for pacing
    Slack calls; tests that move `clock` by hand pass one that follows it)."""
    clock = clock or SystemClock()
    if settings.sandbox:  # people to page, unless tocsin.yml names its own
        settings = with_sandbox_paging(settings)
    playbooks = load_playbooks(settings)  # a refused start must not leave connections open
    db = Database(create_engine(settings.database_url), lock_wait=settings.database_lock_wait)
    try:
        await check_schema(db, settings.database_url)
    except BaseException:
        await db.dispose()
        raise
    metrics = Metrics()
    watch = LoopWatch()
    target = slack_target(settings, public_url=public_url)
    sandbox = None
    if target.emulator is not None:
        sandbox = await open_sandbox(SandboxStore(db), target.emulator, clock.now)
        add_people(target.emulator)  # a workspace saved by an older Tocsin may lack some
    client = AsyncWebClient(token=target.token, base_url=target.api_url, retry_handlers=[])
    try:
        alerts_channel = await find_alerts_channel(settings, target, client)
    except BaseException:
        await client.session.close() if client.session else None
        await db.dispose()
        raise
    oncall = list(settings.oncall.users) or ([SANDBOX_USER] if target.emulator else [])
    limiter = RateLimiter(
        tier_per_minute=settings.outbox.tier_per_minute,
        per_channel_per_second=settings.outbox.per_channel_per_second,
        clock=pace_clock,
    )
    budget = SharedBudget(log=SpendStore(db), limiter=limiter, now=clock.now)
    outbox_store = OutboxStore(db)
    http = aiohttp.ClientSession()
    context = JobContext(
        slack=SlackCaller(client=client, limiter=limiter, metrics=metrics, budget=budget),
        store=outbox_store,
        now=clock.now,
        alerts_channel=alerts_channel,
        oncall_users=oncall,
        oncall_usergroup=settings.oncall.usergroup,
        http=http,
    )
    people = people_of(settings.people, settings.notify)
    context.contacts = Contacts(
        people=people,
        sender=AppriseSender(settings.notify.email),
        services=PagingServices(http, settings.notify),
        attempts=settings.notify.attempts,
        pace_within=settings.notify.pace.within,
        pace_at_most=dict(settings.notify.pace.at_most),
        channel_link=_channel_link(target, public_url),
        on_outcome=metrics.contact_outcome,
    )
    worker = OutboxWorker(
        store=outbox_store,
        context=context,
        handlers=HANDLERS,
        limiter=limiter,
        metrics=metrics,
        now=clock.now,
        concurrency=settings.outbox.concurrency,
        unpaced_concurrency=settings.outbox.unpaced_concurrency,
        give_up_after=settings.outbox.give_up_after,
        poll_interval=settings.outbox.poll_interval,
    )
    ownership = Ownership(leases=LeaseStore(db), now=clock.now)
    timer_store = TimerStore(db)
    scheduler = TimerScheduler(
        db=db, store=timer_store, handlers={}, now=clock.now, after_fire=worker.wake
    )
    context.wake_timers = scheduler.wake
    rotations = {r.name: r.to_domain() for r in settings.oncall.rotations}
    escalation = EscalationService(
        store=db,
        policies=[p.to_domain() for p in settings.escalation.policies],
        default_policy=settings.escalation.default,
        rotations=rotations,
        now=clock.now,
        on_scheduled=scheduler.wake,
        last_resort=_last_resort(settings),
        people=people,
    )
    scheduler.handlers[ESCALATE] = escalation.fire
    scheduler.handlers[CONTACT_STEP] = ContactSteps(people, clock.now).fire
    oncall_service = OnCallService(
        store=db, rotations=rotations, now=clock.now, policies=escalation.policies
    )
    outbox_store.add_to_view = oncall_service.on_card  # every card says who is on call now
    demo = (
        DemoSources(public_url, StoredEpisodes(db, clock.now), clock)
        if target.emulator is not None
        else None
    )
    diagnostic_sources, kpi_sources = build_sources(settings, http, demo)
    diagnostics = DiagnosticsService(
        store=db,
        sources=diagnostic_sources,
        playbooks=playbooks,
        now=clock.now,
        on_posted=worker.wake,
        on_scheduled=scheduler.wake,
    )
    scheduler.tasks[DIAGNOSTICS] = diagnostics.fire
    scheduler.handlers[ARCHIVE] = ChannelArchiver(now=clock.now).fire
    digests = build_digests(
        settings,
        db,
        kpi_sources,
        default_channel=alerts_channel,
        now=clock.now,
        on_queued=worker.wake,
    )
    intake = AlertIntake(
        store=db,
        rules=IntakeRules(
            reopen_window=settings.reopen_window,
            auto_resolve=settings.auto_resolve,
            playbooks=playbooks,
            archive_after=settings.archive_after,
            drill_resolve_after=settings.drill_resolve_after,
            card_settle=settings.outbox.card_settle,
            storm=(
                StormRule(settings.storm.new_groups, settings.storm.within)
                if settings.storm is not None
                else None
            ),
            flapping=(
                FlapRule(settings.flapping.refires, settings.flapping.within)
                if settings.flapping is not None
                else None
            ),
        ),
        escalation=escalation,
        commits=GroupCommit(db, writers=db.writers),
    )
    silencer = SilenceClient(http, settings.alertmanager_url) if settings.alertmanager_url else None
    health = HealthService(
        dependency_probes(db=db, slack=client, alertmanager=silencer, sources=diagnostic_sources)
    )
    incidents = IncidentService(
        store=db,
        now=clock.now,
        escalation=escalation,
        archive_after=settings.archive_after,
        drill_resolve_after=settings.drill_resolve_after,
    )
    drills = DrillService(incidents=incidents)
    scheduler.handlers[DRILL_OVER] = drills.fire
    # With flapping turned off since, its timers still end the flapping they marked.
    flap = settings.flapping
    rule = FlapRule(flap.refires, flap.within) if flap else FlapRule(1, timedelta(0))
    scheduler.handlers[FLAP_OVER] = FlapWatch(rule, clock.now).fire
    storm = settings.storm
    calm = StormRule(storm.new_groups, storm.within) if storm else StormRule(2, timedelta(0))
    scheduler.handlers[STORM_CALM] = StormCalm(calm, clock.now).fire
    if silencer is not None:
        scheduler.tasks[SILENCE_CHECK] = SilenceWatch(
            store=db,
            source=silencer,
            intake=intake,
            now=clock.now,
            every=settings.silence_check_every,
        ).fire
    services = Services(
        db=db,
        incidents=incidents,
        escalation=escalation,
        silences=SilenceService(
            store=db,
            silencer=silencer,
            now=clock.now,
            duration=settings.silence_duration,
            check_every=settings.silence_check_every if silencer is not None else None,
            on_scheduled=scheduler.wake,
            # Four flapping windows: past the resolves and re-fires of a group that flaps.
            while_flapping=(
                max(settings.silence_duration, 4 * settings.flapping.within)
                if settings.flapping
                else None
            ),
        ),
        permissions=Permissions(
            settings.permissions.model_dump(), group_members=group_members(client)
        ),
        rotations=rotations,
        oncall=oncall_service,
        now=clock.now,
        alerts_channel=alerts_channel,
        wake_outbox=worker.wake,
        incident_view=outbox_store.incident_view,
        diagnostics=diagnostics,
        wake_timers=scheduler.wake,
        health=health,
        digests=digests,
        contacts=ContactTest(people, context.contacts.sender),
    )
    bolt = build_bolt_app(
        client=client,
        signing_secret=target.signing_secret,
        services=services,
        listeners=LISTENERS,
    )
    outbox = outbox_state(worker, ownership, clock.now, metrics)
    deps = WebDeps(
        intake=intake,
        metrics=metrics,
        readiness=readiness_check(db, outbox, timer_store, clock.now),
        refresh_metrics=outbox,
        dependencies=health.outside,
        now=clock.now,
        dead_loops=lambda: watch.dead,
        on_committed=_both(worker.wake, scheduler.wake),
        webhook_token=settings.webhook_token.get_secret_value() if settings.webhook_token else None,
        max_body=settings.webhook_max_bytes,
        slack_handler=slack_route(bolt),
        sentry_secret=(
            settings.sentry_webhook_secret.get_secret_value()
            if settings.sentry_webhook_secret
            else None
        ),
    )
    web_app = build_web_app(deps)
    web_app.router.add_get(
        "/drills/{incident}", drill_status_route(db, playbooks, deps.webhook_token)
    )
    web_app.router.add_post(
        "/drills/{incident}/resolve",
        drill_resolve_route(drills, deps.webhook_token, deps.on_committed),
    )
    if target.emulator is not None:
        web_app.add_subapp(SANDBOX_PATH.rstrip("/"), target.emulator.make_app())
        if demo is not None and demo.running:
            demo.mount(web_app)
            log.info("sandbox: demo data for %s (not configured)", ", ".join(demo.running))
        paging = PagingConfig(
            rotations=rotations,
            policies=list(escalation.policies.values()),
            default_policy=settings.escalation.default,
            now_and_next=oncall_service.now_and_next,
            last_resort=_last_resort(settings),
        )
        sandbox_deps = _sandbox_deps(target.emulator, public_url, playbooks, deps)
        sandbox_deps.paging, sandbox_deps.alerts_channel = paging, alerts_channel
        add_sandbox_routes(web_app, sandbox_deps)
    return Tocsin(
        settings,
        db,
        metrics,
        web_app,
        worker,
        intake,
        target,
        client,
        scheduler,
        services,
        http,
        bolt,
        ownership,
        sandbox=sandbox,
        digests=digests,
        watch=watch,
        budget=budget,
    )


def _sandbox_deps(
    emulator: SlackEmulator, public_url: str, playbooks: list[Playbook], deps: WebDeps
) -> SandboxDeps:
    base = public_url.rstrip("/")
    return SandboxDeps(
        emulator=emulator,
        user=SANDBOX_USER,
        api_path=SANDBOX_PATH,
        bot_url=f"{base}/slack/events",
        self_url=base,
        playbooks=playbooks,
        commands=COMMANDS,
        webhook_token=deps.webhook_token,
        now=deps.now,
    )


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def call() -> None:
        first()
        second()

    return call


def load_playbooks(settings: Settings) -> list[Playbook]:
    """The playbooks folder, or ConfigError naming file, line and reason of every problem."""
    playbooks, problems = load_dir(settings.playbooks_dir)
    if problems:
        listed = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ConfigError(f"TOCSIN_PLAYBOOKS_DIR: {listed}{more}")
    return playbooks


def build_digests(
    settings: Settings,
    db: Database,
    sources: KpiSources,
    *,
    default_channel: str | None,
    now: Callable[[], datetime],
    on_queued: Callable[[], None] = lambda: None,
) -> DigestScheduler:
    """The configured digests over the store and the KPI sources."""
    runs = DigestStore(db)
    return DigestScheduler(
        builder=DigestBuilder(runs=runs, sources=sources, kpis=settings.digest.definitions()),
        runs=runs,
        digests=[d.scheduled() for d in settings.digest.digests],
        default_channel=default_channel,
        render=digest_jobs,
        now=now,
        on_queued=on_queued,
    )
