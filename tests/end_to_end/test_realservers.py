"""Real Prometheus -> Alertmanager -> webhook, and Alertmanager's silences API.

Needs Debian's ``prometheus`` and ``prometheus-alertmanager`` (skipped locally when missing,
failed in CI).  Typical run: a few seconds per stage; the deadlines below are generous so a
loaded 2-core machine does not make the test flaky.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.realservers import (
    AlertmanagerServer,
    MetricSource,
    PrometheusServer,
    require_binaries,
)

pytestmark = pytest.mark.integration

# Upper bounds, not expectations: firing usually arrives in ~3-6 s, resolved in ~3-5 s.
DELIVERY_DEADLINE_S = 30.0
POLL_INTERVAL_S = 0.2

WEBHOOK_PATH = "/webhooks/alertmanager"
BEARER_TOKEN = "s3cret"
GROUP_KEY = '{}:{alertname="HighErrorRate"}'
ZERO_TIME = "0001-01-01T00:00:00Z"

RULES = """\
groups:
  - name: tocsin-test
    rules:
      - alert: HighErrorRate
        expr: tocsin_test_errors > 0
        for: 0s
        labels:
          severity: critical
        annotations:
          summary: High error rate detected
          description: "{{ $labels.service }} reports {{ $value }} errors"
"""


@pytest.fixture(autouse=True)
def _binaries() -> None:
    require_binaries("prometheus", "prometheus-alertmanager")


Payload = tuple[dict[str, str], dict[str, Any]]


class WebhookRecorder:
    """aiohttp app recording every POST to WEBHOOK_PATH as (lower-cased headers, JSON body)."""

    def __init__(self) -> None:
        self.received: list[Payload] = []
        self.app = web.Application()
        self.app.router.add_post(WEBHOOK_PATH, self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.received.append((headers, await request.json()))
        return web.Response(status=200)

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        what: str,
        diagnostics: Callable[[], str],
        timeout: float = DELIVERY_DEADLINE_S,
    ) -> Payload:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for headers, body in self.received:
                if predicate(body):
                    return headers, body
            if loop.time() > deadline:
                bodies = [body for _, body in self.received]
                raise AssertionError(
                    f"no {what} webhook within {timeout:g} s; got {bodies!r}\n{diagnostics()}"
                )
            await asyncio.sleep(POLL_INTERVAL_S)


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 on a free port (the OS picks it); yield its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running(server: AlertmanagerServer | PrometheusServer) -> AsyncIterator[None]:
    """Start/stop a real server in a worker thread so the event loop keeps serving."""
    await asyncio.to_thread(server.start)
    try:
        yield
    finally:
        await asyncio.to_thread(server.stop)


def log_tails(*servers: AlertmanagerServer | PrometheusServer) -> str:
    return "\n".join(
        f"--- {s.name} log ---\n" + "\n".join(s.log().splitlines()[-30:]) for s in servers
    )


async def test_alert_fires_and_resolves_through_real_servers(tmp_path: Path) -> None:
    recorder = WebhookRecorder()
    source = MetricSource()
    source.set("tocsin_test_errors", 1, {"service": "api"})
    source.start()
    try:
        async with serve(recorder.app) as webhook_base:
            alertmanager = AlertmanagerServer(
                tmp_path / "am",
                webhook_url=webhook_base + WEBHOOK_PATH,
                bearer_token=BEARER_TOKEN,
            )
            async with running(alertmanager):
                prometheus = PrometheusServer(
                    tmp_path / "prom",
                    scrape_targets=[source.url],
                    rules=RULES,
                    alertmanager_url=alertmanager.url,
                )
                async with running(prometheus):

                    def diagnostics() -> str:
                        return log_tails(alertmanager, prometheus)

                    headers, firing = await recorder.wait_for(
                        lambda body: body.get("status") == "firing", "firing", diagnostics
                    )
                    assert firing["version"] == "4"
                    assert firing["groupKey"] == GROUP_KEY
                    assert firing["receiver"] == "tocsin"
                    assert firing["groupLabels"] == {"alertname": "HighErrorRate"}
                    assert headers["authorization"] == f"Bearer {BEARER_TOKEN}"
                    assert headers["user-agent"].startswith("Alertmanager/")
                    assert headers["content-type"].startswith("application/json")
                    [alert] = firing["alerts"]
                    assert alert["status"] == "firing"
                    assert alert["labels"] == {
                        "alertname": "HighErrorRate",
                        "service": "api",
                        "severity": "critical",
                        # added by the scrape
                        "job": PrometheusServer.job_name,
                        "instance": source.url,
                    }
                    assert alert["annotations"] == {
                        "summary": "High error rate detected",
                        "description": "api reports 1 errors",
                    }
                    assert alert["endsAt"] == ZERO_TIME
                    assert len(alert["fingerprint"]) == 16

                    source.set("tocsin_test_errors", 0, {"service": "api"})

                    headers, resolved = await recorder.wait_for(
                        lambda body: body.get("status") == "resolved", "resolved", diagnostics
                    )
                    assert resolved["version"] == "4"
                    assert resolved["groupKey"] == GROUP_KEY
                    assert headers["authorization"] == f"Bearer {BEARER_TOKEN}"
                    [done] = resolved["alerts"]
                    assert done["status"] == "resolved"
                    assert done["fingerprint"] == alert["fingerprint"]
                    assert done["labels"] == alert["labels"]
                    assert done["endsAt"] != ZERO_TIME
    finally:
        source.stop()


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_alertmanager_silences_api(tmp_path: Path) -> None:
    # Nothing is delivered in this test; the receiver URL only has to be valid.
    alertmanager = AlertmanagerServer(tmp_path / "am", webhook_url="http://127.0.0.1:9/unused")
    async with running(alertmanager), aiohttp.ClientSession() as http:
        now = datetime.now(UTC)
        silence = {
            "matchers": [{"name": "alertname", "value": "HighErrorRate", "isRegex": False}],
            "startsAt": _rfc3339(now),
            "endsAt": _rfc3339(now + timedelta(hours=1)),
            "createdBy": "tocsin",
            "comment": "integration test",
        }
        async with http.post(f"{alertmanager.url}/api/v2/silences", json=silence) as resp:
            assert resp.status == 200, await resp.text()
            silence_id = (await resp.json())["silenceID"]
        assert silence_id

        async with http.get(f"{alertmanager.url}/api/v2/silences") as resp:
            assert resp.status == 200
            listed = {s["id"]: s for s in await resp.json()}
        assert silence_id in listed
        got = listed[silence_id]
        assert got["status"]["state"] == "active"
        assert got["createdBy"] == "tocsin"
        assert got["comment"] == "integration test"
        assert got["matchers"] == [
            {"name": "alertname", "value": "HighErrorRate", "isRegex": False, "isEqual": True}
        ]

        # Expiring it (DELETE /api/v2/silence/{id}) is what the bot's "unsilence" does.
        async with http.delete(f"{alertmanager.url}/api/v2/silence/{silence_id}") as resp:
            assert resp.status == 200, await resp.text()
        async with http.get(f"{alertmanager.url}/api/v2/silence/{silence_id}") as resp:
            assert resp.status == 200
            assert (await resp.json())["status"]["state"] == "expired"
