"""SQLite serves one process: `tocsin serve` takes an exclusive lock beside the database file
for as long as it runs, and a second one on the same file is refused at start.

Two servers on one file would each be an Alertmanager's target and a Slack request URL, and
would fight over SQLite's single write lock; several replicas need Postgres. The lock is the
operating system's (`flock`): a process killed with SIGKILL loses it at once, so a restart is
never refused by a dead server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.errors import StoreInUse


class ServingLock:
    """The lock a serving process holds on its SQLite file; released when the process ends."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def release(self) -> None:
        """Let another `tocsin serve` have the file (a clean stop)."""
        with contextlib.suppress(OSError):
            os.close(self._fd)


def lock_path(url: str) -> Path | None:
    """The lock file of a SQLite database URL; None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    return Path(database).with_name(Path(database).name + ".serving")


def hold_for_serving(url: str) -> ServingLock | None:
    """Take the serving lock of a SQLite file, or raise StoreInUse naming the process that has
    it."""
    path = lock_path(url)
    if path is None:
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise StoreInUse(
            f"{holder} already serves {make_url(url).database}: SQLite serves one process; "
            "run several replicas on Postgres (README: Several replicas)"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"tocsin serve (pid {os.getpid()})".encode())
    return ServingLock(path, fd)
