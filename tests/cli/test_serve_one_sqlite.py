"""SQLite serves one process: a second `tocsin serve` on the same file is refused at start with
one line that says why and what to do; once the first is gone (even killed), one starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.harness import ServeProcess, bot_env, running_emulator
from tests.realservers import free_port


def second_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_second_serve_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    async with running_emulator() as (_emulator, api):
        first = ServeProcess(bot_env(url, api), free_port(), tmp_path / "first.log")
        await first.start()
        try:
            refused = second_serve(first.env)
        finally:
            first.kill()
        assert refused.returncode == 2
        assert refused.stderr.splitlines() == [
            f"tocsin: tocsin serve (pid {first.proc.pid if first.proc else ''}) already serves "
            f"{tmp_path / 'tocsin.db'}: SQLite serves one process; run several replicas on "
            "Postgres (README: Several replicas)"
        ]
        # Killed, the first holds nothing: the next one serves at once.
        after = ServeProcess(bot_env(url, api), free_port(), tmp_path / "after.log")
        await after.start()
        after.stop()
