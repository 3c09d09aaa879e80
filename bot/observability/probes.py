"""How each dependency is asked whether it answers: the probes `/diag health` and /readyz run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.diagnostics import DiagnosticResult, Status
from bot.services.diagnostics import DiagnosticSources
from bot.services.health import Probe, ProbeFailed
from bot.store import schema
from bot.store.repository import Database
from integrations.alertmanager import SilenceClient, SilenceError


def dependency_probes(
    *,
    db: Database,
    slack: AsyncWebClient,
    alertmanager: SilenceClient | None,
    sources: DiagnosticSources,
) -> list[Probe]:
    """Every dependency, configured or not, in the order people read them."""
    metrics, errors, supabase = sources.metrics, sources.errors, sources.database
    return [
        Probe("Database", _database(db), needed=True),
        Probe("Slack", _slack(slack)),
        Probe(
            "Alertmanager",
            _alertmanager(alertmanager) if alertmanager else None,
            "set ALERTMANAGER_URL",
        ),
        Probe(
            "Prometheus",
            _result(metrics.health) if metrics else None,
            "set PROMETHEUS_URL",
        ),
        Probe(
            "Sentry",
            _result(errors.health) if errors else None,
            "set SENTRY_TOKEN and SENTRY_ORG",
        ),
        Probe(
            "Supabase",
            _results(supabase.run_all) if supabase else None,
            "set SUPABASE_DB_URL, or SUPABASE_URL and SUPABASE_KEY",
        ),
    ]


def _database(db: Database) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        try:
            await schema.current_revision(db.engine)
        except Exception as exc:  # the store's error may carry its URL: say its kind only
            raise ProbeFailed(type(exc).__name__) from None

    return check


def _slack(client: AsyncWebClient) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        try:
            await client.auth_test()
        except SlackApiError as exc:
            raise ProbeFailed(str(exc.response.get("error") or "auth.test refused")) from None

    return check


def _alertmanager(client: SilenceClient) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        try:
            await client.ready()
        except SilenceError as exc:
            raise ProbeFailed(str(exc)) from None

    return check


def _result(health: Callable[[], Awaitable[DiagnosticResult]]) -> Callable[[], Awaitable[None]]:
    """A source's own health check, which answers a result rather than raising."""

    async def check() -> None:
        result = await health()
        if result.status is not Status.OK:
            raise ProbeFailed(result.text)

    return check


def _results(
    run_all: Callable[[], Awaitable[list[DiagnosticResult]]],
) -> Callable[[], Awaitable[None]]:
    """Failing when any check could not run; what the checks found is `/diag supabase`'s."""

    async def check() -> None:
        failed = [r for r in await run_all() if r.status is Status.ERROR]
        if failed:
            raise ProbeFailed(f"{failed[0].title}: {failed[0].text}")

    return check
