"""A PostgreSQL server of a test's own, which the test may stop, start and restart.

The machine's shared Postgres (127.0.0.1:5432) serves every other test and must never be
restarted; a test that takes the store away starts this one instead: `initdb` into a temporary
folder, `pg_ctl` on a free port, trust authentication for `postgres` on 127.0.0.1 only.

Postgres refuses to run as root, so as root the binaries run as the `postgres` user
(`runuser`). Debian package: `apt-get install postgresql`.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.realservers import free_port

INSTALL_HINT = "apt-get install postgresql"
USER = "postgres"


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin folder holding initdb and pg_ctl, if any."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    for folder in candidates:
        if all(os.access(Path(folder, name), os.X_OK) for name in ("initdb", "pg_ctl")):
            return Path(folder)
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and shutil.which("initdb") else None


def _version(folder: str) -> float:
    try:
        return float(Path(folder).parent.name)
    except ValueError:
        return 0.0


class PostgresServer:
    """One cluster in a temporary folder: `start`, `stop`, `restart`, `url`, `remove`."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="tocsin-pg-"))
        self.data = self.folder / "data"
        self.log_path = self.folder / "postgres.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse root
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root without runuser: cannot start postgres")
            self._as_user = [runuser, "-u", USER, "--"]
            shutil.chown(self.folder, USER)
        self.running = False

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of a database on this server."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """The libpq DSN (asyncpg) of a database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster (`initdb`)."""
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._ctl("start", "-l", str(self.log_path), "-o", self._options())
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: sessions are ended, as a restart or failover ends them)."""
        self._ctl("stop", "-m", mode)
        self.running = False

    def restart(self) -> None:
        """Stop (fast) and start again, as `pg_ctlcluster … restart` does."""
        self._ctl("restart", "-m", "fast", "-l", str(self.log_path), "-o", self._options())
        self.running = True

    def log(self) -> str:
        """What the server logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def remove(self) -> None:
        """Stop the server if it runs (immediately) and delete its folder."""
        if self.running:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _options(self) -> str:
        return f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"

    def _ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", *args)

    def _run(self, binary: str, *args: str) -> None:
        argv = [*self._as_user, str(self.bindir / binary), *args]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=self.folder, check=False)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode, argv, done.stdout, f"{done.stderr}\n{self.log()[-2000:]}"
            )


def own_postgres() -> PostgresServer:
    """A started server of the test's own; skips the test when PostgreSQL is not installed."""
    bindir = find_bindir()
    if bindir is None:
        reason = f"PostgreSQL's initdb and pg_ctl are not installed: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so they are required)", pytrace=False)
        pytest.skip(reason)
    server = PostgresServer(bindir)
    atexit.register(server.remove)  # even when the test run is interrupted
    server.init()
    server.start()
    return server
