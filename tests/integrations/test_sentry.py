"""Sentry: the Web API client against a fake Sentry, and webhooks from the contract payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot.domain.alerts import AlertChange, AlertStatus, KnownAlert, classify_alert
from bot.domain.diagnostics import DiagnosticResult, Status
from bot.errors import InvalidPayload
from integrations.sentry import SentryClient, next_cursor, parse_webhook, verify_signature
from tests.fakes.sentry import PAYLOADS, FakeSentry, make_event, make_frame, payload

TOKEN = "sntrys_test_token_0123456789abcdef"
SECRET = "sentry-client-secret"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture
async def fake() -> AsyncIterator[FakeSentry]:
    server = FakeSentry(token=TOKEN, org="test-org", page_size=3)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def make_client(
    session: aiohttp.ClientSession,
    fake: FakeSentry,
    *,
    token: str = TOKEN,
    timeout: float = 5.0,
    api_url: str | None = None,
) -> SentryClient:
    return SentryClient(
        session,
        api_url=api_url or fake.base_url or "",
        org="test-org",
        token=token,
        timeout=timeout,
        clock=FixedClock(),
    )


def assert_clean(result: DiagnosticResult) -> None:
    """No secret and a single line in an error result."""
    assert TOKEN not in result.text
    assert "Bearer" not in result.text
    assert "\n" not in result.text


COUNTS = [5, 70, 3, 40, 1, 900, 20]


def add_seven_issues(fake: FakeSentry) -> None:
    for n, count in enumerate(COUNTS, start=1):
        fake.add_issue(
            "backend",
            str(n),
            count=count,
            user_count=n,
            first_seen=NOW - timedelta(days=3),
            last_seen=NOW - timedelta(hours=n),
        )


# --- top_issues ---------------------------------------------------------------------------


async def test_top_issues_follows_every_page_and_sorts_by_events(fake, session):
    add_seven_issues(fake)
    result = await make_client(session, fake).top_issues("backend", limit=7)

    assert result.status is Status.WARN
    assert result.table is not None
    assert result.table.columns == ("issue", "events", "users", "first seen", "last seen", "link")
    assert [row[1] for row in result.table.rows] == ["900", "70", "40", "20", "5", "3", "1"]
    assert result.table.rows[0][0].startswith("BACKEND-6 ")
    assert result.table.rows[0][2:5] == ("6", "3d ago", "6h ago")
    assert result.table.rows[0][5] == "https://sentry.io/organizations/test-org/issues/6/"
    assert "7 unresolved issues in backend" in result.text
    calls = fake.calls_to("/issues/")
    assert [c.query.get("cursor") for c in calls] == [None, "0:3:0", "0:6:0"]
    assert all(c.query["query"] == "is:unresolved" for c in calls)
    assert all(c.query["statsPeriod"] == "24h" for c in calls)
    assert all(c.authorization == f"Bearer {TOKEN}" for c in calls)


async def test_top_issues_stops_paging_once_it_has_enough(fake, session):
    add_seven_issues(fake)
    result = await make_client(session, fake).top_issues("backend", limit=4)

    assert len(fake.calls_to("/issues/")) == 2
    assert result.table is not None
    assert [row[1] for row in result.table.rows] == ["900", "70", "40", "5"]


async def test_top_issues_stops_when_next_has_no_results(fake, session):
    add_seven_issues(fake)
    result = await make_client(session, fake).top_issues("backend", limit=50)

    assert len(fake.calls_to("/issues/")) == 3
    assert result.table is not None
    assert len(result.table.rows) == 7


async def test_top_issues_keeps_only_issues_seen_within_the_window(fake, session):
    fake.add_issue("backend", "1", count=10, last_seen=NOW - timedelta(hours=2))
    fake.add_issue("backend", "2", count=99, last_seen=NOW - timedelta(hours=30))
    fake.add_issue("backend", "3", count=50, last_seen=NOW, status="resolved")
    client = make_client(session, fake)

    day = await client.top_issues("backend")
    two_days = await client.top_issues("backend", hours=48)

    assert day.table is not None
    assert [row[0].split()[0] for row in day.table.rows] == ["BACKEND-1"]
    assert two_days.table is not None
    assert [row[0].split()[0] for row in two_days.table.rows] == ["BACKEND-2", "BACKEND-1"]
    assert "last 2d" in two_days.text
    assert fake.calls_to("/issues/")[-1].query["statsPeriod"] == "14d"


async def test_top_issues_without_issues_is_ok(fake, session):
    fake.issues["backend"] = []
    result = await make_client(session, fake).top_issues("backend")

    assert result.status is Status.OK
    assert result.text == "No unresolved issues in the last 24h"
    assert result.table is None


async def test_top_issues_fires_no_more_pages_when_the_rate_limit_is_used_up(fake, session):
    add_seven_issues(fake)
    fake.rate_remaining = 1
    result = await make_client(session, fake).top_issues("backend", limit=7)

    assert len(fake.calls_to("/issues/")) == 1
    assert result.status is Status.WARN
    assert "rate limit" in result.text


async def test_a_429_is_waited_out_per_retry_after_then_retried(fake, session):
    add_seven_issues(fake)
    fake.fail_next(429, headers={"Retry-After": "1"})
    result = await make_client(session, fake).top_issues("backend", limit=2)

    assert result.status is Status.WARN
    first, second = fake.calls_to("/issues/")[:2]
    assert second.query.get("cursor") is None
    assert second.at - first.at >= 0.9


async def test_a_429_is_waited_out_per_the_rate_limit_reset(fake, session):
    fake.issues["backend"] = []
    fake.fail_next(429, headers={"X-Sentry-Rate-Limit-Reset": str(int(time.time()) + 1)})
    result = await make_client(session, fake).top_issues("backend")

    assert result.status is Status.OK
    assert len(fake.requests) == 2


async def test_a_429_longer_than_the_budget_fails_at_once(fake, session):
    fake.issues["backend"] = []
    fake.fail_next(429, headers={"Retry-After": "120"})
    result = await make_client(session, fake, timeout=5).top_issues("backend")

    # Not waited for: waiting would end in the 5 s timeout ("did not answer within 5s").
    assert result.status is Status.ERROR
    assert result.text == "rate limited by Sentry, retry after 120s"
    assert len(fake.requests) == 1


async def test_a_second_429_is_an_error(fake, session):
    fake.issues["backend"] = []
    fake.fail_next(429, 2, headers={"Retry-After": "0"})
    result = await make_client(session, fake).top_issues("backend")

    assert result.status is Status.ERROR
    assert result.text.startswith("rate limited by Sentry")
    assert len(fake.requests) == 2


async def test_a_500_is_retried_once(fake, session):
    fake.issues["backend"] = []
    fake.fail_next(500)
    result = await make_client(session, fake).top_issues("backend")

    assert result.status is Status.OK
    assert len(fake.requests) == 2


async def test_a_lasting_500_is_an_error(fake, session):
    fake.issues["backend"] = []
    fake.fail_next(500, 5)
    result = await make_client(session, fake).top_issues("backend")

    assert result.status is Status.ERROR
    assert result.text == "Sentry server error (HTTP 500)"
    assert len(fake.requests) == 2
    assert_clean(result)


async def test_a_stalled_sentry_is_an_error_within_the_timeout(fake, session):
    fake.issues["backend"] = []
    fake.stall = True
    result = await make_client(session, fake, timeout=1).top_issues("backend")

    assert result.status is Status.ERROR
    assert result.text == "Sentry did not answer within 1s"


async def test_garbage_is_an_error(fake, session):
    fake.issues["backend"] = []
    fake.garbage = True
    result = await make_client(session, fake).top_issues("backend")

    assert result.status is Status.ERROR
    assert "not JSON" in result.text or "other than JSON" in result.text
    assert_clean(result)


async def test_json_of_the_wrong_shape_is_an_error(fake, session):
    fake.fail_next(200, body=b'{"issues": []}')
    result = await make_client(session, fake).top_issues("backend")

    assert result.status is Status.ERROR
    assert "unexpected shape" in result.text


async def test_a_wrong_token_is_an_auth_error_that_does_not_show_it(fake, session):
    fake.issues["backend"] = []
    wrong = "sntrys_wrong_token_fedcba9876543210"
    result = await make_client(session, fake, token=wrong).top_issues("backend")

    assert result.status is Status.ERROR
    assert "authentication failed" in result.text
    assert "HTTP 401" in result.text
    assert wrong not in result.text
    assert_clean(result)


async def test_a_token_without_scope_is_named(fake, session):
    fake.fail_next(403, body=b'{"detail": "You do not have permission"}')
    result = await make_client(session, fake).top_issues("backend")

    assert result.text == "Sentry token lacks scope project:read (HTTP 403)"


async def test_other_client_errors_show_sentry_s_detail(fake, session):
    fake.fail_next(400, body=b'{"detail": "Invalid query: bad token"}')
    fake.fail_next(302, headers={"Location": "https://elsewhere.example/"}, body=b"")
    client = make_client(session, fake)

    bad_request = await client.top_issues("backend")
    redirected = await client.top_issues("backend")

    assert bad_request.text == "Sentry answered HTTP 400: Invalid query: bad token"
    assert redirected.text.startswith("Sentry redirected (HTTP 302)")
    assert len(fake.requests) == 2


async def test_an_unknown_project_is_named(fake, session):
    result = await make_client(session, fake).top_issues("nope")

    assert result.status is Status.ERROR
    assert result.text == "unknown project nope in organization test-org (HTTP 404)"


async def test_an_unreachable_sentry_is_an_error(session):
    server = FakeSentry(token=TOKEN)
    url = await server.start()
    await server.stop()
    client = SentryClient(session, api_url=url, org="test-org", token=TOKEN, timeout=2)

    result = await client.top_issues("backend")

    assert result.status is Status.ERROR
    assert result.text.startswith("Sentry unreachable: ")
    assert_clean(result)


# --- latest_event and health --------------------------------------------------------------


async def test_latest_event_shows_the_exception_and_in_app_frames(fake, session):
    fake.events["42"] = make_event(tags={"server_name": "web1"})
    result = await make_client(session, fake).latest_event("42")

    assert result.status is Status.WARN
    lines = result.text.splitlines()
    assert lines[0] == "ApiException: Authentication failed, token expired!"
    assert "release 1764232" in lines[1]
    assert "environment production" in lines[1]
    assert "browser=Chrome 60.0" in lines[2]
    assert "server_name=web1" in lines[2]
    assert lines[3] == "at ApiRequest.java:8 in perform"
    assert result.table is not None
    assert result.table.rows == (
        ("ApiRequest.java:8", "perform"),
        ("Sidebar.java:5", "fetch"),
        ("Application.java:102", "home"),
    )
    assert fake.requests[0].path == "organizations/test-org/issues/42/events/latest/"


async def test_latest_event_shows_at_most_five_frames(fake, session):
    frames = [make_frame(f"app/m{n}.py", n, f"f{n}", in_app=True) for n in range(9)]
    fake.events["42"] = make_event(frames=frames, release=None)
    result = await make_client(session, fake).latest_event("42")

    assert result.table is not None
    assert [row[0] for row in result.table.rows] == [f"app/m{n}.py:{n}" for n in (8, 7, 6, 5, 4)]
    assert "release ?" in result.text


async def test_latest_event_reads_the_webhook_event_shape_too(fake, session):
    fake.events["1117540176"] = payload("sentry-event-alert.json")["data"]["event"]
    result = await make_client(session, fake).latest_event("1117540176")

    assert result.text.startswith("ReferenceError: heck is not defined")
    assert "at <anonymous>:3 in ? (no in-app frames)" in result.text
    assert result.table is not None
    assert result.table.rows[0] == ("<anonymous>:3", "?")


async def test_latest_event_of_an_unknown_issue_is_an_error(fake, session):
    result = await make_client(session, fake).latest_event("404")

    assert result.status is Status.ERROR
    assert "unknown issue 404" in result.text


async def test_health(fake, session):
    ok = await make_client(session, fake).health()
    denied = await make_client(session, fake, token="nope-token").health()

    assert ok.status is Status.OK
    assert "Test Org" in ok.text
    assert denied.status is Status.ERROR
    assert "authentication failed" in denied.text


def test_next_cursor_reads_the_documented_link_header():
    link = (
        '<https://sentry.io/api/0/projects/o/p/issues/?&cursor=0:0:1>; rel="previous"; '
        'results="false"; cursor="0:0:1", <https://sentry.io/api/0/projects/o/p/issues/'
        '?&cursor=0:100:0>; rel="next"; results="true"; cursor="0:100:0"'
    )
    assert next_cursor(link) == "0:100:0"
    assert next_cursor(link.replace('results="true"', 'results="false"')) is None
    assert next_cursor("") is None


# --- webhooks -----------------------------------------------------------------------------

WEBHOOK_FILES = ["sentry-issue-created.json", "sentry-event-alert.json", "sentry-metric-alert.json"]


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(name: str, **changes: Any) -> bytes:
    if not changes:
        return (PAYLOADS / name).read_bytes()
    data = payload(name)
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize("name", WEBHOOK_FILES)
def test_signatures_verify_on_the_raw_body(name):
    body = body_of(name)
    signature = sign(body)

    assert verify_signature(SECRET, body, signature)
    assert not verify_signature(SECRET, body[:-2] + b"x" + body[-1:], signature)
    assert not verify_signature("other-secret", body, signature)
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, "")
    assert not verify_signature(SECRET, body, "zz" + signature[2:])
    assert not verify_signature("", body, sign(body, ""))


def test_an_issue_created_webhook_fires():
    group = parse_webhook("issue", body_of("sentry-issue-created.json"), received_at=RECEIVED)

    assert group is not None
    assert (group.source, group.receiver, group.group_key) == (
        "sentry",
        "front-end",
        "issue:1170820242",
    )
    assert group.status is AlertStatus.FIRING
    (alert,) = group.alerts
    assert alert.fingerprint == "1170820242"
    assert alert.status is AlertStatus.FIRING
    assert alert.starts_at == datetime(2019, 8, 19, 20, 58, 37, 391000, tzinfo=UTC)
    assert alert.ends_at is None
    assert dict(alert.labels) == {
        "alertname": "ReferenceError: blooopy is not defined",
        "project": "front-end",
        "level": "error",
        "severity": "error",
        "sentry_issue": "1170820242",
    }
    assert alert.annotations["summary"] == "ReferenceError: blooopy is not defined"
    assert group.group_labels == {"alertname": "ReferenceError: blooopy is not defined"}
    assert group.title == "ReferenceError: blooopy is not defined"


def test_an_issue_resolved_webhook_resolves_the_same_key():
    created = parse_webhook("issue", body_of("sentry-issue-created.json"), received_at=NOW)
    body = body_of("sentry-issue-created.json", action="resolved")
    resolved = parse_webhook("issue", body, received_at=RECEIVED)

    assert created is not None
    assert resolved is not None
    assert resolved.key == created.key
    assert resolved.status is AlertStatus.RESOLVED
    (alert,) = resolved.alerts
    assert alert.status is AlertStatus.RESOLVED
    assert alert.ends_at == RECEIVED


def test_issue_transitions_resolve_and_refire_in_the_domain():
    created = parse_webhook("issue", body_of("sentry-issue-created.json"), received_at=NOW)
    resolved = parse_webhook(
        "issue", body_of("sentry-issue-created.json", action="resolved"), received_at=NOW
    )
    later = NOW + timedelta(hours=1)
    again = parse_webhook(
        "issue", body_of("sentry-issue-created.json", action="unresolved"), received_at=later
    )
    assert created is not None
    assert resolved is not None
    assert again is not None

    def known(alert: Any) -> KnownAlert:
        return KnownAlert(alert.fingerprint, alert.status, alert.starts_at)

    assert classify_alert(known(created.alerts[0]), resolved.alerts[0]) is AlertChange.RESOLVED
    assert classify_alert(known(resolved.alerts[0]), again.alerts[0]) is AlertChange.REFIRED


@pytest.mark.parametrize("action", ["assigned", "archived", "ignored"])
def test_other_issue_actions_are_ignored(action):
    body = body_of("sentry-issue-created.json", action=action)
    assert parse_webhook("issue", body, received_at=RECEIVED) is None


def test_an_event_alert_fires_on_the_issue_key():
    group = parse_webhook("event_alert", body_of("sentry-event-alert.json"), received_at=RECEIVED)

    assert group is not None
    assert (group.receiver, group.group_key) == ("front-end", "issue:1117540176")
    assert group.status is AlertStatus.FIRING
    (alert,) = group.alerts
    assert alert.fingerprint == "1117540176"
    assert alert.labels["severity"] == "error"
    assert alert.labels["sentry_issue"] == "1117540176"
    assert alert.annotations["rule"] == "Very Important Alert Rule!"
    assert alert.annotations["url"].endswith(
        "/issues/1117540176/events/e4874d664c3540c1a32eab185f12c5ab/"
    )
    assert alert.starts_at == datetime(2019, 8, 19, 21, 6, 17, 677000, tzinfo=UTC)
    assert group.external_url == alert.annotations["url"]


def test_a_critical_metric_alert_fires():
    body = body_of("sentry-metric-alert.json", action="critical")
    group = parse_webhook("metric_alert", body, received_at=RECEIVED)

    assert group is not None
    assert (group.receiver, group.group_key) == ("metric_alert", "metric_alert:7")
    assert group.status is AlertStatus.FIRING
    (alert,) = group.alerts
    assert alert.fingerprint == "4"
    assert alert.labels["alertname"] == "Too many errors"
    assert alert.labels["severity"] == "critical"
    assert alert.labels["project"] == "bar"
    assert (
        alert.annotations["description"]
        == "1000 events in the last 10 minutes\nFilter: level:error"
    )
    assert group.external_url == "https://sentry.io/organizations/baz/alerts/1/"
    assert alert.ends_at is None


def test_a_resolved_metric_alert_resolves():
    body = body_of("sentry-metric-alert.json")
    group = parse_webhook("metric_alert", body, received_at=RECEIVED)

    assert group is not None
    assert group.group_key == "metric_alert:7"
    assert group.status is AlertStatus.RESOLVED
    assert group.alerts[0].ends_at == RECEIVED
    assert "severity" not in group.alerts[0].labels


@pytest.mark.parametrize("resource", ["installation", "error", "comment", "seer"])
def test_resources_without_alerts_are_ignored(resource):
    assert parse_webhook(resource, b'{"action": "created", "data": {}}', received_at=NOW) is None


@pytest.mark.parametrize(
    ("resource", "body", "reason"),
    [
        (None, b"{}", "Sentry-Hook-Resource"),
        ("issue", b"not json", "not valid JSON"),
        ("issue", b"[1, 2]", "not a JSON object"),
        ("issue", b'{"data": {}}', "action"),
        ("issue", b'{"action": "created"}', "data"),
        ("issue", b'{"action": "created", "data": {}}', "data.issue"),
        ("issue", b'{"action": "created", "data": {"issue": {"title": "x"}}}', "data.issue.id"),
        ("event_alert", b'{"action": "triggered", "data": {"event": {}}}', "data.event"),
        ("metric_alert", b'{"action": "critical", "data": {"metric_alert": {}}}', "metric_alert"),
    ],
)
def test_malformed_webhooks_are_invalid(resource, body, reason):
    with pytest.raises(InvalidPayload, match=reason) as caught:
        parse_webhook(resource, body, received_at=NOW)
    assert "\n" not in str(caught.value)
