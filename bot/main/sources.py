"""The outside sources diagnostics and the digest's KPIs ask: each one configured, else (in the
sandbox) its demo stand-in."""

from __future__ import annotations

from typing import Any

import aiohttp
from pydantic import SecretStr

from bot.config import Settings
from bot.demo import PROJECT as DEMO_PROJECT
from bot.demo import DemoSources
from bot.services.diagnostics import DiagnosticSources
from bot.services.digest import KpiSources
from integrations.prometheus import PrometheusDiagnostics
from integrations.sentry import SentryClient
from integrations.supabase import SupabaseDiagnostics


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
