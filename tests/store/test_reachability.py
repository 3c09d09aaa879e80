"""Which errors mean the database cannot be reached now (a 503, a loop that waits and resumes)
and which are something else (passed on unchanged)."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa

from bot.errors import StoreUnreachable
from bot.store.reachability import reachable, unreachable


class DriverError(Exception):
    """What a driver raises, with the SQLSTATE Postgres answered."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def wrapped(kind: type[sa.DBAPIError], sqlstate: str) -> sa.DBAPIError:
    return kind("SELECT 1", {}, DriverError(sqlstate))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (TimeoutError(), True),
        (sa.TimeoutError("QueuePool limit reached"), True),
        (wrapped(sa.DBAPIError, "57P01"), True),  # terminating connection: admin command
        (wrapped(sa.InternalError, "57P03"), True),  # the database system is shutting down
        (wrapped(sa.DBAPIError, "08003"), True),  # connection does not exist
        (wrapped(sa.OperationalError, "XX000"), True),
        (wrapped(sa.IntegrityError, "23505"), False),  # a uniqueness race: StoreConflict
        (wrapped(sa.ProgrammingError, "42P01"), False),  # a bug, not an outage
        (ValueError("not the store"), False),
    ],
)
def test_unreachable(error: Exception, expected: bool) -> None:
    assert unreachable(error) is expected


def test_reachable_turns_an_outage_into_store_unreachable_and_passes_the_rest() -> None:
    refused = pytest.raises(StoreUnreachable, match=r"unreachable \(ConnectionRefusedError\)")
    with refused, reachable():
        raise ConnectionRefusedError(111, "Connect call failed")
    with pytest.raises(sa.IntegrityError), reachable():
        raise wrapped(sa.IntegrityError, "23505")
