"""The drill routes, behind the webhook's bearer token, for drill incidents only:
GET /drills/{incident} (how far it got, for `tocsin drill` and the sandbox) and
POST /drills/{incident}/resolve (the drill is over: Tocsin resolves it, once)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from bot.domain.incidents import Incident, TimelineEvent
from bot.domain.playbooks import Playbook
from bot.drills.alerts import drill_report
from bot.errors import StoreBusy
from bot.ports import IncidentStore, IncidentTransaction
from bot.services.drills import DrillService
from bot.web.answers import bearer_ok, problem, refused

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.Response]]
BUSY_RETRY_AFTER = 1


def _incident_id(request: web.Request, token: str | None) -> int | web.Response:
    """The route's incident number, or the refusal to answer."""
    if not bearer_ok(request, token):
        return refused(request, 401, "missing or wrong bearer token")
    raw = request.match_info["incident"]
    if not raw.isdigit() or len(raw) > 18:
        return refused(request, 400, "the incident must be a number")
    return int(raw)


def _busy(exc: StoreBusy) -> web.Response:
    log.warning("drill route: %s; asked the client to retry", exc)
    answer = problem(503, "the store is busy; ask again")
    answer.headers["Retry-After"] = str(BUSY_RETRY_AFTER)
    return answer


def drill_status_route(
    db: IncidentStore, playbooks: Sequence[Playbook], token: str | None
) -> Handler:
    """GET /drills/{incident}: the drill's report."""
    steps = {p.name: len(p.steps) for p in playbooks}

    async def handle(request: web.Request) -> web.Response:
        number = _incident_id(request, token)
        if isinstance(number, web.Response):
            return number

        async def read(tx: IncidentTransaction) -> tuple[Incident | None, list[TimelineEvent]]:
            incident = await tx.get_incident(number)
            return incident, await tx.timeline(number) if incident else []

        try:
            incident, events = await db.run(read)
        except StoreBusy as exc:
            return _busy(exc)
        if incident is None or not incident.drill:
            return problem(404, f"no drill incident #{number}")
        report = drill_report(incident, events, steps.get(incident.playbook or "", 0))
        return web.json_response({"ok": True, **report.to_dict()})

    return handle


def drill_resolve_route(
    drills: DrillService, token: str | None, on_committed: Callable[[], None]
) -> Handler:
    """POST /drills/{incident}/resolve: the drill is over; resolving it again does nothing."""

    async def handle(request: web.Request) -> web.Response:
        number = _incident_id(request, token)
        if isinstance(number, web.Response):
            return number
        try:
            ended = await drills.end(number)
        except StoreBusy as exc:
            return _busy(exc)
        if ended is None:
            return problem(404, f"no drill incident #{number}")
        if ended.resolved_now:
            on_committed()  # the card, the topic and the alerts channel say so
        return web.json_response(
            {
                "ok": True,
                "incident": ended.incident.id,
                "status": ended.incident.status.value,
                "resolved_now": ended.resolved_now,
            }
        )

    return handle
