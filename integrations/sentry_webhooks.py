"""Sentry integration-platform webhooks (contracts 4.1): signature check and AlertGroups."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.domain.alerts import Alert, AlertGroup, AlertStatus
from bot.domain.diagnostics import one_line
from bot.errors import InvalidPayload

SOURCE = "sentry"
_HANDLED = ("issue", "event_alert", "metric_alert")
_ISSUE_ACTIONS = {
    "created": AlertStatus.FIRING,
    "unresolved": AlertStatus.FIRING,
    "resolved": AlertStatus.RESOLVED,
}
_METRIC_ACTIONS = {
    "critical": AlertStatus.FIRING,
    "warning": AlertStatus.FIRING,
    "resolved": AlertStatus.RESOLVED,
}
_SEVERITY = {
    "fatal": "critical",
    "error": "error",
    "warning": "warning",
    "info": "info",
    "debug": "info",
}
_PROJECT_IN_URL = re.compile(r"/projects/[^/]+/([^/]+)/")
_M = TypeVar("_M", bound=BaseModel)
_TITLE_LIMIT = 80
_FINGERPRINT_LIMIT = 64


def verify_signature(secret: str, body: bytes, signature: str | None) -> bool:
    """True when `signature` is the HMAC-SHA256 hex of the raw body under `secret`."""
    if not secret or not signature:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode("ascii"), given)


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)


class _Project(_Model):
    slug: str = Field(min_length=1)


class _Issue(_Model):
    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    level: str = "error"
    project: _Project
    firstSeen: datetime | None = None
    web_url: str | None = None
    permalink: str | None = None


class _IssueData(_Model):
    issue: _Issue


class _Event(_Model):
    issue_id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    level: str = "error"
    project: str | None = None
    url: str = ""
    web_url: str = ""
    occurred: datetime | None = Field(default=None, alias="datetime")


class _EventData(_Model):
    event: _Event
    triggered_rule: str = ""


class _AlertRule(_Model):
    id: str | None = None
    name: str = ""


class _MetricAlert(_Model):
    id: str = Field(min_length=1)
    title: str = ""
    alert_rule: _AlertRule | None = None
    projects: list[str] = Field(default_factory=list)
    date_started: datetime | None = None


class _MetricData(_Model):
    metric_alert: _MetricAlert
    description_title: str = ""
    description_text: str = ""
    web_url: str = ""


class _Envelope(_Model):
    action: str = Field(min_length=1)
    data: dict[str, Any]


def parse_webhook(resource: str | None, body: bytes, *, received_at: datetime) -> AlertGroup | None:
    """An AlertGroup for a Sentry webhook, None for ones to ignore, or raise InvalidPayload."""
    if not resource:
        raise InvalidPayload("missing Sentry-Hook-Resource header")
    received_at = _aware(received_at)
    data = _json_object(body)
    if resource not in _HANDLED:
        # installation, error, comment and resources Sentry adds later are acknowledged unused.
        return None
    envelope = _validate(_Envelope, data, "")
    parse: Callable[[str, dict[str, Any], datetime], AlertGroup | None] = {
        "issue": _issue_group,
        "event_alert": _event_alert_group,
        "metric_alert": _metric_alert_group,
    }[resource]
    return parse(envelope.action, envelope.data, received_at)


def _json_object(body: bytes) -> Any:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidPayload("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidPayload("body is not a JSON object")
    return data


def _validate(model: type[_M], data: Any, prefix: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        where = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "")
        more = f" ({len(errors)} errors)" if len(errors) > 1 else ""
        raise InvalidPayload(one_line(f"{where or 'body'}: {first['msg']}{more}")) from None


def _issue_group(action: str, data: dict[str, Any], received_at: datetime) -> AlertGroup | None:
    status = _ISSUE_ACTIONS.get(action)
    if status is None:
        return None  # assigned, archived, ignored: nothing changes for the incident
    issue = _validate(_IssueData, data, "data").issue
    first_seen = _aware(issue.firstSeen) if issue.firstSeen else received_at
    # classify_alert counts a resolve or re-fire only when starts_at does not go back in time,
    # and Sentry gives no start per episode: later transitions start when they are received.
    starts_at = first_seen if action == "created" else max(first_seen, received_at)
    return _single_alert_group(
        receiver=issue.project.slug,
        group_key=f"issue:{issue.id}",
        fingerprint=issue.id,
        status=status,
        labels={
            "alertname": one_line(issue.title, _TITLE_LIMIT),
            "project": issue.project.slug,
            "level": issue.level,
            "severity": _severity(issue.level),
            "sentry_issue": issue.id,
        },
        annotations={"summary": issue.title, "url": issue.web_url or issue.permalink or ""},
        starts_at=starts_at,
        received_at=received_at,
    )


def _event_alert_group(
    action: str, data: dict[str, Any], received_at: datetime
) -> AlertGroup | None:
    if action != "triggered":
        return None
    parsed = _validate(_EventData, data, "data")
    event = parsed.event
    match = _PROJECT_IN_URL.search(event.url)
    project = match.group(1) if match else f"project-{event.project or 'unknown'}"
    annotations = {"summary": event.title, "url": event.web_url}
    if parsed.triggered_rule:
        annotations["rule"] = parsed.triggered_rule
    return _single_alert_group(
        receiver=project,
        group_key=f"issue:{event.issue_id}",
        fingerprint=event.issue_id,
        status=AlertStatus.FIRING,
        labels={
            "alertname": one_line(event.title, _TITLE_LIMIT),
            "project": project,
            "level": event.level,
            "severity": _severity(event.level),
            "sentry_issue": event.issue_id,
        },
        annotations=annotations,
        starts_at=_aware(event.occurred) if event.occurred else received_at,
        received_at=received_at,
    )


def _metric_alert_group(
    action: str, data: dict[str, Any], received_at: datetime
) -> AlertGroup | None:
    status = _METRIC_ACTIONS.get(action)
    if status is None:
        return None
    parsed = _validate(_MetricData, data, "data")
    alert = parsed.metric_alert
    rule = alert.alert_rule
    name = (rule.name if rule else "") or alert.title or "metric alert"
    labels = {"alertname": one_line(name, _TITLE_LIMIT), "sentry_metric_alert": alert.id}
    if alert.projects:
        labels["project"] = alert.projects[0]
    if status is AlertStatus.FIRING:
        labels["level"] = action
        labels["severity"] = action
    annotations = {"summary": parsed.description_title or name, "url": parsed.web_url}
    if parsed.description_text:
        # The docs' sample carries a literal backslash-n where a line break is meant.
        annotations["description"] = parsed.description_text.replace("\\n", "\n")
    return _single_alert_group(
        receiver="metric_alert",
        group_key=f"metric_alert:{(rule.id if rule else None) or alert.id}",
        fingerprint=alert.id,
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=_aware(alert.date_started) if alert.date_started else received_at,
        received_at=received_at,
    )


def _single_alert_group(
    *,
    receiver: str,
    group_key: str,
    fingerprint: str,
    status: AlertStatus,
    labels: dict[str, str],
    annotations: dict[str, str],
    starts_at: datetime,
    received_at: datetime,
) -> AlertGroup:
    resolved = status is AlertStatus.RESOLVED
    alert = Alert(
        fingerprint=_short_fingerprint(fingerprint),
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=min(starts_at, received_at) if resolved else starts_at,
        ends_at=received_at if resolved else None,
        generator_url=annotations.get("url", ""),
    )
    return AlertGroup(
        source=SOURCE,
        receiver=receiver,
        group_key=group_key,
        status=status,
        alerts=(alert,),
        group_labels={"alertname": labels["alertname"]},
        common_labels=dict(labels),
        common_annotations=dict(annotations),
        external_url=annotations.get("url", ""),
    )


def _severity(level: str) -> str:
    return _SEVERITY.get(level.lower(), "warning")


def _short_fingerprint(value: str) -> str:
    if len(value) <= _FINGERPRINT_LIMIT:
        return value
    return hashlib.sha256(value.encode()).hexdigest()[:_FINGERPRINT_LIMIT]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
