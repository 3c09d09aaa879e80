"""Write-ahead-log checkpoints of a SQLite store, in a thread of their own.

In WAL mode SQLite copies the log back into the database file every 1,000 pages, inside the
commit that crosses the mark. For a server that commits on its event loop that is a 20-30 ms
commit about once a second under load, and every webhook waiting behind it waits that long.
A serving store turns that off on its own connections and lets this thread checkpoint instead:
PASSIVE checkpoints never block readers or writers, and SQLite runs them with the GIL released,
on the other core.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

INTERVAL = 0.5  # seconds between checkpoints: the log stays around what half a second writes


class WalCheckpointer:
    """Checkpoints the WAL of the SQLite file at `path` every `interval` seconds until stopped."""

    def __init__(self, path: Path, *, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tocsin-wal-checkpoint", daemon=True)

    def start(self) -> None:
        """Begin checkpointing."""
        self._thread.start()

    def stop(self) -> None:
        """Checkpoint once more and stop (waits for the thread)."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or locked: the next round tries again
                    log.warning("WAL checkpoint failed: %s", exc)
                if stopping:
                    return
        finally:
            connection.close()
