"""One log line per change of an incident's state, said once the change is committed."""

from __future__ import annotations

import logging

from bot.domain.incidents import IncidentStatus

log = logging.getLogger("bot.incidents")


def state_changed(
    incident: int, before: IncidentStatus | None, after: IncidentStatus, *, actor: str
) -> None:
    """Log `incident` going from `before` (None: it is new) to `after`, by `actor`."""
    if before is after:
        return
    was = before.value if before is not None else "new"
    log.info(
        "incident %s: %s -> %s by %s",
        incident,
        was,
        after.value,
        actor,
        extra={"incident": incident, "from": was, "to": after.value, "actor": actor},
    )
