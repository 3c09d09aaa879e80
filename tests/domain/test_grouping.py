from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.alerts import (
    Alert,
    AlertChange,
    AlertGroup,
    AlertsOnRecord,
    AlertStatus,
    KnownAlert,
    News,
    classify_alert,
    fingerprint_of,
    incident_key,
    news_of,
)
from bot.domain.incidents import (
    GroupDecision,
    Incident,
    IncidentStatus,
    Severity,
    decide_for_group,
    severity_from_label,
)
from bot.errors import InvalidTransition

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)


def incident(status: IncidentStatus, resolved_at: datetime | None = None) -> Incident:
    return Incident(
        id=1,
        key="k",
        title="t",
        severity=Severity.SEV1,
        status=status,
        opened_at=T0,
        resolved_at=resolved_at,
    )


def alert(status: AlertStatus, starts_at: datetime = T0) -> Alert:
    return Alert("fp", status, {"alertname": "A"}, {}, starts_at, None)


def test_key_is_receiver_plus_group_key() -> None:
    group = AlertGroup("alertmanager", "web\\.hook", '{}:{alertname="X"}', AlertStatus.FIRING, [])
    assert group.key == incident_key("alertmanager", "web\\.hook", '{}:{alertname="X"}')
    other = AlertGroup("alertmanager", "pager", '{}:{alertname="X"}', AlertStatus.FIRING, [])
    assert group.key != other.key


def test_fingerprint_ignores_label_order() -> None:
    assert fingerprint_of({"a": "1", "b": "2"}) == fingerprint_of({"b": "2", "a": "1"})
    assert fingerprint_of({"a": "1"}) != fingerprint_of({"a": "2"})


RESOLVED_AT_T0 = incident(IncidentStatus.RESOLVED, T0)


@pytest.mark.parametrize(
    ("latest", "news", "now", "expected"),
    [
        (None, News.FIRES, T0, GroupDecision.OPEN),
        (None, News.CHANGES, T0, GroupDecision.IGNORE),
        (incident(IncidentStatus.TRIGGERED), News.FIRES, T0, GroupDecision.UPDATE),
        (incident(IncidentStatus.TRIGGERED), News.NONE, T0, GroupDecision.UPDATE),
        (incident(IncidentStatus.ACKNOWLEDGED), News.CHANGES, T0, GroupDecision.UPDATE),
        (RESOLVED_AT_T0, News.FIRES, T0 + timedelta(minutes=29), GroupDecision.REOPEN),
        (RESOLVED_AT_T0, News.FIRES, T0 + timedelta(minutes=30), GroupDecision.OPEN),
        (RESOLVED_AT_T0, News.CHANGES, T0 + timedelta(minutes=5), GroupDecision.UPDATE),
        # A late or repeated notification: nothing newer than the incident knows.
        (RESOLVED_AT_T0, News.NONE, T0 + timedelta(minutes=5), GroupDecision.STALE),
        (RESOLVED_AT_T0, News.NONE, T0 + timedelta(hours=5), GroupDecision.STALE),
    ],
)
def test_group_decision(
    latest: Incident | None, news: News, now: datetime, expected: GroupDecision
) -> None:
    assert decide_for_group(latest, news=news, now=now, reopen_window=WINDOW) is expected


def record(*known: KnownAlert) -> AlertsOnRecord:
    return AlertsOnRecord(
        named={k.fingerprint: k for k in known}, others_firing=False, any_before=True
    )


@pytest.mark.parametrize(
    ("known", "incoming", "expected"),
    [
        ((), alert(AlertStatus.FIRING), News.FIRES),  # a fingerprint it did not hold
        ((), alert(AlertStatus.RESOLVED), News.CHANGES),
        ((KnownAlert("fp", AlertStatus.RESOLVED, T0),), alert(AlertStatus.FIRING), News.NONE),
        (
            (KnownAlert("fp", AlertStatus.RESOLVED, T0),),
            alert(AlertStatus.FIRING, T0 - timedelta(minutes=1)),
            News.NONE,
        ),
        (
            (KnownAlert("fp", AlertStatus.RESOLVED, T0),),
            alert(AlertStatus.FIRING, T0 + timedelta(seconds=1)),
            News.FIRES,
        ),
        ((KnownAlert("fp", AlertStatus.RESOLVED, T0),), alert(AlertStatus.RESOLVED), News.NONE),
        ((KnownAlert("fp", AlertStatus.FIRING, T0),), alert(AlertStatus.FIRING), News.NONE),
        ((KnownAlert("fp", AlertStatus.FIRING, T0),), alert(AlertStatus.RESOLVED), News.CHANGES),
    ],
)
def test_what_a_notification_tells_an_incident(
    known: tuple[KnownAlert, ...], incoming: Alert, expected: News
) -> None:
    assert news_of(record(*known), [incoming]) is expected


def test_new_and_replayed_alerts() -> None:
    assert classify_alert(None, alert(AlertStatus.FIRING)) is AlertChange.NEW
    known = KnownAlert("fp", AlertStatus.FIRING, T0)
    assert classify_alert(known, alert(AlertStatus.FIRING)) is AlertChange.UNCHANGED
    assert classify_alert(known, alert(AlertStatus.RESOLVED)) is AlertChange.RESOLVED


def test_a_late_firing_delivery_does_not_undo_a_resolution() -> None:
    resolved = KnownAlert("fp", AlertStatus.RESOLVED, T0)
    assert classify_alert(resolved, alert(AlertStatus.FIRING, T0)) is AlertChange.UNCHANGED
    later = alert(AlertStatus.FIRING, T0 + timedelta(minutes=3))
    assert classify_alert(resolved, later) is AlertChange.REFIRED


def test_severity_from_labels() -> None:
    assert severity_from_label("critical") is Severity.SEV1
    assert severity_from_label("WARNING") is Severity.SEV3
    assert severity_from_label("sev2") is Severity.SEV2
    assert severity_from_label(None) is Severity.SEV3
    assert severity_from_label("nonsense") is Severity.SEV3


def test_illegal_transition_explains() -> None:
    from bot.domain.incidents import Action, transition

    with pytest.raises(InvalidTransition, match="resolved"):
        transition(incident(IncidentStatus.RESOLVED, T0), Action.ACKNOWLEDGE, actor="U1", now=T0)
    moved = transition(incident(IncidentStatus.TRIGGERED), Action.RESOLVE, actor="U1", now=T0)
    assert moved.incident.status is IncidentStatus.RESOLVED
    assert moved.events[0].actor == "U1" and moved.events[0].at == T0
