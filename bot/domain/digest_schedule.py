"""When a daily digest is due: a local time of day in a time zone, daylight-saving changes included.

A run is named by the local date it runs on and reports on the local day before. A local time
that does not exist on a spring-forward day runs at the same offset as before the change (02:30
becomes 03:30); one that happens twice on a fall-back day runs the first time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

LATE_AFTER = timedelta(minutes=10)  # a run claimed later than this after its time is "late"


@dataclass(frozen=True)
class ScheduledDigest:
    """One configured digest: posted once a day at `at` (local time in `zone`) to `channels`
    (none: the alerts channel), with the KPIs named in `kpis` (none: all)."""

    name: str = "daily"
    at: time = time(9, 0)
    zone: tzinfo = UTC
    timezone: str = "UTC"  # the zone's IANA name, as the digest shows it
    channels: tuple[str, ...] = ()
    kpis: tuple[str, ...] = ()
    sentry_project: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class DueRun:
    """The run of one local date."""

    run_day: date
    due_at: datetime  # UTC

    @property
    def report_day(self) -> date:
        return self.run_day - timedelta(days=1)

    def is_late(self, now: datetime) -> bool:
        return now - self.due_at > LATE_AFTER


def scheduled_at(day: date, at: time, zone: tzinfo) -> datetime:
    """The UTC instant of `at` local time on `day`."""
    local = datetime.combine(day, at.replace(tzinfo=None), tzinfo=zone)
    # Round-trip through UTC: a time in a spring-forward gap resolves to a real instant.
    return local.astimezone(UTC)


def latest_due(now: datetime, at: time, zone: tzinfo) -> DueRun:
    """The most recent run whose time has come (today's, or yesterday's before today's time)."""
    today = now.astimezone(zone).date()
    for day in (today + timedelta(days=1), today, today - timedelta(days=1)):
        due = scheduled_at(day, at, zone)
        if due <= now:
            return DueRun(day, due)
    return DueRun(today - timedelta(days=2), scheduled_at(today - timedelta(days=2), at, zone))


def next_due(now: datetime, at: time, zone: tzinfo) -> DueRun:
    """The first run whose time is still to come."""
    day = latest_due(now, at, zone).run_day + timedelta(days=1)
    return DueRun(day, scheduled_at(day, at, zone))
