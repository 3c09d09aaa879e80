"""Core statements of the webhook path and the outbox, built once with bind parameters.

A statement built per call costs more than SQLite takes to run it: the column comparisons, the
cache key and the ORM's compile step are paid on every execution. Built once over the tables
(not the ORM classes), each is compiled once and then only executed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)

from bot.domain.incidents import Incident
from bot.store.models import (
    AlertRow,
    IncidentRow,
    OutboxJobRow,
    TimelineEventRow,
    WebhookReceiptRow,
)
from bot.store.sqlite.prepared import prepared

S = TypeVar("S")

INCIDENTS = cast(Table, IncidentRow.__table__)
ALERTS = cast(Table, AlertRow.__table__)
EVENTS = cast(Table, TimelineEventRow.__table__)
RECEIPTS = cast(Table, WebhookReceiptRow.__table__)
OUTBOX = cast(Table, OutboxJobRow.__table__)

RECEIPT_SEEN = prepared(
    select(RECEIPTS.c.id).where(
        RECEIPTS.c.source == bindparam("source"), RECEIPTS.c.body_sha256 == bindparam("sha")
    )
)
# IN lists of a few fixed lengths run prepared (an expanding IN is compiled at each execution);
# `among()` pads the values to the next length by repeating the last.
IN_LENGTHS = (2, 4, 8, 16, 32)


def among(
    statements: Mapping[int, S], values: Sequence[Any], name: str
) -> tuple[S, dict[str, Any]]:
    """The statement of the shortest IN list that holds `values`, and their parameters."""
    length = next(n for n in IN_LENGTHS if n >= len(values))
    padded = [*values, *[values[-1]] * (length - len(values))]
    return statements[length], {f"{name}{i}": v for i, v in enumerate(padded)}


def _in_list(name: str, length: int) -> list[BindParameter[Any]]:
    return [bindparam(f"{name}{i}") for i in range(length)]


RECEIPTS_AMONG = {
    n: prepared(
        select(RECEIPTS.c.body_sha256).where(
            RECEIPTS.c.source == bindparam("source"),
            RECEIPTS.c.body_sha256.in_(_in_list("sha", n)),
        )
    )
    for n in IN_LENGTHS
}
ADD_RECEIPT = prepared(insert(RECEIPTS))
# Locked for the webhook's transaction (Postgres; SQLite has one writer anyway): recording the
# incident's channel waits for it, so the webhook sees either no channel (and the card, posted
# later, shows its alerts) or the channel (and it queues a card update).
# Only the columns the domain's Incident holds: the labels (JSON) are read where needed. The
# intake's read also takes when its alerts last all resolved, so a transaction that finds it
# already as the notification would set it writes nothing.
INCIDENT_COLUMNS = [c for c in INCIDENTS.c if c.key in {f.name for f in fields(Incident)}]
LATEST_INCIDENT = prepared(
    select(*INCIDENT_COLUMNS, INCIDENTS.c.alerts_resolved_at)
    .where(INCIDENTS.c.current_key == bindparam("key"))
    .with_for_update()
)
INCIDENT_BY_ID = prepared(select(INCIDENTS).where(INCIDENTS.c.id == bindparam("id")))
# The card's alerts: firing first, then by name, as many as it lists (or a page of them, for
# the full list); and the counts of all.
ALERTS_SHOWN = prepared(
    select(ALERTS)
    .where(ALERTS.c.incident_id == bindparam("incident_id"))
    .order_by(ALERTS.c.status != "firing", ALERTS.c.name, ALERTS.c.id)
    .limit(bindparam("shown"))
    .offset(bindparam("skip"))
)
# How many alerts, how many fire, and since when: the first start of a firing alert, and of
# any alert (for an incident none of whose alerts fires any more).
ALERT_COUNTS = prepared(
    select(
        func.count(),
        func.count().filter(ALERTS.c.status == "firing"),
        func.min(ALERTS.c.starts_at).filter(ALERTS.c.status == "firing"),
        func.min(ALERTS.c.starts_at),
    ).where(ALERTS.c.incident_id == bindparam("incident_id"))
)
_KNOWN = (ALERTS.c.fingerprint, ALERTS.c.status, ALERTS.c.starts_at)
_OF_INCIDENT = ALERTS.c.incident_id == bindparam("incident_id")


def _others(named: ColumnElement[bool]) -> Select[bool, bool]:
    """Whether the incident holds an alert outside a notification, and a firing one: two index
    look-ups that stop at the first row, however many alerts the incident holds."""
    other = select(ALERTS.c.id).where(_OF_INCIDENT, ~named)
    return select(other.exists(), other.where(ALERTS.c.status == "firing").exists())


# A notification of one alert (the common case) runs prepared; of several, with an IN list.
_ONE = ALERTS.c.fingerprint == bindparam("fingerprint")
_MANY = ALERTS.c.fingerprint.in_(bindparam("fingerprints", expanding=True))
NAMED_ALERT = prepared(select(*_KNOWN).where(_OF_INCIDENT, _ONE))
OTHER_ALERTS_THAN_ONE = prepared(_others(_ONE))
NAMED_ALERTS = select(*_KNOWN).where(_OF_INCIDENT, _MANY)  # more than IN_LENGTHS[-1]
NAMED_AMONG = {
    n: prepared(select(*_KNOWN).where(_OF_INCIDENT, ALERTS.c.fingerprint.in_(_in_list("fp", n))))
    for n in IN_LENGTHS
}
OTHER_ALERTS_THAN_MANY = _others(_MANY)
INSERT_ALERTS = prepared(insert(ALERTS))
UPDATE_ALERT = prepared(
    update(ALERTS)
    .where(ALERTS.c.incident_id == bindparam("b_incident_id"))
    .where(ALERTS.c.fingerprint == bindparam("b_fingerprint"))
    .values(
        {
            c: bindparam(f"b_{c}")
            for c in (
                "name",
                "status",
                "labels",
                "annotations",
                "starts_at",
                "ends_at",
                "generator_url",
                "last_seen_at",
            )
        }
    )
)
SET_ALERTS_RESOLVED_AT = prepared(
    update(INCIDENTS)
    .where(INCIDENTS.c.id == bindparam("b_id"))
    .values(alerts_resolved_at=bindparam("b_at"))
)
INSERT_EVENTS = prepared(insert(EVENTS))
# The pending job a new one with the same coalesce key joins, taken by an update (that changes
# nothing) rather than read: the row stays locked until this transaction commits, so a worker
# cannot claim the job and read the incident before this transaction's changes are committed;
# a job claimed first is no longer pending, and the new one is inserted.
# (Not prepared: the prepared path does not convert what an update returns, such as a time.)
PENDING_BY_COALESCE_KEY = (
    update(OUTBOX)
    .where(OUTBOX.c.coalesce_key == bindparam("key"), OUTBOX.c.state == "pending")
    .values(state=OUTBOX.c.state)
    .returning(OUTBOX.c.id, OUTBOX.c.not_before)
)
SET_JOB_DUE = prepared(
    update(OUTBOX).where(OUTBOX.c.id == bindparam("b_id")).values(not_before=bindparam("b_due"))
)
JOB_BY_IDEM_KEY = prepared(select(OUTBOX.c.id).where(OUTBOX.c.idem_key == bindparam("key")))
SET_JOB_PAYLOAD = prepared(
    update(OUTBOX).where(OUTBOX.c.id == bindparam("b_id")).values(payload=bindparam("b_payload"))
)
INSERT_JOB = prepared(insert(OUTBOX))
