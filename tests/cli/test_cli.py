"""The `tocsin` command as a newcomer runs it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from bot.store import schema
from tests.harness import eventually
from tests.realservers import free_port


def tocsin(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**os.environ, "TOCSIN_CONFIG": "", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = tocsin("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "serve" in result.stdout and "db" in result.stdout


def test_db_upgrade_then_serve_accepts_the_schema(tmp_path: Path) -> None:
    result = tocsin("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tocsin.db").exists()
    assert f"revision {schema.head_revision()}" in result.stdout


def test_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = tocsin("serve", cwd=tmp_path, env={"TOCSIN_DATABASE_URL": "mysql://x"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("tocsin: TOCSIN_DATABASE_URL:")
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_old_schema_and_names_the_command(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    schema.upgrade(url)
    import sqlite3

    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0008'")  # two releases back
    result = tocsin(
        "serve", "--port", str(free_port()), cwd=tmp_path, env={"TOCSIN_DATABASE_URL": url}
    )
    assert result.returncode == 2
    assert "run `tocsin db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_busy_port_is_one_line_and_no_database_is_touched(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = tocsin("serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"tocsin: port {port} is in use on 127.0.0.1; try --port"
    assert not (tmp_path / "tocsin.db").exists()


async def test_serve_with_no_settings_runs_the_sandbox(tmp_path: Path) -> None:
    """README's run command in a fresh folder: SQLite file, sandbox workspace, alerts work."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TOCSIN_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                try:
                    async with session.get(f"{base}/readyz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, timeout=30, what="sandbox ready")
            body = (
                Path(__file__).parents[2]
                / ".."
                / "shared"
                / "contracts"
                / "payloads"
                / "alertmanager-0.25-captured-1-firing.json"
            ).read_bytes()
            async with session.post(f"{base}/webhooks/alertmanager", data=body) as r:
                assert r.status == 200

            async def channel_listed() -> bool:
                async with session.post(
                    f"{base}/sandbox/api/conversations.list",
                    headers={"Authorization": "Bearer xoxb-emulator"},
                ) as r:
                    names = [c["name"] for c in (await r.json())["channels"]]
                    return any(n.startswith("inc-") for n in names) and "alerts" in names

            await eventually(channel_listed, timeout=20, what="incident channel in the sandbox")
        assert (tmp_path / "tocsin.db").exists()
    finally:
        proc.terminate()
        out, _ = await asyncio.to_thread(proc.communicate, timeout=20)
    text = out.decode()
    assert "sandbox workspace" in text
    assert proc.returncode == 0, text[-2000:]


def test_digest_dry_run_prints_yesterdays_digest_and_posts_nothing(tmp_path: Path) -> None:
    real = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    result = tocsin("digest", "--dry-run", "--day", "2026-11-24", cwd=tmp_path, env=real)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Daily digest · Tue 24 Nov 2026"
    assert any(
        "Error rate" in line and "unavailable: not configured: set PROMETHEUS_URL" in line
        for line in lines
    )
    assert "demo data" not in result.stdout
    assert any(line.split()[:3] == ["Incidents", "opened", "0"] for line in lines)
    assert "Incidents · 0 opened" in result.stdout
    assert "Traceback" not in result.stderr


def test_digest_dry_run_in_the_sandbox_shows_demo_numbers_said_to_be_demo(
    tmp_path: Path,
) -> None:
    result = tocsin("digest", "--day", "2026-11-24", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2] == "demo data: numbers from the sandbox's demo sources, not from a real system"
    error_rate = next(line for line in lines if "Error rate" in line)
    assert error_rate.rstrip().endswith("(demo data)") and "%" in error_rate
    assert "not configured" not in result.stdout


def test_digest_names_an_unknown_digest_and_a_bad_day(tmp_path: Path) -> None:
    unknown = tocsin("digest", "--name", "weekly", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines()[-1] == "tocsin: no digest named 'weekly'"
    bad_day = tocsin("digest", "--day", "yesterday", cwd=tmp_path)
    assert bad_day.returncode == 2 and "invalid fromisoformat value" in bad_day.stderr


def test_commands_keep_the_schema_tools_lines_to_themselves_unless_asked(tmp_path: Path) -> None:
    quiet = tocsin("digest", "--dry-run", "--day", "2026-11-24", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "alembic" not in quiet.stderr and "Context impl" not in quiet.stderr
    upgrade = tocsin("db", "upgrade", cwd=tmp_path)
    assert upgrade.returncode == 0 and upgrade.stderr == ""
    verbose = tocsin("db", "upgrade", "-v", cwd=tmp_path)
    assert "INFO alembic.runtime.migration: Context impl SQLiteImpl." in verbose.stderr


def test_a_log_format_from_the_environment_is_checked(tmp_path: Path) -> None:
    result = tocsin("db", "upgrade", cwd=tmp_path, env={"TOCSIN_LOG_FORMAT": "xml"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tocsin: TOCSIN_LOG_FORMAT: must be one of text, json (got 'xml')"
    )


def test_log_flags_go_before_or_after_the_command(tmp_path: Path) -> None:
    for args in (
        ("--log-format", "json", "--log-level", "info", "db", "upgrade"),
        ("db", "upgrade", "--log-format", "json", "--log-level", "info"),
    ):
        result = tocsin(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stderr.splitlines()]
        assert {"time", "level", "logger", "message"} <= set(lines[0])
        assert lines[0]["logger"] == "alembic.runtime.migration"
        assert lines[0]["level"] == "INFO"
