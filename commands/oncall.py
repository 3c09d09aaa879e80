"""/oncall: who is on call now and next; `/oncall override @user 4h [rotation]`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.durations import positive_duration
from bot.domain.oncall import Override, current_and_next
from bot.errors import UserError
from bot.ports import IncidentTransaction
from bot.services.container import Services
from bot.services.incidents import in_transaction
from bot.slack import ids
from bot.slack.render_lists import mention, oncall_lines
from bot.slack.replies import Reply, acknowledged, ephemeral, rendered
from commands.parsing import parse_user

USAGE = "/oncall override @user <duration, e.g. 4h> [rotation]"
HELP = (
    "*`/oncall`* — who is on call now and next, per rotation\n"
    f"*`{USAGE}`* — take a shift; rotation defaults to the only one configured"
)


async def show(services: Services) -> Reply:
    """Now and next for every rotation."""
    now = services.now()
    rows = []
    for rotation in services.rotations.values():
        overrides = await in_transaction(services.db, _overrides_of(rotation.name, now))
        current, upcoming = current_and_next(rotation, now, overrides)
        rows.append((rotation.name, current, upcoming))
    return rendered(oncall_lines(rows))


async def override(services: Services, args: list[str], actor: str) -> Reply:
    """Record an override starting now."""
    if len(args) < 2:
        raise UserError(f"Usage: `{USAGE}`")
    user = parse_user(args[0], USAGE)
    try:
        duration = positive_duration(args[1])
    except ValueError as exc:
        raise UserError(f"{exc}. Usage: `{USAGE}`") from None
    rotation = _rotation(services, args[2] if len(args) > 2 else None)
    now = services.now()
    try:
        entry = Override(rotation=rotation, user=user, starts_at=now, ends_at=now + duration)
    except OverflowError:
        raise UserError(f"Duration `{args[1]}` is too long. Usage: `{USAGE}`") from None
    await in_transaction(services.db, lambda tx: tx.add_override(entry, by=actor, at=now))
    return ephemeral(
        f"{mention(user)} is on call for *{rotation}* until {entry.ends_at:%a %H:%M} UTC."
    )


def _overrides_of(
    rotation: str, now: datetime
) -> Callable[[IncidentTransaction], Coroutine[Any, Any, list[Override]]]:
    async def read(tx: IncidentTransaction) -> list[Override]:
        return await tx.overrides(rotation, now)

    return read


def _rotation(services: Services, name: str | None) -> str:
    names = list(services.rotations)
    if name is None:
        if len(names) == 1:
            return names[0]
        raise UserError(f"Name the rotation: one of {', '.join(names) or 'none configured'}.")
    if name not in services.rotations:
        raise UserError(
            f"No rotation `{name}`. Rotations: {', '.join(names) or 'none configured'}."
        )
    return name


async def handle(services: Services, text: str, actor: str) -> Reply:
    """Dispatch one /oncall call."""
    args = text.split()
    if not args:
        return await show(services)
    if args[0] == "override":
        return await override(services, args[1:], actor)
    if args[0] == "help":
        return ephemeral(HELP)
    return ephemeral(f"Unknown subcommand `{args[0]}`.\n{HELP}")


def register(app: AsyncApp, services: Services) -> None:
    """Wire /oncall into the Bolt app."""

    async def oncall_command(command: dict[str, Any], _client: Any) -> Reply:
        return await handle(services, command.get("text", ""), command["user_id"])

    app.command(ids.ONCALL_COMMAND)(acknowledged(oncall_command))
