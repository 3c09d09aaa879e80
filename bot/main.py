"""Composition root: Settings -> engine -> adapters -> services -> Bolt app -> aiohttp app."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import SystemClock
from bot.config import Settings
from bot.config.playbooks import load_dir
from bot.demo import PROJECT as DEMO_PROJECT
from bot.demo import DemoSources, StoredEpisodes
from bot.domain.escalation import Target, TargetKind
from bot.domain.intake import IntakeRules
from bot.domain.playbooks import Playbook
from bot.domain.silences import SILENCE_CHECK
from bot.domain.timers import ARCHIVE, DIAGNOSTICS, DRILL_OVER, ESCALATE
from bot.errors import ConfigError, SchemaOutOfDate
from bot.loops.ownership import Ownership
from bot.loops.timers import TimerScheduler
from bot.observability.metrics import Metrics
from bot.observability.probes import dependency_probes
from bot.ports import Clock
from bot.sandbox.paging import PagingConfig
from bot.sandbox.people import SANDBOX_USER, add_people, with_sandbox_paging
from bot.sandbox.routes import SandboxDeps, add_sandbox_routes
from bot.sandbox.saver import SandboxSaver, open_sandbox
from bot.services.alerts import AlertIntake
from bot.services.archive import ChannelArchiver
from bot.services.container import Services
from bot.services.diagnostics import DiagnosticSources, DiagnosticsService
from bot.services.digest import DigestBuilder, DigestScheduler, KpiSources
from bot.services.drills import DrillService
from bot.services.escalation import EscalationService
from bot.services.group_commit import GroupCommit
from bot.services.health import HealthService
from bot.services.incidents import IncidentService
from bot.services.oncall import OnCallService
from bot.services.permissions import Permissions
from bot.services.silence_watch import SilenceWatch
from bot.services.silences import SilenceService
from bot.slack import actions
from bot.slack.app import build_bolt_app, slack_route
from bot.slack.channels import resolve_channel
from bot.slack.emulator import SlackEmulator
from bot.slack.ids import COMMANDS
from bot.slack.outbox import OutboxWorker
from bot.slack.outbox.caller import SlackCaller
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
from bot.store.timers import TimerStore
from bot.web import WebDeps, build_web_app
from bot.web.drills import drill_resolve_route, drill_status_route
from commands import diag, incident, kpi, oncall
from integrations.alertmanager import SilenceClient
from integrations.prometheus import PrometheusDiagnostics
from integrations.sentry import SentryClient
from integrations.supabase import SupabaseDiagnostics

log = logging.getLogger(__name__)
# The slash commands' and the card's listeners, registered into the Bolt app.
LISTENERS = (incident.register, oncall.register, diag.register, kpi.register, actions.register)
SANDBOX_PATH = "/sandbox/api/"
SANDBOX_ALERTS = "alerts"


@dataclass
class SlackTarget:
    """Where and how Tocsin talks to Slack: a real workspace or the sandbox emulator."""

    api_url: str
    token: str
    signing_secret: str
    emulator: SlackEmulator | None = None


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
            log.warning(
                "another Tocsin (%s) sends to Slack for this store; this one answers HTTP "
                "and takes over if that one stops",
                holder,
            )
        self.tasks.append(asyncio.create_task(self.ownership.run(), name="ownership"))
        app_token = self.settings.slack_app_token
        if app_token is not None and self.slack.emulator is None:
            # Socket Mode: Slack pushes requests over a websocket; /slack/events stays for HTTP.
            self.socket_mode = AsyncSocketModeHandler(
                self.bolt, app_token.get_secret_value(), web_client=self.client
            )
            await self.socket_mode.connect_async()  # type: ignore[no-untyped-call]
            log.info("Socket Mode: connected; Slack sends commands and clicks over the socket")

    async def _start_loops(self) -> None:
        # The lease is ours: any job left running was its sender's, who is gone.
        await self.worker.store.release_all(self.worker.now())
        self.loops = [
            asyncio.create_task(self.worker.run(), name="outbox"),
            asyncio.create_task(self.scheduler.run(), name="timers"),
        ]
        if self.digests is not None:
            self.loops.append(asyncio.create_task(self.digests.run(), name="digests"))

    async def _stop_loops(self) -> None:
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


def slack_target(settings: Settings, *, public_url: str) -> SlackTarget:
    """The real workspace when a token is set, else the built-in sandbox emulator."""
    if settings.slack_bot_token is not None and settings.slack_signing_secret is not None:
        return SlackTarget(
            api_url=settings.slack_api_url,
            token=settings.slack_bot_token.get_secret_value(),
            signing_secret=settings.slack_signing_secret.get_secret_value(),
        )
    signing_secret = secrets.token_hex(16)
    emulator = SlackEmulator(signing_secret=signing_secret)
    add_people(emulator)
    return SlackTarget(
        api_url=public_url.rstrip("/") + SANDBOX_PATH,
        token=emulator.bot_token,
        signing_secret=signing_secret,
        emulator=emulator,
    )


async def check_schema(db: Database, url: str) -> None:
    """Create an empty database; refuse one whose schema is behind the code."""
    current = await schema.current_revision(db.engine)
    head = schema.head_revision()
    if current == head:
        return
    if current is None and not await _has_tables(db):
        await asyncio.to_thread(schema.upgrade, url)
        return
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
    target = slack_target(settings, public_url=public_url)
    sandbox = None
    if target.emulator is not None:
        sandbox = await open_sandbox(SandboxStore(db), target.emulator, clock.now)
        add_people(target.emulator)  # a workspace saved by an older Tocsin may lack some
    client = AsyncWebClient(token=target.token, base_url=target.api_url, retry_handlers=[])
    try:
        alerts_channel = await _alerts_channel(settings, target, client)
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
    outbox_store = OutboxStore(db)
    http = aiohttp.ClientSession()
    context = JobContext(
        slack=SlackCaller(client=client, limiter=limiter, metrics=metrics),
        store=outbox_store,
        now=clock.now,
        alerts_channel=alerts_channel,
        oncall_users=oncall,
        oncall_usergroup=settings.oncall.usergroup,
        http=http,
    )
    worker = OutboxWorker(
        store=outbox_store,
        context=context,
        handlers=HANDLERS,
        limiter=limiter,
        metrics=metrics,
        now=clock.now,
        concurrency=settings.outbox.concurrency,
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
    )
    scheduler.handlers[ESCALATE] = escalation.fire
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
        ),
        permissions=Permissions(
            settings.permissions.model_dump(), group_members=_group_members(client)
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
    )
    bolt = build_bolt_app(
        client=client,
        signing_secret=target.signing_secret,
        services=services,
        listeners=LISTENERS,
    )
    deps = WebDeps(
        intake=intake,
        metrics=metrics,
        readiness=_readiness(db, worker, timer_store, clock.now, ownership),
        dependencies=health.outside,
        now=clock.now,
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


def build_sources(
    settings: Settings, http: aiohttp.ClientSession, demo: DemoSources | None = None
) -> tuple[DiagnosticSources, KpiSources]:
    """The configured outside sources, for diagnostics and for the digest's KPIs; in the
    sandbox (`demo`), a demo source for each one that is not configured."""
    prometheus: Any = None
    if settings.prometheus_url:
        prometheus = PrometheusDiagnostics(settings.prometheus_url)
    elif demo is not None:
        prometheus = demo.metrics()
    sentry: Any = None
    project = settings.sentry_project
    if settings.sentry_token is not None and settings.sentry_org:
        sentry = SentryClient(
            http,
            api_url=settings.sentry_api_url,
            org=settings.sentry_org,
            token=settings.sentry_token.get_secret_value(),
        )
    elif demo is not None:
        sentry, project = demo.errors(http), project or DEMO_PROJECT
    supabase: Any = None
    if settings.supabase_db_url is not None or settings.supabase_url:
        supabase = SupabaseDiagnostics(
            db_url=_secret(settings.supabase_db_url),
            rest_url=settings.supabase_url,
            key=_secret(settings.supabase_key),
            session=http,
        )
    elif demo is not None:
        supabase = demo.database(http)
    running = frozenset(demo.running if demo is not None else ())
    return (
        DiagnosticSources(
            metrics=prometheus, errors=sentry, database=supabase, sentry_project=project
        ),
        KpiSources(
            metrics=prometheus,
            errors=sentry,
            database=supabase,
            sentry_project=project,
            demo=running,
        ),
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _readiness(
    db: Database,
    worker: OutboxWorker,
    timers: TimerStore,
    now: Callable[[], datetime],
    ownership: Ownership,
) -> Any:
    async def check() -> dict[str, Any]:
        report: dict[str, Any] = {}
        try:
            current = await schema.current_revision(db.engine)
            head = schema.head_revision()
            report["store"] = {"ok": True}
            report["schema"] = {"ok": current == head, "current": current, "head": head}
        except Exception as exc:  # the store is down: say so, without the DSN
            report["store"] = {"ok": False, "error": type(exc).__name__}
        # Jobs given up (Slack down past outbox.give_up_after, or refusing them) are reported,
        # not made a reason to stop taking webhooks: a replica that cannot post still stores.
        # One process sends to Slack (the lease's holder); the others stand by, ready all the same.
        report["outbox"] = {
            "ok": worker.alive or not ownership.holding,
            "sends": ownership.holding,
            "depth": await _depth(worker),
            "failed_24h": await _failed(worker, now() - timedelta(hours=24)),
        }
        try:
            report["timers"] = {"ok": True, "due": await timers.overdue(now())}
        except Exception as exc:
            report["timers"] = {"ok": False, "error": type(exc).__name__}
        return report

    return check


async def _depth(worker: OutboxWorker) -> int | None:
    try:
        return await worker.store.depth()
    except Exception:
        return None


async def _failed(worker: OutboxWorker, since: datetime) -> int | None:
    try:
        return await worker.store.failed_since(since)
    except Exception:
        return None


def _group_members(client: AsyncWebClient) -> Any:
    async def members(group: str) -> list[str]:
        response = await client.api_call("usergroups.users.list", params={"usergroup": group})
        users: list[Any] = response.get("users", [])
        return [str(u) for u in users]

    return members


async def _alerts_channel(
    settings: Settings, target: SlackTarget, client: AsyncWebClient
) -> str | None:
    """The alerts channel's ID: looked up once if the config names it (`#alerts`); in the
    sandbox, its #alerts channel (made the first time, as a person would)."""
    ref = settings.alerts_channel
    emulator = target.emulator
    if emulator is None:
        return await resolve_channel(client, ref, setting="alerts_channel") if ref else None
    found = emulator.state.channel(ref or SANDBOX_ALERTS)
    if found is not None:
        return found.id
    if ref and ref.removeprefix("#") != SANDBOX_ALERTS:
        raise ConfigError(f"alerts_channel {ref}: no such channel in the sandbox")
    return emulator.add_channel(SANDBOX_ALERTS, members=[SANDBOX_USER, emulator.bot_user_id])
