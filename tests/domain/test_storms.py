"""The storm rule and a storm's summary (bot.domain.storms), and the flapping rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.flapping import FlapHistory, FlapRule, starts_flapping
from bot.domain.incidents import Incident, IncidentStatus, Severity
from bot.domain.storms import StormMember, StormRule, StormWeather, folds, summarize

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
RULE = StormRule(new_groups=10, within=timedelta(minutes=2))
STORM = Incident(
    1, "tocsin:storm:storm-1", "Alert storm 1", Severity.SEV2, IncidentStatus.TRIGGERED, NOW
)


def member(n: int, name: str, service: str, *, minute: int, firing: int = 1) -> StormMember:
    return StormMember(
        incident_id=n,
        title=name,
        labels={"alertname": name, "service": service, "dc": "fra1"},
        severity=Severity.SEV2 if n % 2 else Severity.SEV3,
        status=IncidentStatus.TRIGGERED if firing else IncidentStatus.RESOLVED,
        firing=firing,
        resolved=0 if firing else 1,
        joined_at=NOW + timedelta(minutes=minute, seconds=n),
    )


def test_the_threshold_starts_a_storm_and_a_gathering_storm_keeps_gathering() -> None:
    assert not folds(RULE, StormWeather(new_groups=9), NOW)
    assert folds(RULE, StormWeather(new_groups=10), NOW)
    assert not folds(None, StormWeather(new_groups=500), NOW)  # storm: off
    recent = StormWeather(new_groups=1, storm=STORM, last_joined=NOW - timedelta(minutes=1))
    assert folds(RULE, recent, NOW)
    calm = StormWeather(new_groups=1, storm=STORM, last_joined=NOW - timedelta(minutes=2))
    assert not folds(RULE, calm, NOW)


def test_the_summary_counts_groups_and_says_what_they_all_share() -> None:
    members = [
        member(2, "HighErrorRate", "checkout", minute=0),
        member(3, "HighErrorRate", "cart", minute=0),
        member(4, "HighLatency", "checkout", minute=1),
        member(5, "DiskFull", "db", minute=3, firing=0),
    ]
    summary = summarize(members, NOW + timedelta(minutes=3, seconds=10))
    assert (summary.groups, summary.firing, summary.resolved) == (4, 3, 1)
    assert [(t.name, t.groups, t.firing) for t in summary.by_alertname] == [
        ("HighErrorRate", 2, 2),
        ("HighLatency", 1, 1),
        ("DiskFull", 1, 0),
    ]
    assert summary.shared == {"dc": "fra1"}  # alert names differ: not shared
    assert summary.first is not None and summary.first.incident_id == 2
    assert summary.newest is not None and summary.newest.incident_id == 5
    assert list(summary.per_minute) == [2, 1, 0, 1]
    assert len(summary.chart) == 4 and summary.chart[2] == "▁"
    assert [m.incident_id for m in summary.members] == [2, 3, 4, 5]  # firing first


def test_the_third_refire_within_the_window_makes_a_group_flap() -> None:
    rule = FlapRule(refires=3, within=timedelta(minutes=30))
    assert not starts_flapping(rule, 1)
    assert starts_flapping(rule, 2)
    assert not starts_flapping(None, 9)
    assert not starts_flapping(rule, None)
    history = FlapHistory(2, [(NOW, True), (NOW + timedelta(minutes=1), False)])
    assert history.strip == "▲10:00 ▼10:01"
