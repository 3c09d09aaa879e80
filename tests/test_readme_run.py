"""README's run command, on a fresh copy of the project, starts the sandbox and serves its page."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realservers import free_port

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def run_command() -> str:
    (block,) = re.findall(r"## Run the bot\n\n```sh\n(.*?)\n```", README, re.DOTALL)
    return block.strip()


@pytest.fixture
def fresh_copy(tmp_path: Path) -> Path:
    """The project's files as a clone has them (untracked new files too), without local state."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    target = tmp_path / "tocsin"
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def clean_env(venv: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "TOCSIN_", "SENTRY_", "SUPABASE_", "PROMETHEUS_"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@pytest.fixture
def served(fresh_copy: Path) -> Iterator[tuple[str, Path]]:
    venv = fresh_copy / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    command, port = run_command(), 3000
    assert command == "python -m pip install -e . && tocsin serve"
    if not port_free(port):  # a Tocsin of the developer's own is running
        port = free_port()
        command += f" --port {port}"
    log = fresh_copy / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=fresh_copy,
            env=clean_env(venv),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the run command exited:\n{log.read_text()[-3000:]}")
            try:
                if get(f"{url}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready after 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url, fresh_copy
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_readme_run_command_starts_the_sandbox_on_a_fresh_copy(served: tuple[str, Path]) -> None:
    url, folder = served
    status, page = get(f"{url}/sandbox")
    assert status == 200 and "Fire test alert" in page
    assert get(f"{url}/sandbox/static/sandbox.js")[0] == 200
    status, state = get(f"{url}/sandbox/state")
    assert status == 200 and '"name": "alerts"' in state
    assert (folder / "tocsin.db").exists()
    assert f"open {url}/sandbox" in (folder / "serve.log").read_text()


def test_the_built_package_ships_the_page_and_the_migration(fresh_copy: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            "dist",
            ".",
        ],
        cwd=fresh_copy,
        check=True,
        capture_output=True,
    )
    (wheel,) = (fresh_copy / "dist").glob("tocsin-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("index.html", "sandbox.js", "sandbox.css", "favicon.svg"):
        assert f"bot/sandbox/static/{shipped}" in names
    assert "bot/store/migrations/versions/0005_sandbox_snapshots.py" in names
