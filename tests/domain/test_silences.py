"""Which of an incident's alerts a silence held the resolution of."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.domain.alerts import Alert, AlertStatus, fingerprint_of
from bot.domain.incidents import Incident, IncidentStatus, Severity
from bot.domain.silences import Watch, held_back, watching

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SILENCE = {"alertname": "HighErrorRate", "service": "api"}


def alert(fingerprint: str | None = None, **labels: str) -> Alert:
    all_labels = {**SILENCE, **labels}
    return Alert(
        fingerprint=fingerprint or fingerprint_of(all_labels),
        status=AlertStatus.FIRING,
        labels=all_labels,
        annotations={},
        starts_at=NOW - timedelta(hours=1),
        ends_at=None,
    )


INCIDENT = Incident(
    id=7,
    key='alertmanager:tocsin:{}:{alertname="HighErrorRate"}',
    title="t",
    severity=Severity.SEV2,
    status=IncidentStatus.TRIGGERED,
    opened_at=NOW - timedelta(hours=1),
    silence_id="s-1",
    silenced_until=NOW + timedelta(hours=1),
)


def test_an_alert_alertmanager_no_longer_holds_resolved_meanwhile() -> None:
    gone, still = alert("aaaa", instance="web-1"), alert("bbbb", instance="web-2")
    group = held_back(INCIDENT, [gone, still], [still], SILENCE, now=NOW)
    assert group is not None
    assert group.key == INCIDENT.key  # the incident's own group
    assert [(a.fingerprint, a.status, a.ends_at) for a in group.alerts] == [
        ("aaaa", AlertStatus.RESOLVED, NOW)
    ]
    assert group.alerts[0].starts_at == gone.starts_at  # the same firing, not a new one


def test_nothing_when_every_silenced_alert_still_fires() -> None:
    firing = alert("aaaa")
    assert held_back(INCIDENT, [firing], [firing], SILENCE, now=NOW) is None


def test_alerts_the_silence_does_not_match_are_left_to_notifications() -> None:
    other = alert(service="web")  # the silence does not hide it: Alertmanager tells its end
    assert held_back(INCIDENT, [other], [], SILENCE, now=NOW) is None


def test_an_alert_keyed_by_its_labels_is_known_by_alertmanagers_fingerprint_too() -> None:
    stored = alert()  # a sender that gave no fingerprint: Tocsin keyed it by its labels
    listed = replace(stored, fingerprint="0123456789abcdef")
    assert held_back(INCIDENT, [stored], [listed], SILENCE, now=NOW) is None


def test_an_alert_listed_as_ended_resolved_when_it_ended() -> None:
    ended = replace(alert("aaaa"), ends_at=NOW - timedelta(minutes=2))
    group = held_back(INCIDENT, [alert("aaaa")], [ended], SILENCE, now=NOW)
    assert group is not None and group.alerts[0].ends_at == NOW - timedelta(minutes=2)


def test_the_check_stops_with_the_silence() -> None:
    watch = Watch(INCIDENT.id, "s-1", SILENCE)
    assert watching(INCIDENT, watch, NOW)
    assert not watching(replace(INCIDENT, silence_id=None), watch, NOW)  # unsilenced
    assert not watching(replace(INCIDENT, silence_id="s-2"), watch, NOW)  # another silence
    assert not watching(INCIDENT, watch, NOW + timedelta(hours=1))  # the silence ended
    assert not watching(replace(INCIDENT, status=IncidentStatus.RESOLVED), watch, NOW)
    assert Watch.of(INCIDENT.id, watch.payload()) == watch  # the timer carries it whole
