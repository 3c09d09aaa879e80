"""Fake PagerDuty Events API v2 and Opsgenie Alert API on loopback, as their documentation
describes them (contracts: semantics.md, "Paging services"), with injectable failures.

    pagerduty = FakePagerDuty()
    url = await pagerduty.start()         # "http://127.0.0.1:PORT/v2/enqueue"
    pagerduty.fail_next(429, 1)           # the next answer is a 429
    pagerduty.alerts[(routing_key, dedup_key)]  # {"status": "triggered", "triggers": 1}

PagerDuty (developer.pagerduty.com, Events API v2; PagerDuty/developer-docs
docs/events-API-v2/02-Trigger-Events.md): `POST /v2/enqueue` answers 202 `{"status":
"success", "message": "Event processed", "dedup_key": …}`; a routing key that is not 32
characters, an unknown `event_action`, or a trigger without `payload.summary`, `source` or a
known `severity` is a 400 `{"status": "invalid event", "message": "Event object is invalid",
"errors": [...]}`. A trigger with the `dedup_key` of an open alert adds to it; once resolved,
acknowledge and resolve events with that key are dropped, and a trigger opens a new alert.
Events for a key sent with another routing key are dropped.

Opsgenie (docs.opsgenie.com, Alert API): `Authorization: GenieKey <key>`; `POST /v2/alerts`
(`message` required, at most 130 characters; `alias` dedups an open alert), `POST
/v2/alerts/{alias}/acknowledge?identifierType=alias` and `…/close`; every accepted request is
answered 202 `{"result": "Request will be processed", "took": …, "requestId": …}` and
processed afterwards; a wrong key is 401 `{"message": "Could not authenticate"}`, a body
that cannot be processed 422 with `errors`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.realservers import free_port

SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class _Fake:
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with `status` (a 429 or a 5xx, say)."""
        self.failures += [status] * times

    async def _serve(self, app: web.Application) -> None:
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def _failure(self) -> web.Response | None:
        if not self.failures:
            return None
        status = self.failures.pop(0)
        return web.json_response(
            {"message": "Too many requests" if status == 429 else "Error"}, status=status
        )


@dataclass
class FakePagerDuty(_Fake):
    alerts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Every alert ever opened, in order (a trigger after a resolve opens another).
    opened: list[tuple[str, str]] = field(default_factory=list)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        await self._serve(app)
        return f"http://127.0.0.1:{self.port}/v2/enqueue"

    async def _enqueue(self, request: web.Request) -> web.Response:
        event = await request.json()
        self.requests.append(event)
        failed = self._failure()
        if failed is not None:
            return failed
        errors = _pagerduty_errors(event)
        if errors:
            body = {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            }
            return web.json_response(body, status=400)
        key = str(event.get("dedup_key") or uuid.uuid4().hex)
        routing, action = str(event["routing_key"]), event["event_action"]
        alert = self.alerts.get((routing, key))
        if action == "trigger":
            if alert is None or alert["status"] == "resolved":
                self.alerts[(routing, key)] = {"status": "triggered", "triggers": 1, "event": event}
                self.opened.append((routing, key))
            else:
                alert["triggers"] += 1
        elif alert is not None and alert["status"] != "resolved":
            alert["status"] = "acknowledged" if action == "acknowledge" else "resolved"
        body = {"status": "success", "message": "Event processed", "dedup_key": key}
        return web.json_response(body, status=202)


def _pagerduty_errors(event: dict[str, Any]) -> list[str]:
    errors = []
    if len(str(event.get("routing_key", ""))) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    if len(str(event.get("dedup_key", ""))) > 255:
        errors.append("'dedup_key' is longer than 255 characters")
    if event.get("event_action") == "trigger":
        payload = event.get("payload") or {}
        for name in ("summary", "source"):
            if not str(payload.get(name, "")).strip():
                errors.append(f"'payload.{name}' is missing or blank")
        if payload.get("severity") not in SEVERITIES:
            errors.append(
                "'payload.severity' is invalid (must be one of: critical, error, warning, info)"
            )
    return errors


@dataclass
class FakeOpsgenie(_Fake):
    api_key: str = "genie-key-0f1e2d3c"
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by alias
    opened: list[str] = field(default_factory=list)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v2/alerts", self._create)
        app.router.add_post("/v2/alerts/{alias}/{verb}", self._act)
        await self._serve(app)
        return f"http://127.0.0.1:{self.port}"

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"GenieKey {self.api_key}":
            return web.json_response({"message": "Could not authenticate", "took": 0.0}, status=401)
        return self._failure()

    async def _create(self, request: web.Request) -> web.Response:
        alert = await request.json()
        self.requests.append({"path": request.path, **alert})
        refused = self._refused(request)
        if refused is not None:
            return refused
        message = str(alert.get("message", ""))
        if not message.strip() or len(message) > 130:
            errors = {"message": "Message can not be empty or longer than 130 characters."}
            body = {
                "message": "Request body is not processable. Please check the errors.",
                "errors": errors,
            }
            return web.json_response(body, status=422)
        alias = str(alert.get("alias") or uuid.uuid4().hex)
        known = self.alerts.get(alias)
        if known is None or known["status"] == "closed":
            self.alerts[alias] = {
                "status": "open",
                "acknowledged": False,
                "count": 1,
                "alert": alert,
            }
            self.opened.append(alias)
        else:
            known["count"] += 1
        return _accepted()

    async def _act(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path, "query": dict(request.query)})
        refused = self._refused(request)
        if refused is not None:
            return refused
        alert = self.alerts.get(request.match_info["alias"])
        if request.query.get("identifierType") == "alias" and alert is not None:
            if request.match_info["verb"] == "acknowledge":
                alert["acknowledged"] = True
            elif request.match_info["verb"] == "close":
                alert["status"] = "closed"
        return _accepted()  # processed afterwards: an unknown alias is not an error here


def _accepted() -> web.Response:
    body = {"result": "Request will be processed", "took": 0.01, "requestId": str(uuid.uuid4())}
    return web.json_response(body, status=202)
