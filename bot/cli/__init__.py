"""The `tocsin` command."""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from aiohttp import web

from bot.cli import logs
from bot.cli.listen import listening_socket, serving_loop
from bot.config import Settings, load_settings
from bot.config.playbooks import load_dir
from bot.errors import CannotListen, ConfigError, SchemaOutOfDate, StoreInUse
from bot.store import schema
from bot.store.engine import is_sqlite
from bot.store.sqlite.one_server import hold_for_serving

log = logging.getLogger("tocsin")


def _log_options(*, top: bool) -> argparse.ArgumentParser:
    """The logging flags, given before or after the command (`tocsin -v db upgrade`)."""
    options = argparse.ArgumentParser(add_help=False)
    # Only the top level sets defaults: a command's own parser must not undo a flag given before it.
    unset = None if top else argparse.SUPPRESS
    options.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=unset,
        help="text (default) or json lines on stderr; or TOCSIN_LOG_FORMAT",
    )
    options.add_argument(
        "--log-level",
        choices=logs.LEVELS,
        type=str.lower,
        default=unset,
        help="info by default; or TOCSIN_LOG_LEVEL",
    )
    options.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="also the schema tool's (alembic's) own lines",
    )
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tocsin",
        description="Slack chat-ops for incidents.",
        parents=[_log_options(top=True)],
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = [_log_options(top=False)]
    add = functools.partial(sub.add_parser, parents=common)
    serve = add("serve", help="run the bot: webhooks, Slack events, health, metrics")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    db = add("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply every pending migration", parents=common)
    playbooks = add("playbooks", help="playbook files")
    pb_sub = playbooks.add_subparsers(dest="playbooks_command", required=True)
    check = pb_sub.add_parser(
        "check", help="validate playbooks; print file:line: reason", parents=common
    )
    check.add_argument("dir", nargs="?", type=Path, default=None)
    drill = add("drill", help="fire a drill alert at a running Tocsin and time each step")
    drill.add_argument("alertname", nargs="?", default=None, help="a playbook's alertname")
    drill.add_argument("--url", default="http://127.0.0.1:3000", help="the running Tocsin")
    drill.add_argument("--wait", type=float, default=30.0, help="seconds to follow the incident")
    config = add("config", help="settings: check them, or print a commented example")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    config_check = config_sub.add_parser(
        "check",
        help="validate tocsin.yml, the environment and the playbooks; print every setting and "
        "where it came from (secrets hidden)",
        parents=common,
    )
    config_check.add_argument("file", nargs="?", type=Path, default=None, help="a tocsin.yml")
    config_sub.add_parser(
        "example", help="print a commented tocsin.yml with every section", parents=common
    )
    notify = add("notify", help="pages beyond Slack: test a person's contact methods")
    notify_sub = notify.add_subparsers(dest="notify_command", required=True)
    notify_test = notify_sub.add_parser(
        "test", help="send a test notification through each of a person's methods", parents=common
    )
    notify_test.add_argument("user", help="a Slack user id under people: in tocsin.yml")
    digest = add("digest", help="the daily KPI digest: print it, or post it now")
    mode = digest.add_mutually_exclusive_group()
    mode.add_argument("--now", action="store_true", help="post it to its channels at once")
    mode.add_argument("--dry-run", action="store_true", help="print it here (the default)")
    digest.add_argument("--name", default=None, help="which digest (default: the first)")
    digest.add_argument(
        "--day", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: yesterday)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tocsin` console script."""
    args = _parser().parse_args(argv)
    try:
        env_format, env_level = logs.from_environment(os.environ)
    except logs.LogChoiceError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return 2
    logs.configure(
        log_format=args.log_format or env_format,
        level=args.log_level or env_level,
        verbose=args.verbose,
    )
    try:
        if args.command == "playbooks":
            return check_playbooks(args.dir)
        if args.command == "config":
            from bot.cli import config_check

            if args.config_command == "example":
                return config_check.print_example()
            return config_check.check(args.file, os.environ)
        settings = load_settings()
        if args.command == "db":
            schema.upgrade(settings.database_url)
            print(f"database at revision {schema.head_revision()}")
            return 0
        if args.command == "digest":
            from bot.cli.digest import run_digest

            return asyncio.run(run_digest(settings, post=args.now, name=args.name, day=args.day))
        if args.command == "notify":
            from bot.cli.notify import notify_test

            return notify_test(settings, args.user)
        if args.command == "drill":
            return _drill(settings, args.alertname, args.url, args.wait)
        with asyncio.Runner(loop_factory=serving_loop()) as runner:
            return runner.run(_serve(settings, args.host, args.port))
    except (ConfigError, SchemaOutOfDate, CannotListen, StoreInUse) as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def check_playbooks(folder: Path | None) -> int:
    """`tocsin playbooks check`: 0 when every playbook is valid, 1 otherwise."""
    target = folder if folder is not None else load_settings().playbooks_dir
    playbooks, problems = load_dir(target)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(playbooks)} playbooks OK in {target}: {', '.join(p.name for p in playbooks)}")
    return 0


def _drill(settings: Settings, alertname: str | None, url: str, wait: float) -> int:
    from bot.clock import SystemClock
    from bot.drills.client import drill_command
    from bot.main import load_playbooks

    token = settings.webhook_token.get_secret_value() if settings.webhook_token else None
    return drill_command(
        load_playbooks(settings),
        alertname,
        url=url,
        token=token,
        now=SystemClock().now,
        wait=wait,
    )


def settle_heap() -> None:
    """Keep what start-up built out of the garbage collector's full passes.

    Modules, settings, SQLAlchemy's compiled statements and Bolt's listeners live as long as the
    process; a full collection re-scanned all of them, pausing every webhook for 50-80 ms under
    load. Frozen once built, they are skipped, and full passes cost what the live traffic holds.
    """
    gc.collect()
    gc.freeze()


async def _serve(settings: Settings, host: str, port: int) -> int:
    """Serve; on SQLite, only while no other `tocsin serve` serves the same file."""
    serving = hold_for_serving(settings.database_url) if is_sqlite(settings.database_url) else None
    try:
        return await _serve_holding(settings, host, port)
    finally:
        if serving is not None:
            serving.release()


async def _serve_holding(settings: Settings, host: str, port: int) -> int:
    from bot.main import build_app
    from bot.observability.error_tracking import init_error_tracking

    sock = listening_socket(host, port)
    init_error_tracking(settings)
    if settings.webhook_token is None:
        log.warning("TOCSIN_WEBHOOK_TOKEN is not set: /webhooks/alertmanager accepts anyone")
    try:
        app = await build_app(settings, public_url=f"http://{host}:{port}")
    except BaseException:
        sock.close()
        raise
    settle_heap()
    runner = web.AppRunner(app.web_app, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    await app.start_background()
    if app.slack.emulator is not None:
        log.info(
            "sandbox workspace (no SLACK_BOT_TOKEN): open http://%s:%d/sandbox (Web API at %s)",
            host,
            port,
            app.slack.api_url,
        )
    log.info("tocsin listening on http://%s:%d", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    await app.close()
    return 0
