"""/oncall: who is on call now and next; `/oncall override @user 4h [rotation]`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.durations import positive_duration
from bot.errors import UserError
from bot.services.container import Services
from bot.slack import ids
from bot.slack.render.lists import mention, oncall_lines
from bot.slack.replies import Reply, acknowledged, ephemeral, rendered
from commands.parsing import parse_user

USAGE = "/oncall override @user <duration, e.g. 4h> [rotation]"
HELP = (
    "*`/oncall`* — who is on call now and next, per rotation\n"
    f"*`{USAGE}`* — take a shift; rotation defaults to the only one configured\n"
    "*`/oncall test`* — send yourself a test notification through each of your contact methods"
)


async def show(services: Services) -> Reply:
    """Now and next for every rotation."""
    return rendered(oncall_lines(await services.oncall.now_and_next()))


async def override(services: Services, args: list[str], actor: str) -> Reply:
    """Record an override starting now."""
    if len(args) < 2:
        raise UserError(f"Usage: `{USAGE}`")
    user = parse_user(args[0], USAGE)
    try:
        duration = positive_duration(args[1])
    except ValueError as exc:
        raise UserError(f"{exc}. Usage: `{USAGE}`") from None
    rotation = services.oncall.rotation(args[2] if len(args) > 2 else None)
    try:
        entry = await services.oncall.override(rotation, user, duration, by=actor)
    except OverflowError:
        raise UserError(f"Duration `{args[1]}` is too long. Usage: `{USAGE}`") from None
    return ephemeral(
        f"{mention(user)} is on call for *{rotation}* until {entry.ends_at:%a %H:%M} UTC."
    )


async def try_methods(services: Services, actor: str) -> Reply:
    """A test notification through each of the caller's contact methods, and each outcome."""
    if services.contacts is None:
        raise UserError("Contact methods are not set up here.")
    tried = await services.contacts.test(actor)
    lines = ["*Test notifications* (contact methods and rules: `people:` in tocsin.yml)"]
    for method in tried:
        outcome = "sent" if method.ok else f"FAILED: {method.reason}"
        if method.ok and method.reason:
            outcome += f" ({method.reason})"
        lines.append(f"• *{method.name}* ({method.service}): {outcome}")
    if len(tried) == 1:
        lines.append("You have no contact method beyond Slack: add yours under `people:`.")
    return ephemeral("\n".join(lines))


async def handle(services: Services, text: str, actor: str) -> Reply:
    """Dispatch one /oncall call."""
    args = text.split()
    if not args:
        return await show(services)
    if args[0] == "override":
        return await override(services, args[1:], actor)
    if args[0] == "test":
        return await try_methods(services, actor)
    if args[0] == "help":
        return ephemeral(HELP)
    return ephemeral(f"Unknown subcommand `{args[0]}`.\n{HELP}")


def register(app: AsyncApp, services: Services) -> None:
    """Wire /oncall into the Bolt app."""

    async def oncall_command(command: dict[str, Any], _client: Any) -> Reply:
        return await handle(services, command.get("text", ""), command["user_id"])

    app.command(ids.ONCALL_COMMAND)(acknowledged(oncall_command))
