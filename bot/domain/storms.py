"""Alert storms: when new alert groups come faster than people can follow channels.

A datacenter or a shared dependency going down makes Alertmanager send hundreds of new groups
within minutes. A channel each would come at Slack's pace (20 channels a minute), flood the
people paged and bury the cause. Once `StormRule.new_groups` new groups arrived within
`StormRule.within`, each further new group joins one storm incident instead: one channel, one
card that summarizes every group, one page. Each group keeps its own incident (its alerts,
state and timeline), marked as a member of the storm (`Incident.storm_id`), and can be split
out into a channel of its own.

A storm keeps gathering while groups keep joining it (one joined within the window); after
that, new groups open channels again unless they come fast enough to start a new storm.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.alerts import AlertGroup, AlertStatus, incident_key
from bot.domain.incidents import Incident, IncidentStatus, Severity
from bot.domain.timers import Timer

STORM_SOURCE = "tocsin"
STORM_RECEIVER = "storm"
STORM_KEY_PREFIX = incident_key(STORM_SOURCE, STORM_RECEIVER, "")
JOINED = "storm_joined"  # the storm's timeline kind of a group that joined it
STORM_CALM = "storm_calm"  # the timer that looks whether a storm stopped gathering
SPLIT_OFFERED = 20  # groups a calm storm offers to split with a button each (the rest by command)
SPARK = "▁▂▃▄▅▆▇█"
MINUTES_CHARTED = 15


@dataclass(frozen=True)
class StormRule:
    """`new_groups` new alert groups within `within` make a storm (config `storm:`)."""

    new_groups: int
    within: timedelta


@dataclass(frozen=True)
class StormWeather:
    """What the store says of the last `within`: how many alert groups were new (opened an
    incident or joined a storm), and the storm still open, with when a group last joined it."""

    new_groups: int
    storm: Incident | None = None
    last_joined: datetime | None = None


def folds(rule: StormRule | None, weather: StormWeather, now: datetime) -> bool:
    """True when a new alert group joins a storm instead of opening a channel of its own."""
    if rule is None:
        return False
    if (
        weather.storm is not None
        and weather.last_joined is not None
        and now - weather.last_joined < rule.within
    ):
        return True  # a storm still gathering keeps gathering
    return weather.new_groups >= rule.new_groups


def calm_timer(storm_id: int, joined_at: datetime, rule: StormRule) -> Timer:
    """Look, `rule.within` after a group joined, whether the storm stopped gathering."""
    return Timer(
        kind=STORM_CALM,
        idem_key=f"{STORM_CALM}:{storm_id}:{joined_at.isoformat()}",
        due_at=joined_at + rule.within,
        incident_id=storm_id,
    )


def is_storm_key(key: str) -> bool:
    """True for the key of a storm incident."""
    return key.startswith(STORM_KEY_PREFIX)


def storm_group(number: int, first: AlertGroup) -> AlertGroup:
    """The notification a storm incident is opened from: named for the storm, with the labels
    of the group that started it (its policy and severity decide how the storm pages)."""
    return AlertGroup(
        source=STORM_SOURCE,
        receiver=STORM_RECEIVER,
        group_key=f"storm-{number}",
        status=AlertStatus.FIRING,
        alerts=(),
        group_labels={"alertname": f"storm {number}"},
        common_labels={k: v for k, v in first.common_labels.items() if k != "alertname"},
        common_annotations={"summary": f"Alert storm {number}"},
    )


def worst(*severities: Severity) -> Severity:
    """The most severe of `severities` (sev1 is the worst)."""
    return min(severities, key=lambda s: s.value)


@dataclass(frozen=True)
class StormMember:
    """One alert group of a storm, as its summary shows it."""

    incident_id: int
    title: str
    labels: Mapping[str, str]
    severity: Severity
    status: IncidentStatus
    firing: int
    resolved: int
    joined_at: datetime

    @property
    def alertname(self) -> str:
        """The group's alert name."""
        return self.labels.get("alertname") or self.title

    @property
    def is_firing(self) -> bool:
        """True while the group is open with an alert firing."""
        return self.status is not IncidentStatus.RESOLVED and self.firing > 0


@dataclass(frozen=True)
class Tally:
    """Groups of one alert name, service or severity: how many, and how many still fire."""

    name: str
    groups: int
    firing: int


@dataclass(frozen=True)
class StormSummary:
    """What a storm's card says: its groups counted by alert name, service and severity, the
    first and the newest, the labels they all share (the probable cause), and new groups per
    minute."""

    groups: int
    firing: int
    resolved: int
    by_alertname: Sequence[Tally]
    by_service: Sequence[Tally]
    by_severity: Sequence[Tally]
    first: StormMember | None
    newest: StormMember | None
    shared: Mapping[str, str]
    per_minute: Sequence[int]
    members: Sequence[StormMember] = ()  # firing first, then in the order they joined

    @property
    def chart(self) -> str:
        """New groups per minute, oldest first, as a line of bars."""
        top = max(self.per_minute, default=0)
        if top == 0:
            return ""
        return "".join(
            SPARK[0] if n == 0 else SPARK[min(len(SPARK) - 1, n * len(SPARK) // (top + 1))]
            for n in self.per_minute
        )


def _tally(members: Sequence[StormMember], name_of: dict[int, str]) -> list[Tally]:
    groups = Counter(name_of[m.incident_id] for m in members)
    firing = Counter(name_of[m.incident_id] for m in members if m.is_firing)
    return [Tally(name, n, firing[name]) for name, n in groups.most_common()]


def summarize(members: Sequence[StormMember], now: datetime) -> StormSummary:
    """The summary of a storm's groups, as of `now`."""
    ordered = sorted(members, key=lambda m: (m.joined_at, m.incident_id))
    shared: dict[str, str] = dict(ordered[0].labels) if ordered else {}
    for member in ordered[1:]:
        shared = {k: v for k, v in shared.items() if member.labels.get(k) == v}
    if len({m.alertname for m in ordered}) > 1:
        shared.pop("alertname", None)
    minutes = [0] * MINUTES_CHARTED
    for member in ordered:
        ago = max(0, int((now - member.joined_at).total_seconds() // 60))  # a clock's skew: now
        if ago < MINUTES_CHARTED:
            minutes[MINUTES_CHARTED - 1 - ago] += 1
    first_used = next((i for i, n in enumerate(minutes) if n), MINUTES_CHARTED)
    return StormSummary(
        groups=len(ordered),
        firing=sum(m.is_firing for m in ordered),
        resolved=sum(not m.is_firing for m in ordered),
        by_alertname=_tally(ordered, {m.incident_id: m.alertname for m in ordered}),
        by_service=_tally(
            ordered, {m.incident_id: m.labels.get("service", "(no service)") for m in ordered}
        ),
        by_severity=_tally(ordered, {m.incident_id: m.severity.value.upper() for m in ordered}),
        first=ordered[0] if ordered else None,
        newest=ordered[-1] if ordered else None,
        shared=shared,
        per_minute=minutes[first_used:],
        members=sorted(ordered, key=lambda m: not m.is_firing),
    )
