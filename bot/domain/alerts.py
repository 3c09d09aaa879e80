"""Alerts and alert groups as the domain sees them, and how a group merges into an incident."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class AlertStatus(StrEnum):
    """Whether an alert is firing or resolved."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert of a group, identified by its fingerprint."""

    fingerprint: str
    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str = ""

    @property
    def name(self) -> str:
        """The alert's `alertname` label, or a placeholder."""
        return self.labels.get("alertname", "alert")


@dataclass(frozen=True)
class AlertGroup:
    """A notification about one group of alerts (one Alertmanager webhook)."""

    source: str
    receiver: str
    group_key: str
    status: AlertStatus
    alerts: Sequence[Alert]
    group_labels: Mapping[str, str] = field(default_factory=dict)
    common_labels: Mapping[str, str] = field(default_factory=dict)
    common_annotations: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    truncated_alerts: int = 0

    @property
    def key(self) -> str:
        """The incident key: one incident per receiver and group."""
        return incident_key(self.source, self.receiver, self.group_key)

    @property
    def title(self) -> str:
        """A short human title for the group."""
        summary = self.common_annotations.get("summary")
        if summary:
            return summary
        name = self.common_labels.get("alertname") or self.group_labels.get("alertname")
        if not name and self.alerts:
            name = self.alerts[0].name
        extra = [v for k, v in sorted(self.group_labels.items()) if k != "alertname"]
        return " ".join([name or "alert", *extra])

    @property
    def slug_source(self) -> str:
        """The words a channel name is made from: alert name and group label values."""
        name = self.group_labels.get("alertname") or self.common_labels.get("alertname")
        if not name and self.alerts:
            name = self.alerts[0].name
        extra = [v for k, v in sorted(self.group_labels.items()) if k != "alertname"]
        return " ".join([name or "alert", *extra])


def incident_key(source: str, receiver: str, group_key: str) -> str:
    """The key that maps a group of alerts to one incident."""
    return f"{source}:{receiver}:{group_key}"


def fingerprint_of(labels: Mapping[str, str]) -> str:
    """A stable fingerprint for senders that do not give one (older Alertmanagers)."""
    canon = "\x00".join(f"{k}\x01{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class KnownAlert:
    """What the store remembers of an alert."""

    fingerprint: str
    status: AlertStatus
    starts_at: datetime


@dataclass(frozen=True)
class AlertsOnRecord:
    """What the store holds of an incident's alerts, as far as one notification needs it:
    the alerts it names, and whether any other alert of the incident is firing."""

    named: Mapping[str, KnownAlert]
    others_firing: bool
    any_before: bool  # the incident held an alert before this notification

    def still_firing(self, changed: Mapping[str, AlertStatus]) -> bool:
        """Whether any alert fires once `changed` (fingerprint -> new status) is written."""
        if self.others_firing:
            return True
        status = {fp: known.status for fp, known in self.named.items()}
        status.update(changed)
        return AlertStatus.FIRING in status.values()


class AlertChange(StrEnum):
    """How one incoming alert changes the incident."""

    NEW = "new"
    RESOLVED = "resolved"
    REFIRED = "refired"
    UNCHANGED = "unchanged"


def classify_alert(known: KnownAlert | None, incoming: Alert) -> AlertChange:
    """Decide what an incoming alert means, ignoring stale, out-of-order deliveries."""
    if known is None:
        return AlertChange.NEW
    if incoming.status is AlertStatus.RESOLVED:
        if known.status is AlertStatus.FIRING and incoming.starts_at >= known.starts_at:
            return AlertChange.RESOLVED
        return AlertChange.UNCHANGED
    if known.status is AlertStatus.RESOLVED and incoming.starts_at > known.starts_at:
        return AlertChange.REFIRED
    return AlertChange.UNCHANGED


class News(StrEnum):
    """What a notification tells an incident that it did not know."""

    NONE = "none"  # nothing: every alert as the incident holds it, or older
    CHANGES = "changes"  # an alert resolved, or one the incident did not hold, already resolved
    FIRES = "fires"  # an alert fires that the incident did not hold, or held resolved, fires again


def news_of(record: AlertsOnRecord, incoming: Sequence[Alert]) -> News:
    """What `incoming` tells the incident of `record`: an alert firing anew (a fingerprint it
    did not hold, or one it held resolved, firing since a later `startsAt`), other changes, or
    nothing (a late or repeated notification)."""
    merged = merge_alerts(record.named, incoming)
    fresh = (AlertChange.NEW, AlertChange.REFIRED)
    if any(a.status is AlertStatus.FIRING and c in fresh for a, c in merged):
        return News.FIRES
    if any(c is not AlertChange.UNCHANGED for _, c in merged):
        return News.CHANGES
    return News.NONE


def merge_alerts(
    known: Mapping[str, KnownAlert], incoming: Sequence[Alert]
) -> list[tuple[Alert, AlertChange]]:
    """Classify each incoming alert against what the incident already holds.

    An alert listed twice in one notification counts once, as its last entry.
    """
    latest = {a.fingerprint: a for a in incoming}
    return [(a, classify_alert(known.get(a.fingerprint), a)) for a in latest.values()]
