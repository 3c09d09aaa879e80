"""The intake's inserts, held back within a transaction and sent one statement per table.

Under an alert storm the group commit puts up to 16 notifications in one transaction, and each
inserted its receipt, its alerts and its timeline events as statements of their own: most of
the store's time went on the statements' overhead and, on SQLite, on handing the GIL between
the store's thread and the event loop at each one. Held here, those rows go out together, as
one executemany per table, before the transaction's next other statement and before it
commits: whatever else runs in the transaction sees them, in the order they were made.

The intake reads two things that may be held here: whether a body was received (`seen`), and
the alerts of an incident: `known` and `absent` remember what this transaction read or wrote
of them (held or not), so the next notification of the same incident reads only what it does
not know (`unknown`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Result, ScalarResult
from sqlalchemy.sql import Executable

from bot.domain.alerts import AlertStatus, KnownAlert
from bot.store import ingest_sql as sql
from bot.store.sessions import StoreSession

T = TypeVar("T")


class HeldInserts:
    """Rows for webhook_receipts, alerts and timeline_events, not yet sent."""

    def __init__(self) -> None:
        self.receipts: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self._received: set[tuple[str, str]] = set()  # held or sent by this transaction
        # incident id -> fingerprint -> what this transaction knows the store holds (or will,
        # once the held rows are sent); and the fingerprints it knows the store does not hold
        self.known: dict[int, dict[str, KnownAlert]] = {}
        self.absent: dict[int, set[str]] = {}

    def seen(self, source: str, body_sha256: str) -> bool:
        """Whether this transaction recorded a receipt of this body."""
        return (source, body_sha256) in self._received

    def add_receipt(self, row: dict[str, Any]) -> None:
        """Hold a receipt row."""
        self._received.add((row["source"], row["body_sha256"]))
        self.receipts.append(row)

    def remember(self, incident_id: int, alerts: Iterable[KnownAlert]) -> None:
        """What the store holds (or will hold) of these alerts of an incident."""
        known = self.known.setdefault(incident_id, {})
        absent = self.absent.get(incident_id, set())
        for alert in alerts:
            known[alert.fingerprint] = alert
            absent.discard(alert.fingerprint)

    def remember_absent(self, incident_id: int, fingerprints: Iterable[str]) -> None:
        """The store holds no alert of these fingerprints for the incident."""
        self.absent.setdefault(incident_id, set()).update(fingerprints)

    def unknown(self, incident_id: int, fingerprints: Iterable[str]) -> list[str]:
        """The fingerprints of which this transaction knows nothing."""
        known = self.known.get(incident_id, {})
        absent = self.absent.get(incident_id, set())
        return [fp for fp in fingerprints if fp not in known and fp not in absent]

    def another_firing(self, incident_id: int, named: Sequence[str]) -> bool:
        """Whether this transaction knows of a firing alert of the incident besides `named`, as
        it does from the second notification of an incident on; if not, the store must say."""
        names = set(named)
        return any(
            fingerprint not in names and alert.status is AlertStatus.FIRING
            for fingerprint, alert in self.known.get(incident_id, {}).items()
        )

    def forget_alerts(self) -> None:
        """Another statement may have changed alerts: read them from the store again."""
        self.known.clear()
        self.absent.clear()

    async def send(self, session: StoreSession) -> None:
        """Insert every held row, one statement per table, in the order they were made."""
        await self.send_alerts(session)
        await _send(session, sql.INSERT_EVENTS, self.events)
        await _send(session, sql.ADD_RECEIPT, self.receipts)

    async def send_alerts(self, session: StoreSession) -> None:
        """Insert the held alerts (before a statement that reads or updates alerts)."""
        await _send(session, sql.INSERT_ALERTS, self.alerts)


async def _send(session: StoreSession, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """One executemany of the held rows of a table; they are no longer held."""
    if rows:
        batch = list(rows)
        rows.clear()
        await session.execute(statement, batch)


class SendingFirst:
    """A session that sends the held rows before each statement: the rest of the store sees
    the transaction as if every insert had been made when it was asked for."""

    def __init__(self, session: StoreSession, held: HeldInserts) -> None:
        self._session = session
        self._held = held

    async def _before(self) -> None:
        self._held.forget_alerts()
        await self._held.send(self._session)

    async def execute(self, statement: Executable, params: Any = None, **kw: Any) -> Result[Any]:
        """Execute a statement after the held rows."""
        await self._before()
        return await self._session.execute(statement, params, **kw)

    async def scalar(self, statement: Executable, params: Any = None, **kw: Any) -> Any:
        """The first column of the first row, after the held rows."""
        await self._before()
        return await self._session.scalar(statement, params, **kw)

    async def scalars(
        self, statement: Executable, params: Any = None, **kw: Any
    ) -> ScalarResult[Any]:
        """The first column of every row, after the held rows."""
        await self._before()
        return await self._session.scalars(statement, params, **kw)

    async def get(self, entity: type[T], ident: Any, **kw: Any) -> T | None:
        """An object by primary key, after the held rows."""
        await self._before()
        return await self._session.get(entity, ident, **kw)

    async def flush(self) -> None:
        """Send the held rows and the ORM's pending changes."""
        await self._before()
        await self._session.flush()

    def add(self, instance: object) -> None:
        """Add an object to the unit of work (sent at the next statement)."""
        self._session.add(instance)

    def add_all(self, instances: Iterable[object]) -> None:
        """Add objects to the unit of work."""
        self._session.add_all(instances)
