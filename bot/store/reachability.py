"""Which store errors mean "the database cannot be reached now" rather than a bug.

A Postgres restart or failover shows up in several shapes: a refused connect (a bare
`ConnectionRefusedError` from the driver), "the database system is shutting down" or "is
starting up" (SQLSTATE class 57P), a connection closed in the middle of a statement (class 08),
a pool that cannot hand out a connection in time. All of them pass once the database is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa

from bot.errors import StoreUnreachable

# SQLSTATE classes: 08 connection exception; 57P operator intervention (admin shutdown,
# crash shutdown, cannot connect now); 53300 too many connections.
_UNREACHABLE_STATES = ("08", "57P", "53300")


def unreachable(error: BaseException) -> bool:
    """True when `error` says the database cannot be reached now (it may be later)."""
    if isinstance(error, StoreUnreachable | OSError | TimeoutError | sa.TimeoutError):
        return True
    if not isinstance(error, sa.DBAPIError):
        return False
    if error.connection_invalidated or isinstance(error, sa.OperationalError | sa.InterfaceError):
        return True
    state = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return isinstance(state, str) and state.startswith(_UNREACHABLE_STATES)


@contextmanager
def reachable() -> Iterator[None]:
    """Raise StoreUnreachable (with the cause chained) for an error that means the database
    cannot be reached now; any other error passes unchanged."""
    try:
        yield
    except StoreUnreachable:
        raise
    except Exception as error:
        if unreachable(error):
            raise StoreUnreachable(f"the store is unreachable ({type(error).__name__})") from error
        raise
