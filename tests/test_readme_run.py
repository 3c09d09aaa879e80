"""README's shell commands on a fresh copy of the project: the run command starts the sandbox and
serves its page, the example alert opens an incident whose card its resolved twin resolves, and
the backup command copies the database while Tocsin runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realservers import free_port

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(heading: str) -> str:
    """The README's text under `heading`, up to the next heading of any level."""
    start = README.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(r"^#{2,3} ", README[start:], re.MULTILINE)
    return README[start : start + following.start()] if following else README[start:]


def shell_blocks(heading: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)\n```", section(heading), re.DOTALL)]


def run_command() -> str:
    (block,) = [b for b in shell_blocks("## Run the bot") if "tocsin serve" in b]
    return block


def copy_project(target: Path) -> Path:
    """The project's files as a clone has them (untracked new files too), without local state."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture
def fresh_copy(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "tocsin")


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


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """README's run command, in a virtual environment of a fresh copy (as README says to make
    one; this one sees the installed packages, so nothing is downloaded)."""
    fresh_copy = copy_project(tmp_path_factory.mktemp("readme") / "tocsin")
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


def state(url: str, channel: str | None = None) -> dict[str, Any]:
    query = f"?channel={channel}" if channel else ""
    return dict(json.loads(get(f"{url}/sandbox/state{query}")[1]))


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen after {timeout:.0f} s: {what}")
        time.sleep(0.3)
    return found


def test_readme_alert_opens_an_incident_and_its_resolve_resolves_the_card(
    served: tuple[str, Path],
) -> None:
    url, folder = served
    firing, resolved = shell_blocks("## Send an alert")
    assert '"status":"firing"' in firing and '"status":"resolved"' in resolved
    assert '"endsAt":"0001-01-01T00:00:00Z"' not in resolved

    def send(command: str) -> None:
        command = command.replace("http://127.0.0.1:3000", url)
        sent = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=folder)
        assert sent.returncode == 0, sent.stderr

    send(firing)

    def incident_channel() -> str | None:
        names = {c["name"]: c["id"] for c in state(url)["channels"]}
        return next((i for n, i in names.items() if n.endswith("-higherrorrate")), None)

    channel = wait_for("the incident channel", incident_channel)
    pinned = wait_for("the card", lambda: state(url, channel)["channel"]["pins"])
    assert "Resolved" not in pinned and "critical" in pinned  # the label the playbook overrode
    send(resolved)
    wait_for("the card resolved", lambda: "Resolved" in state(url, channel)["channel"]["pins"])


def test_readme_backup_command_copies_the_running_database(served: tuple[str, Path]) -> None:
    _url, folder = served
    (backup,) = shell_blocks("### Backups")
    if shutil.which("sqlite3") is None:
        pytest.skip("sqlite3 is not installed (.ci/run installs it)")
    subprocess.run(["bash", "-c", backup], cwd=folder, check=True, capture_output=True)
    copy = sqlite3.connect(folder / "tocsin-backup.db")
    try:
        ((revision,),) = copy.execute("select version_num from alembic_version").fetchall()
    finally:
        copy.close()
    assert revision


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
