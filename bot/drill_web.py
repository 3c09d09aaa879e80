"""GET /drills/{incident}: how far a drill's incident got, for `tocsin drill` and the sandbox."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from bot.domain.playbooks import Playbook
from bot.drill import DRILL_LABEL, drill_report
from bot.store.repository import Database

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _problem(status: int, reason: str) -> web.Response:
    return web.json_response({"ok": False, "error": reason}, status=status)


def bearer_ok(request: web.Request, token: str | None) -> bool:
    """True when no token is required, or the request carries it."""
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def drill_status_route(db: Database, playbooks: Sequence[Playbook], token: str | None) -> Handler:
    """The handler; it answers for drill incidents only, behind the webhook's bearer token."""
    steps = {p.name: len(p.steps) for p in playbooks}

    async def handle(request: web.Request) -> web.Response:
        if not bearer_ok(request, token):
            return _problem(401, "missing or wrong bearer token")
        raw = request.match_info["incident"]
        if not raw.isdigit() or len(raw) > 18:
            return _problem(400, "the incident must be a number")
        async with db.transaction() as tx:
            incident = await tx.get_incident(int(raw))
            groups, _ = await tx.incident_labels(int(raw)) if incident else ({}, {})
            events = await tx.timeline(incident.id) if incident else []
        if incident is None or DRILL_LABEL not in groups:
            return _problem(404, f"no drill incident #{raw}")
        report = drill_report(incident, events, steps.get(incident.playbook or "", 0))
        return web.json_response({"ok": True, **report.to_dict()})

    return handle
