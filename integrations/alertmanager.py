"""Alertmanager: webhook payload (version 4) models and their conversion to domain alerts; its
v2 API for silences and for the alerts it holds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from bot.domain.alerts import Alert, AlertGroup, AlertStatus, fingerprint_of
from bot.errors import IntegrationError, InvalidPayload

# Alertmanager sends the zero time for alerts that have not ended.
_ZERO_YEAR = 1


class WebhookAlert(BaseModel):
    """One alert of a webhook notification."""

    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str | None = None


class WebhookPayload(BaseModel):
    """The body Alertmanager posts to a webhook receiver (version 4)."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = Field(min_length=1, max_length=4096)
    truncatedAlerts: int = Field(default=0, ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = Field(min_length=1, max_length=512)
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[WebhookAlert] = Field(min_length=1)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise InvalidPayload("timestamps must carry a time zone (RFC 3339)")
    return value


def _alert_to_domain(alert: WebhookAlert) -> Alert:
    ends_at = alert.endsAt
    if ends_at is not None and ends_at.year <= _ZERO_YEAR:
        ends_at = None
    return Alert(
        fingerprint=alert.fingerprint or fingerprint_of(alert.labels),
        status=AlertStatus(alert.status),
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=_aware(alert.startsAt),
        ends_at=_aware(ends_at) if ends_at else None,
        generator_url=alert.generatorURL,
    )


def to_domain(payload: WebhookPayload) -> AlertGroup:
    """The domain's view of a webhook notification."""
    return AlertGroup(
        source="alertmanager",
        receiver=payload.receiver,
        group_key=payload.groupKey,
        status=AlertStatus(payload.status),
        alerts=tuple(_alert_to_domain(a) for a in payload.alerts),
        group_labels=payload.groupLabels,
        common_labels=payload.commonLabels,
        common_annotations=payload.commonAnnotations,
        external_url=payload.externalURL,
        truncated_alerts=payload.truncatedAlerts,
    )


def parse_webhook(body: bytes) -> AlertGroup:
    """Validate a raw webhook body, or raise InvalidPayload with a one-line reason."""
    try:
        payload = WebhookPayload.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidPayload(_reason(exc)) from None
    return to_domain(payload)


def _reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "json_invalid":
        return "body is not valid JSON"
    if where == "version":
        return 'unsupported payload version (expected "4")'
    return f"{where or 'body'}: {first['msg']}" + (
        f" ({len(exc.errors())} errors)" if len(exc.errors()) > 1 else ""
    )


class HeldAlert(BaseModel):
    """One alert Alertmanager holds (`gettableAlert` of `GET /api/v2/alerts`)."""

    model_config = ConfigDict(extra="allow")

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    fingerprint: str
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""

    def to_domain(self) -> Alert:
        """Firing, whatever its `status.state` (unprocessed, active or suppressed): Alertmanager
        lists no alert that has ended."""
        return Alert(
            fingerprint=self.fingerprint,
            status=AlertStatus.FIRING,
            labels=self.labels,
            annotations=self.annotations,
            starts_at=_aware(self.startsAt),
            ends_at=_aware(self.endsAt) if self.endsAt and self.endsAt.year > _ZERO_YEAR else None,
            generator_url=self.generatorURL,
        )


class HeldAlerts(RootModel[list[HeldAlert]]):
    """The body of `GET /api/v2/alerts`."""


def matcher(name: str, value: str) -> str:
    """An equality matcher as `filter` takes it: `name="value"`, with `\\`, `"` and newlines
    escaped."""
    quoted = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{quoted}"'


class SilenceError(IntegrationError):
    """Alertmanager refused or could not be reached for a silence."""


class SilenceClient:
    """Alertmanager's v2 API: silences, and the alerts it holds."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, timeout: float = 10.0
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def create(
        self,
        matchers: Mapping[str, str],
        *,
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """Create a silence matching these labels exactly; returns its id."""
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True}
                for k, v in sorted(matchers.items())
            ],
            "startsAt": starts_at.isoformat(),
            "endsAt": ends_at.isoformat(),
            "createdBy": created_by,
            "comment": comment,
        }
        data = await self._request("POST", "/api/v2/silences", json=body)
        if not isinstance(data, dict) or not data.get("silenceID"):
            raise SilenceError("Alertmanager answered without a silence id")
        return str(data["silenceID"])

    async def expire(self, silence_id: str) -> None:
        """Expire a silence (an already expired or unknown one is fine)."""
        await self._request("DELETE", f"/api/v2/silence/{silence_id}", ok_statuses=(200, 404))

    async def alerts(self, matchers: Mapping[str, str]) -> list[Alert]:
        """The alerts Alertmanager holds whose labels equal `matchers`: silenced, inhibited and
        not yet processed ones too."""
        params = [("filter", matcher(k, v)) for k, v in sorted(matchers.items())]
        params += [(s, "true") for s in ("active", "silenced", "inhibited", "unprocessed")]
        data = await self._request("GET", "/api/v2/alerts", params=params)
        try:
            held = HeldAlerts.model_validate(data if data is not None else [])
            return [a.to_domain() for a in held.root]
        except ValidationError as exc:
            raise SilenceError(f"Alertmanager's alerts: {_reason(exc)}") from None
        except InvalidPayload as exc:
            raise SilenceError(f"Alertmanager's alerts: {exc}") from None

    async def ready(self) -> None:
        """Return when Alertmanager answers /-/ready; SilenceError says why not."""
        await self._request("GET", "/-/ready")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: list[tuple[str, str]] | None = None,
        ok_statuses: tuple[int, ...] = (200,),
    ) -> Any:
        try:
            async with self.session.request(
                method, self.base_url + path, json=json, params=params, timeout=self.timeout
            ) as response:
                text = await response.text()
                if response.status not in ok_statuses:
                    reason = text.strip().strip('"')[:200] or f"HTTP {response.status}"
                    raise SilenceError(f"Alertmanager: {reason}")
                if not text.strip() or response.content_type != "application/json":
                    return None
                return await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SilenceError(f"Alertmanager unreachable: {type(exc).__name__}") from None
