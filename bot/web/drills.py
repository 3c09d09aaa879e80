"""GET /drills/{incident}: how far a drill's incident got, for `tocsin drill` and the sandbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiohttp import web

from bot.domain.incidents import Incident, TimelineEvent
from bot.domain.playbooks import Playbook
from bot.drills.alerts import DRILL_LABEL, drill_report
from bot.ports import IncidentStore, IncidentTransaction
from bot.web.answers import bearer_ok, problem

Handler = Callable[[web.Request], Awaitable[web.Response]]


def drill_status_route(
    db: IncidentStore, playbooks: Sequence[Playbook], token: str | None
) -> Handler:
    """The handler; it answers for drill incidents only, behind the webhook's bearer token."""
    steps = {p.name: len(p.steps) for p in playbooks}

    async def handle(request: web.Request) -> web.Response:
        if not bearer_ok(request, token):
            return problem(401, "missing or wrong bearer token")
        raw = request.match_info["incident"]
        if not raw.isdigit() or len(raw) > 18:
            return problem(400, "the incident must be a number")

        async def read(
            tx: IncidentTransaction,
        ) -> tuple[Incident | None, Mapping[str, str], list[TimelineEvent]]:
            incident = await tx.get_incident(int(raw))
            groups, _ = await tx.incident_labels(int(raw)) if incident else ({}, {})
            return incident, groups, await tx.timeline(incident.id) if incident else []

        incident, groups, events = await db.run(read)
        if incident is None or DRILL_LABEL not in groups:
            return problem(404, f"no drill incident #{raw}")
        report = drill_report(incident, events, steps.get(incident.playbook or "", 0))
        return web.json_response({"ok": True, **report.to_dict()})

    return handle
