"""Testing one's contact methods from a terminal: `tocsin notify test <user>` sends a test
notification through each method and says what came of each, without the URL's secrets
(`/oncall test` in Slack: tests/commands/test_oncall_contacts.py)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from tests.cli.test_cli import tocsin
from tests.notify.test_contact_rules import TOKEN, webhook_server


async def test_notify_test_in_a_terminal(tmp_path: Path) -> None:
    async with webhook_server() as (pushes, push_url), webhook_server(status=401) as (_, bad):
        config = tmp_path / "tocsin.yml"
        contacts = f'    contacts:\n      push: "{push_url}"\n      pager: "{bad}"\n'
        config.write_text(f"people:\n  U0DANA001:\n{contacts}")
        env = {"TOCSIN_CONFIG": str(config)}
        result = await _tocsin(tmp_path, env, "notify", "test", "U0DANA001")
        assert result.returncode == 1  # one method failed
        lines = result.stdout.splitlines()
        assert lines[0] == "push (json): sent"
        assert lines[1].startswith("pager (json): FAILED: ") and "401" in lines[1]
        assert TOKEN not in result.stdout + result.stderr
        assert len(pushes) == 1

        unknown = await _tocsin(tmp_path, env, "notify", "test", "U0NOBODY1")
        assert unknown.returncode == 1
        assert "U0NOBODY1 is not under people: in tocsin.yml (it names U0DANA001)" in unknown.stdout


async def _tocsin(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    # In a thread: the webhook servers answer on this loop meanwhile.
    return await asyncio.to_thread(tocsin, *args, cwd=tmp_path, env=env)
