"""The demo system: a chat app's services, webhooks, database and host, as series over time.

Every value is a pure function of the moment and of the episodes (the alerts Tocsin holds):
no randomness and no wall clock, so the same question always gets the same answer. Traffic
follows a daily cycle with small deterministic wiggles; an episode of a shipped alert moves
the series that alert watches (HighErrorRate: the 5xx share and the latency of its service;
WebhookFailure: the failures of its workflow; DatabaseConnectionLoss: the exporter's `up`).
The trouble begins a few minutes before the alert's start, as a rule with `for: 5m` fires
after it, so a graph that starts before the alert shows the rise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

Labels = Mapping[str, str]

LEAD_S = 6 * 60.0  # the trouble starts this long before the alert fires
RAMP_S = 3 * 60.0  # and takes this long to reach its worst (and to fade once resolved)
T0 = datetime(2026, 1, 1).timestamp()  # counters start here
SERVICES = {"api": 140.0, "web": 85.0, "worker": 22.0}  # requests per second
WORKFLOWS = {"orders-sync": 1.6, "signup-email": 0.7, "stripe-events": 2.4}  # webhooks/s
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, math.inf)
TARGETS = (
    ("api", "api-1:8080"),
    ("api", "api-2:8080"),
    ("web", "web-1:3000"),
    ("worker", "worker-1:8080"),
    ("n8n", "n8n:5678"),
    ("supabase-db", "db.internal:9187"),
    ("node", "node-1:9100"),
)
GIB = 1024**3


@dataclass(frozen=True)
class Episode:
    """An alert Tocsin holds: its name, labels, when it began and when it was resolved."""

    alertname: str
    labels: Labels
    start: float  # unix seconds
    end: float | None = None


Episodes = tuple[Episode, ...]


@dataclass(frozen=True)
class Series:
    """One demo series: its labels (with __name__), whether it is a counter, and its shape:
    a counter's rate per second, or a gauge's value, at a moment (NaN: no sample then)."""

    labels: Labels
    counter: bool
    shape: Callable[[float], float]

    def value(self, t: float) -> float:
        """The instant value: a gauge's value, or a counter's total since T0 (approximated)."""
        if not self.counter:
            return self.shape(t)
        return self.shape(t) * max(t - T0, 0.0)


def wiggle(t: float, seed: float) -> float:
    """About 1: a daily cycle and two faster ripples, different for each seed."""
    day = 0.3 * math.sin(2 * math.pi * (t / 86400 - 0.3) + seed)
    week = 0.08 * math.sin(2 * math.pi * t / 604800 + 5 * seed)
    ripple = 0.05 * math.sin(2 * math.pi * t / 1370 + 3 * seed)
    return 1 + day + week + ripple + 0.02 * math.sin(2 * math.pi * t / 311 + 7 * seed)


def surge(t: float, episode: Episode) -> float:
    """0 outside the episode, 1 at its worst: ramps up from before its start, down after."""
    begin = episode.start - LEAD_S
    if t <= begin:
        return 0.0
    rising = min(1.0, (t - begin) / RAMP_S)
    if episode.end is None or t <= episode.end:
        return rising
    return max(0.0, rising - (t - episode.end) / RAMP_S)


def trouble(episodes: Sequence[Episode], alertname: str, label: str, value: str) -> Episodes:
    """The episodes of `alertname` about this label value (or about none in particular)."""
    return tuple(
        e for e in episodes if e.alertname == alertname and e.labels.get(label, value) == value
    )


def worst(t: float, episodes: Episodes) -> float:
    """How bad the matching episodes are at `t`, 0 to 1."""
    return max((surge(t, e) for e in episodes), default=0.0)


def firing(t: float, episode: Episode) -> bool:
    """Whether the alert is firing at `t`."""
    return episode.start <= t and (episode.end is None or t < episode.end)


def world(episodes: Sequence[Episode]) -> list[Series]:
    """Every demo series, given the episodes."""
    found: list[Series] = []
    for index, (service, rps) in enumerate(SERVICES.items()):
        found += _http(service, rps, index, trouble(episodes, "HighErrorRate", "service", service))
    for index, (workflow, rate) in enumerate(WORKFLOWS.items()):
        found += _webhooks(
            workflow, rate, index, trouble(episodes, "WebhookFailure", "workflow", workflow)
        )
    lost = trouble(episodes, "DatabaseConnectionLoss", "job", "supabase-db")
    for job, instance in TARGETS:
        down = lost if job == "supabase-db" else ()
        labels = {"__name__": "up", "job": job, "instance": instance}
        found.append(Series(labels, False, _up(down)))
    found += _host()
    found += _alerts(episodes)
    return found


def _http(service: str, rps: float, seed: int, bad: Episodes) -> list[Series]:
    def total(t: float) -> float:
        return rps * wiggle(t, seed)

    def errors(t: float) -> float:
        return 0.004 * wiggle(t, seed + 5) + 0.11 * worst(t, bad)

    def mean_latency(t: float) -> float:
        return 0.06 * wiggle(t, seed + 9) + 0.26 * worst(t, bad)

    codes: dict[str, Callable[[float], float]] = {
        "200": lambda t: total(t) * (0.98 - errors(t)),
        "404": lambda t: total(t) * 0.02,
        "500": lambda t: total(t) * errors(t) * 0.7,
        "503": lambda t: total(t) * errors(t) * 0.3,
    }
    found = [
        Series({"__name__": "http_requests_total", "service": service, "code": code}, True, shape)
        for code, shape in codes.items()
    ]
    for le in BUCKETS:
        bound = "+Inf" if math.isinf(le) else f"{le:g}"
        labels = {"__name__": "http_request_duration_seconds_bucket", "service": service}
        found.append(Series({**labels, "le": bound}, True, _bucket(total, mean_latency, le)))
    base = {"service": service}
    found.append(Series({"__name__": "http_request_duration_seconds_count", **base}, True, total))
    found.append(
        Series(
            {"__name__": "http_request_duration_seconds_sum", **base},
            True,
            lambda t: total(t) * mean_latency(t),
        )
    )
    return found


def _webhooks(workflow: str, rate: float, seed: int, bad: Episodes) -> list[Series]:
    def share(t: float) -> float:
        return 0.006 * wiggle(t, seed + 2) + 0.3 * worst(t, bad)

    name = "n8n_webhook_requests_total"
    shapes = {
        ("ok", "200"): lambda t: rate * wiggle(t, seed) * (1 - share(t)),
        ("error", "500"): lambda t: rate * wiggle(t, seed) * share(t) * 0.6,
        ("error", "504"): lambda t: rate * wiggle(t, seed) * share(t) * 0.4,
    }
    return [
        Series({"__name__": name, "workflow": workflow, "status": s, "code": c}, True, shape)
        for (s, c), shape in shapes.items()
    ]


def _host() -> list[Series]:
    node = {"instance": "node-1:9100"}
    found: list[Series] = []
    for cpu in ("0", "1"):
        idle = float(cpu) + 11

        def busy(t: float, seed: float = idle) -> float:
            return min(0.95, 0.38 * wiggle(t, seed))

        for mode, share in (("idle", None), ("user", 0.8), ("system", 0.2)):
            labels = {"__name__": "node_cpu_seconds_total", **node, "cpu": cpu, "mode": mode}
            found.append(Series(labels, True, _cpu(busy, share)))
    disk = {**node, "mountpoint": "/", "device": "/dev/sda1"}
    gauges: dict[str, tuple[Labels, Callable[[float], float]]] = {
        "node_memory_MemTotal_bytes": (node, lambda t: 8.0 * GIB),
        "node_memory_MemAvailable_bytes": (node, lambda t: 3.1 * GIB * wiggle(t, 17)),
        "node_filesystem_size_bytes": (disk, lambda t: 100e9),
        "node_filesystem_avail_bytes": (disk, lambda t: 41e9 - (t - T0) / 86400 * 0.05e9),
    }
    for name, (where, shape) in gauges.items():
        found.append(Series({"__name__": name, **where}, False, shape))
    return found


def _alerts(episodes: Sequence[Episode]) -> list[Series]:
    found = []
    for episode in episodes:
        labels = {
            **episode.labels,
            "__name__": "ALERTS",
            "alertname": episode.alertname,
            "alertstate": "firing",
        }
        found.append(Series(labels, False, _alert(episode)))
    return found


Shape = Callable[[float], float]


def _cpu(busy: Shape, share: float | None) -> Shape:
    """CPU seconds per second in a mode: idle is what busy leaves, the rest splits busy."""
    if share is None:
        return lambda t: 1 - busy(t)
    return lambda t: busy(t) * share


def _up(down: Episodes) -> Shape:
    return lambda t: 0.0 if worst(t, down) > 0.5 else 1.0


def _bucket(total: Shape, mean_latency: Shape, le: float) -> Shape:
    """Requests per second at most `le` seconds long, latencies spread exponentially."""
    return lambda t: total(t) * (1 - math.exp(-le / mean_latency(t)))


def _alert(episode: Episode) -> Shape:
    return lambda t: 1.0 if firing(t, episode) else math.nan
