"""PagerDuty (Events API v2), Opsgenie (Alert API) and signed webhooks, told of Tocsin's
incidents: one alert per incident, triggered, acknowledged and resolved as the incident is.

Each is one documented HTTP call (contracts: semantics.md, "Paging services"). apprise's
PagerDuty and Opsgenie plugins cannot acknowledge, and send only to the vendors' own hosts, so
these few calls are made here with aiohttp.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp

from bot.config.people import NotifyConfig
from bot.domain.contacts import Delivery, ServiceNotice

TIMEOUT = aiohttp.ClientTimeout(total=10)
PAGERDUTY_SEVERITY = {"sev1": "critical", "sev2": "error", "sev3": "warning", "sev4": "info"}
OPSGENIE_PRIORITY = {"sev1": "P1", "sev2": "P2", "sev3": "P3", "sev4": "P4"}
OPSGENIE_ACTIONS = {"acknowledge": "acknowledge", "resolve": "close"}
SIGNATURE = "X-Tocsin-Signature"  # sha256=<hex HMAC-SHA256 of the body with the secret>


class PagingServices:
    """A ServiceSender over the services tocsin.yml names under notify:."""

    def __init__(self, http: aiohttp.ClientSession, notify: NotifyConfig) -> None:
        self.http = http
        self.notify = notify

    async def send_event(self, kind: str, name: str, notice: ServiceNotice) -> Delivery:
        """Tell the service; a failure says why in words that hold no key or URL."""
        try:
            if kind == "pagerduty" and name in self.notify.pagerduty:
                return await self._pagerduty(name, notice)
            if kind == "opsgenie" and name in self.notify.opsgenie:
                return await self._opsgenie(name, notice)
            if kind == "webhook" and name in self.notify.webhooks:
                return await self._webhook(name, notice)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Delivery(False, f"could not reach it ({type(exc).__name__})", retry=True)
        return Delivery(False, f"{kind}:{name} is not configured", retry=False)

    async def _pagerduty(self, name: str, notice: ServiceNotice) -> Delivery:
        config = self.notify.pagerduty[name]
        event: dict[str, Any] = {
            "routing_key": config.routing_key.get_secret_value(),
            "event_action": notice.action,
            "dedup_key": notice.dedup_key,
        }
        if notice.action == "trigger":
            event["payload"] = {
                "summary": f"#{notice.incident_id} {notice.title}"[:1024],
                "source": "tocsin",
                "severity": PAGERDUTY_SEVERITY.get(notice.severity, "error"),
                "custom_details": {"incident": notice.incident_id, "status": notice.status},
            }
            event["links"] = [{"href": notice.link, "text": "The incident's Slack channel"}]
        return await self._post(config.url, event, {}, accepted=202)

    async def _opsgenie(self, name: str, notice: ServiceNotice) -> Delivery:
        config = self.notify.opsgenie[name]
        base = config.url.rstrip("/") + "/v2/alerts"
        headers = {"Authorization": f"GenieKey {config.api_key.get_secret_value()}"}
        if notice.action == "trigger":
            alert = {
                "message": f"#{notice.incident_id} {notice.title}"[:130],
                "alias": notice.dedup_key,
                "description": f"Tocsin incident #{notice.incident_id}: {notice.link}",
                "priority": OPSGENIE_PRIORITY.get(notice.severity, "P3"),
                "source": "tocsin",
            }
            return await self._post(base, alert, headers, accepted=202)
        verb = OPSGENIE_ACTIONS[notice.action]
        url = f"{base}/{notice.dedup_key}/{verb}?identifierType=alias"
        return await self._post(url, {"source": "tocsin"}, headers, accepted=202)

    async def _webhook(self, name: str, notice: ServiceNotice) -> Delivery:
        config = self.notify.webhooks[name]
        body = json.dumps(
            {
                "event": notice.action,
                "dedup_key": notice.dedup_key,
                "incident": {
                    "id": notice.incident_id,
                    "title": notice.title,
                    "severity": notice.severity,
                    "status": notice.status,
                    "link": notice.link,
                },
            },
            separators=(",", ":"),
        ).encode()
        headers = {"Content-Type": "application/json"}
        if config.secret is not None:
            key = config.secret.get_secret_value().encode()
            headers[SIGNATURE] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        url = config.url.get_secret_value()
        async with self.http.post(url, data=body, headers=headers, timeout=TIMEOUT) as answer:
            return _delivery(answer.status, await answer.text(), ok=200 <= answer.status < 300)

    async def _post(
        self, url: str, body: dict[str, Any], headers: dict[str, str], *, accepted: int
    ) -> Delivery:
        async with self.http.post(url, json=body, headers=headers, timeout=TIMEOUT) as answer:
            text = await answer.text()
            return _delivery(answer.status, text, ok=answer.status in (200, accepted))


def _delivery(status: int, text: str, *, ok: bool) -> Delivery:
    """The answer as a Delivery: 429 and 5xx are tried again, any other failure is not."""
    if ok:
        return Delivery(True)
    said = _said(text)
    return Delivery(False, f"{status} {said}".strip()[:300], retry=status == 429 or status >= 500)


def _said(text: str) -> str:
    """What an error answer says: PagerDuty's message and errors, Opsgenie's message."""
    try:
        answer = json.loads(text)
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    errors = answer.get("errors") or []
    listed = list(errors.values()) if isinstance(errors, dict) else list(errors)
    parts = [str(answer.get("message", ""))] + [str(e) for e in listed]
    return "; ".join(p for p in parts if p)
