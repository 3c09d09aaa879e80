"""Prometheus diagnostics: top-N tables, range graphs, scrape targets, firing alerts, readiness.

prometheus-api-client is blocking, so each call runs in a worker thread under
``asyncio.wait_for``; the same timeout is given to requests (so a timed-out thread ends soon
after) and to Prometheus itself (so it stops evaluating).  No retries: a diagnostic answers
within its timeout.  Nothing raises to the caller: every failure becomes
``DiagnosticResult.error`` with a one-line reason that carries no credentials.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from bot.domain.diagnostics import DiagnosticResult, Status, Table
from bot.errors import IntegrationError
from integrations.prometheus_graph import (
    SOURCE,
    Labels,
    Point,
    cut,
    format_value,
    graph_result,
    instant_result,
    legend_labels,
    render_graph,
    shorten_labels,
)

__all__ = ["PrometheusDiagnostics", "PrometheusError", "choose_step"]
# Re-exported for callers.
__all__ += ["format_value", "legend_labels", "render_graph", "shorten_labels"]

TARGET_POINTS = 300  # enough for a 1000 px wide graph
MAX_POINTS = 11_000  # Prometheus refuses range queries with more points per series
_READY_TIMEOUT_S = 5.0
KPI_CONCURRENCY = 4  # below the default thread pool's size on a small machine
_MAX_ROWS = 20
_CLIENT_ERROR = re.compile(r"HTTP Status Code (\d{3}) \((b(['\"]).*\3)\)\s*$", re.S)
_STATUS_HINTS = {401: "unauthorized: check the credentials", 403: "forbidden", 404: "not found"}
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)

_log = logging.getLogger(__name__)
T = TypeVar("T")


class PrometheusError(IntegrationError):
    """Prometheus could not be asked, refused the request, or answered garbage."""


class PrometheusDiagnostics:
    """Diagnostics against one Prometheus server; every method returns a DiagnosticResult."""

    def __init__(
        self, base_url: str, *, timeout: float = 10.0, headers: dict[str, str] | None = None
    ) -> None:
        self.base_url, auth = _split_credentials(base_url.rstrip("/"))
        self.timeout = timeout
        self._auth = auth
        self._headers = dict(headers or {})
        self._session = requests.Session()
        self._slots: asyncio.Semaphore | None = None
        self._client = PrometheusConnect(
            url=self.base_url,
            headers=self._headers or None,
            auth=auth,
            session=self._session,
            timeout=timeout,
            retry=Retry(total=0),  # retries with back-off would blow the timeout
        )

    @property
    def _kpi_slots(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(KPI_CONCURRENCY)
        return self._slots

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._session.close()

    async def instant(
        self,
        query: str,
        *,
        title: str,
        top: int = 10,
        warn_above: float | None = None,
        fail_above: float | None = None,
        unit: str = "",
    ) -> DiagnosticResult:
        """The top series of an instant query, highest value first; graded on the maximum."""

        async def run() -> DiagnosticResult:
            params = {"timeout": f"{self.timeout:g}"}
            result = await self._call(self._client.custom_query, query, params=params)
            samples = _parse("query", _vector, result)
            limits = (warn_above, fail_above)
            return instant_result(title, samples, top=max(1, top), limits=limits, unit=unit)

        return await self._guarded(title, run())

    async def graph(
        self,
        query: str,
        *,
        title: str,
        start: datetime,
        end: datetime,
        marker: datetime | None = None,
        step: float | None = None,
        warn_above: float | None = None,
        fail_above: float | None = None,
        unit: str = "",
    ) -> DiagnosticResult:
        """A PNG graph of a range query; graded on the latest value of the worst series."""

        async def run() -> DiagnosticResult:
            window = (_utc(start), _utc(end))
            if window[1] < window[0]:
                raise PrometheusError("the graph's end is before its start")
            params = {"timeout": f"{self.timeout:g}"}
            step_s = choose_step(*window, step)
            first, last = _aligned(*window, step_s)
            query_range = self._client.custom_query_range
            result = await self._call(query_range, query, first, last, str(step_s), params=params)
            matrix = _parse("query_range", _matrix, result)
            return await asyncio.to_thread(
                graph_result,
                title,
                matrix,
                window=window,
                marker=_utc(marker) if marker else None,
                limits=(warn_above, fail_above),
                unit=unit,
            )

        return await self._guarded(title, run())

    async def targets_up(self, *, title: str = "Prometheus targets") -> DiagnosticResult:
        """Which scrape targets are down; fail when any is."""

        async def run() -> DiagnosticResult:
            data = await self._call(self._client.get_targets, state="active")
            return _parse("targets", lambda d: _targets_result(title, d), data)

        return await self._guarded(title, run())

    async def firing_alerts(self, *, title: str = "Prometheus alerts") -> DiagnosticResult:
        """Alerts Prometheus currently evaluates as pending or firing; warn when any fires."""

        async def run() -> DiagnosticResult:
            data = await self._call(self._get_api, "/api/v1/alerts")
            return _parse("alerts", lambda d: _alerts_result(title, d), data)

        return await self._guarded(title, run())

    async def health(self, *, title: str = "Prometheus") -> DiagnosticResult:
        """Whether Prometheus answers /-/ready (with a short timeout)."""

        async def run() -> DiagnosticResult:
            timeout = min(self.timeout, _READY_TIMEOUT_S)
            began = time.monotonic()
            status, body = await self._call(self._get_ready, timeout, limit=timeout)
            if status != 200:
                raise PrometheusError(f"not ready: HTTP {status} {body[:100]}")
            elapsed_ms = (time.monotonic() - began) * 1000
            return DiagnosticResult(title, Status.OK, f"ready ({elapsed_ms:.0f} ms)", source=SOURCE)

        return await self._guarded(title, run())

    # -- plumbing -----------------------------------------------------------------------------

    async def values_at(self, query: str, moments: Sequence[datetime]) -> list[float | None]:
        """A KPI: the query evaluated at each moment, one number each (None: no data then).

        Raises PrometheusError with a one-line reason; a query that gives several series
        must be aggregated (sum, avg, max) by whoever wrote it.
        """

        async def one(moment: datetime) -> float | None:
            params = {"time": f"{_utc(moment).timestamp():.3f}", "timeout": f"{self.timeout:g}"}
            # A digest asks for many days of many KPIs at once: the timeout of each query
            # starts when it gets a slot, not while it waits behind the others for a thread.
            async with self._kpi_slots:
                result = await self._call(self._client.custom_query, query, params=params)
            series = _parse("instant", _vector, result)
            if len(series) > 1:
                raise PrometheusError(
                    f"the query gives {len(series)} series, not one: aggregate it (sum, avg, max)"
                )
            if not series or math.isnan(series[0][1]):
                return None
            return series[0][1]

        return list(await asyncio.gather(*(one(m) for m in moments)))

    async def _guarded(self, title: str, work: Awaitable[DiagnosticResult]) -> DiagnosticResult:
        try:
            return await work
        except PrometheusError as exc:
            return DiagnosticResult.error(title, str(exc), source=SOURCE)
        except Exception as exc:  # a bug must not break the incident either; the log has it
            _log.exception("Prometheus diagnostic %r failed", title)
            return DiagnosticResult.error(
                title, f"internal error: {type(exc).__name__}", source=SOURCE
            )

    async def _call(
        self, fn: Callable[..., T], *args: Any, limit: float | None = None, **kwargs: Any
    ) -> T:
        """Run a blocking call in a thread; translate every failure into PrometheusError."""
        limit = self.timeout if limit is None else limit
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), limit)
        except PrometheusError:
            raise
        except (TimeoutError, requests.Timeout):
            raise PrometheusError(f"{self.base_url} timed out after {limit:g}s") from None
        except PrometheusApiClientException as exc:
            raise PrometheusError(_client_error_reason(str(exc), self.base_url)) from None
        except requests.ConnectionError as exc:
            reason = f"cannot connect to {self.base_url}: {_socket_reason(exc)}"
            raise PrometheusError(reason) from None
        except requests.exceptions.InvalidJSONError:
            reason = f"{self.base_url} answered something that is not JSON (not Prometheus?)"
            raise PrometheusError(reason) from None
        except requests.RequestException as exc:
            reason = f"request to {self.base_url} failed: {type(exc).__name__}"
            raise PrometheusError(reason) from None
        except _SHAPE_ERRORS as exc:
            reason = f"unexpected answer from {self.base_url} ({type(exc).__name__})"
            raise PrometheusError(reason) from None

    def _request(self, path: str, timeout: float) -> requests.Response:
        return self._session.get(
            self.base_url + path, headers=self._headers, auth=self._auth, timeout=timeout
        )

    def _get_api(self, path: str) -> Any:
        """GET an API path the client lacks; the ``data`` of the success envelope."""
        response = self._request(path, self.timeout)
        if response.status_code != 200:
            reason = _error_reason(response.status_code, response.content, self.base_url + path)
            raise PrometheusError(reason)
        return response.json()["data"]

    def _get_ready(self, timeout: float) -> tuple[int, str]:
        response = self._request("/-/ready", timeout)
        return response.status_code, " ".join(response.text.split())


# -- answers -> results -----------------------------------------------------------------------


def _targets_result(title: str, data: Mapping[str, Any]) -> DiagnosticResult:
    active: list[dict[str, Any]] = list(data["activeTargets"])
    if not active:
        return DiagnosticResult(title, Status.WARN, "no active scrape targets", source=SOURCE)
    up = sum(1 for t in active if t.get("health") == "up")
    down = [t for t in active if t.get("health") == "down"]
    text = f"{up}/{len(active)} targets up"
    if waiting := len(active) - up - len(down):
        text += f" ({waiting} not scraped yet)"
    if not down:
        return DiagnosticResult(title, Status.OK, text, source=SOURCE)
    rows = sorted(_target_row(t) for t in down)
    table = Table(("job", "instance", "last error"), tuple(rows[:_MAX_ROWS]))
    return DiagnosticResult(title, Status.FAIL, f"{text}; {len(down)} down", table, source=SOURCE)


def _target_row(target: Mapping[str, Any]) -> tuple[str, str, str]:
    labels = target.get("labels") or {}
    job = str(labels.get("job") or target.get("scrapePool", "?"))
    instance = str(labels.get("instance") or target.get("scrapeUrl", "?"))
    # 'Get "http://host/metrics": dial tcp ...: connection refused' -> the part after the URL
    error = re.sub(r'^\w+ "[^"]*": ', "", str(target.get("lastError", "")))
    return job, instance, cut(error, 120)


def _alerts_result(title: str, data: Mapping[str, Any]) -> DiagnosticResult:
    alerts: list[dict[str, Any]] = list(data["alerts"])
    firing = [a for a in alerts if a.get("state") == "firing"]
    pending = len(alerts) - len(firing)
    if not alerts:
        return DiagnosticResult(title, Status.OK, "no alerts firing", source=SOURCE)
    names = sorted({str(a.get("labels", {}).get("alertname", "?")) for a in firing})
    text = f"{len(firing)} firing" + (f" ({', '.join(names)})" if names else "")
    text += f", {pending} pending" if pending else ""
    ordered = sorted(alerts, key=lambda a: (a.get("state") != "firing", str(a.get("activeAt"))))
    rows = tuple(_alert_row(a) for a in ordered[:_MAX_ROWS])
    table = Table(("alertname", "labels", "state", "active since"), rows)
    status = Status.WARN if firing else Status.OK
    return DiagnosticResult(title, status, cut(text, 300), table, source=SOURCE)


def _alert_row(alert: Mapping[str, Any]) -> tuple[str, str, str, str]:
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
    name = labels.pop("alertname", "?")
    return name, shorten_labels([labels])[0], str(alert.get("state", "?")), _when(alert)


# -- parsing ----------------------------------------------------------------------------------


def _parse(kind: str, parse: Callable[[Any], T], data: Any) -> T:
    try:
        return parse(data)
    except _SHAPE_ERRORS as exc:
        raise PrometheusError(f"unexpected {kind} answer ({type(exc).__name__})") from None


def _labels(metric: Mapping[str, Any]) -> Labels:
    return {str(k): str(v) for k, v in metric.items()}


def _vector(result: Any) -> list[tuple[Labels, float]]:
    if len(result) == 2 and not isinstance(result[0], dict):  # scalar: [time, "value"]
        return [({}, float(result[1]))]
    return [(_labels(item["metric"]), float(item["value"][1])) for item in result]


def _matrix(result: Any) -> list[tuple[Labels, list[Point]]]:
    return [
        (_labels(item["metric"]), [(float(t), float(v)) for t, v in item.get("values") or []])
        for item in result
    ]


# -- small helpers ----------------------------------------------------------------------------


def _when(alert: Mapping[str, Any]) -> str:
    raw = str(alert.get("activeAt", ""))
    try:
        return datetime.fromisoformat(raw).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return cut(raw, 40)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def choose_step(start: datetime, end: datetime, step: float | None) -> int:
    """Whole seconds between points: ~300 points when not given, never over 11,000 points."""
    span = max((end - start).total_seconds(), 0.0)
    wanted = step if step is not None and step > 0 else span / TARGET_POINTS
    return max(1, math.ceil(wanted), math.ceil(span / (MAX_POINTS - 1)))


def _aligned(start: datetime, end: datetime, step: int) -> tuple[datetime, datetime]:
    """The range moved back (less than a step) so that the last point falls on ``end``."""
    last = math.floor(end.timestamp())
    count = math.ceil((last - start.timestamp()) / step)
    return datetime.fromtimestamp(last - count * step, UTC), datetime.fromtimestamp(last, UTC)


# -- errors -----------------------------------------------------------------------------------


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without user:password (so it never reaches a message) and the basic auth."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    return urlunsplit(parts._replace(netloc=netloc)), auth


def _client_error_reason(message: str, where: str) -> str:
    """prometheus-api-client reports 'HTTP Status Code 400 (b'<body>')': recover the body."""
    match = _CLIENT_ERROR.search(message)
    if match is None:
        return f"{where}: {message[:200]}"
    try:
        body = ast.literal_eval(match[2])
    except (ValueError, SyntaxError):
        body = b""
    return _error_reason(int(match[1]), body if isinstance(body, bytes) else b"", where)


def _error_reason(status: int, body: bytes, where: str) -> str:
    """Prometheus' own errorType/error when the body is its JSON envelope, else the status."""
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    if isinstance(envelope, dict) and envelope.get("status") == "error":
        kind = envelope.get("errorType") or "error"
        return f"Prometheus {kind}: {envelope.get('error', '')} (HTTP {status})"
    hint = _STATUS_HINTS.get(status, "not a Prometheus API answer")
    return f"HTTP {status} from {where}: {hint}"


def _socket_reason(exc: BaseException) -> str:
    """'connection refused', 'name or service not known'... from requests' nested errors."""
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return found[1].strip().lower() if found else "connection failed"
