"""POST /webhooks/alertmanager and /webhooks/sentry: validate, commit, then answer 200. Routes
only convert: the intake service decides."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.domain.alerts import AlertGroup
from bot.errors import InvalidPayload, StoreBusy, StoreUnreachable
from bot.observability.metrics import Metrics
from bot.services.alerts import AlertIntake
from bot.web.answers import bearer_ok, problem, refused
from bot.web.bodies import BodyTooLarge, read_body
from integrations.alertmanager import parse_webhook
from integrations.sentry_webhooks import parse_webhook as parse_sentry
from integrations.sentry_webhooks import verify_signature

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]
# The outside dependencies (Slack, Prometheus, ...): reported by /readyz, never failing it.
DependencyReport = Callable[[], Awaitable[dict[str, dict[str, str]]]]
SlackHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class WebDeps:
    """What the routes need, built by the composition root."""

    intake: AlertIntake
    metrics: Metrics
    readiness: ReadinessCheck
    now: Callable[[], Any]
    on_committed: Callable[[], None]
    webhook_token: str | None
    max_body: int
    slack_handler: SlackHandler | None = None
    sentry_secret: str | None = None
    dependencies: DependencyReport | None = None
    # The background loops that ended for good (name -> how): /healthz fails while any has.
    dead_loops: Callable[[], dict[str, str]] = dict
    # Brings the metrics that describe the shared store up to date before a scrape.
    refresh_metrics: Callable[[], Awaitable[Any]] | None = None


async def commit_group(deps: WebDeps, source: str, group: AlertGroup, body: bytes) -> web.Response:
    """Commit a validated alert group, count it, wake the workers if it gave them work, and say
    what it did."""
    try:
        result = await deps.intake.ingest(
            group, body=body.decode("utf-8", "replace"), now=deps.now()
        )
    except (StoreBusy, StoreUnreachable) as exc:
        # Nothing was stored; Alertmanager and Sentry send the notification again.
        log.warning("%s webhook not stored: %s; asked the sender to retry", source, exc)
        state = "busy" if isinstance(exc, StoreBusy) else "unreachable"
        answer = problem(503, f"the store is {state}; send this notification again")
        answer.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
        return answer
    deps.metrics.alerts_received.labels(source).inc(len(group.alerts))
    if result.decision is not None and result.decision.value == "open":
        deps.metrics.incidents_opened.labels(source).inc()
    if result.flapping:
        deps.metrics.flaps_detected.inc()
    if result.storm is not None:
        deps.metrics.groups_folded.inc()
        if result.storm_opened:
            deps.metrics.storms_opened.inc()
    if result.new_work:
        deps.on_committed()
    decision = result.decision.value if result.decision else "duplicate"
    said = decision if result.storm is None else f"{decision} in storm incident {result.storm},"
    received(source, group.group_key, len(group.alerts), said, result.incident_id)
    return web.json_response({"ok": True, "incident": result.incident_id, "decision": decision})


# Webhooks that open an incident are logged at INFO; the rest (alerts added to an open incident,
# repeats, ignored) at DEBUG, so an alert storm does not flood the log: every change of an
# incident's state has its own INFO line (services.state_changes).
NOTEWORTHY = frozenset({"open", "reopen"})


def received(source: str, group_key: str, alerts: int, decision: str, incident: int | None) -> None:
    """The one line a webhook leaves: what came, and what Tocsin did with it."""
    level = logging.INFO if decision.split(" ", 1)[0] in NOTEWORTHY else logging.DEBUG
    if not log.isEnabledFor(level):
        return
    log.log(
        level,
        "%s webhook: group %s, %d alert%s: %s%s",
        source,
        group_key or "-",
        alerts,
        "" if alerts == 1 else "s",
        decision,
        f" incident {incident}" if incident is not None else "",
        extra={
            "source": source,
            "group_key": group_key,
            "alerts": alerts,
            "decision": decision,
            "incident": incident,
        },
    )


BUSY_RETRY_AFTER = 5  # seconds


class WebhookRoute:
    """What the webhook routes share: reading the body whole, and refusals that are logged."""

    source = "webhook"

    def __init__(self, deps: WebDeps) -> None:
        self.deps = deps

    def _reject(self, request: web.Request, status: int, reason: str, label: str) -> web.Response:
        self.deps.metrics.webhooks_rejected.labels(self.source, label).inc()
        return refused(request, status, reason)

    async def _body(self, request: web.Request) -> bytes | web.Response:
        try:
            return await read_body(request, self.deps.max_body)
        except BodyTooLarge:
            reason = f"body larger than {self.deps.max_body} bytes"
            return self._reject(request, 413, reason, "too_large")


class AlertmanagerRoute(WebhookRoute):
    """POST /webhooks/alertmanager."""

    source = "alertmanager"

    async def handle(self, request: web.Request) -> web.Response:
        """Validate, commit, then answer 200; anything else is a 4xx with a reason."""
        started = time.perf_counter()
        if not bearer_ok(request, self.deps.webhook_token):
            return self._reject(request, 401, "missing or wrong bearer token", "unauthorized")
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            group = parse_webhook(body)
        except InvalidPayload as exc:
            return self._reject(request, 400, str(exc), "invalid")
        response = await commit_group(self.deps, "alertmanager", group, body)
        self.deps.metrics.webhook_seconds.labels("alertmanager").observe(
            time.perf_counter() - started
        )
        return response


class SentryRoute(WebhookRoute):
    """POST /webhooks/sentry: signed integration-platform webhooks become alert groups."""

    source = "sentry"

    async def handle(self, request: web.Request) -> web.Response:
        """Verify the signature on the raw body, then commit like an Alertmanager webhook."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        secret = self.deps.sentry_secret
        signature = request.headers.get("Sentry-Hook-Signature")
        if not secret or not verify_signature(secret, body, signature):
            reason = "missing or wrong Sentry-Hook-Signature"
            return self._reject(request, 401, reason, "unauthorized")
        try:
            group = parse_sentry(
                request.headers.get("Sentry-Hook-Resource"), body, received_at=self.deps.now()
            )
        except InvalidPayload as exc:
            return self._reject(request, 400, str(exc), "invalid")
        if group is None:
            resource = request.headers.get("Sentry-Hook-Resource") or "-"
            received("sentry", f"resource {resource[:40]}", 0, "ignored", None)
            return web.json_response({"ok": True, "decision": "ignored"})
        return await commit_group(self.deps, "sentry", group, body)
