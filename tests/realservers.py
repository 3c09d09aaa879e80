"""Real Prometheus and Alertmanager processes for tests.

Plain synchronous helpers, meant to be driven from pytest fixtures (async tests can call
``start()``/``stop()`` through ``asyncio.to_thread`` so the event loop stays responsive).

Every server runs on 127.0.0.1 on a free port, with its config, data and log in a temporary
folder.  Each server process is started under a tiny Python watchdog that kills it when
``stop()`` is called, when the interpreter exits (``atexit``) and also when the test process
dies without running ``atexit`` (SIGKILL, SIGTERM, closed terminal): the watchdog notices
that its stdin pipe from the test process has closed.  Server processes therefore never
outlive the test run.

Debian packages: ``apt-get install prometheus prometheus-alertmanager``.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import pytest
import yaml

__all__ = [
    "AlertmanagerCluster",
    "AlertmanagerServer",
    "MetricSource",
    "PrometheusServer",
    "ServerStartError",
    "binary_available",
    "free_port",
    "require_binaries",
]

ALERTMANAGER_BINARY = "prometheus-alertmanager"  # Debian's name for the alertmanager binary
PROMETHEUS_BINARY = "prometheus"
INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager"

_READY_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 15.0
_LOG_TAIL_LINES = 40


# ---------------------------------------------------------------------------------------------
# Ports and binaries
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def binary_available(name: str) -> bool:
    """True when ``name`` is an executable on PATH."""
    return shutil.which(name) is not None


def require_binaries(*names: str) -> None:
    """Skip the calling test when binaries are missing locally; fail it when running in CI.

    With no names, checks ``prometheus`` and ``prometheus-alertmanager``.  CI is detected by a
    non-empty ``CI`` environment variable: there the binaries must be installed, so a missing
    one is a failure, never a silent skip.
    """
    wanted = names or (PROMETHEUS_BINARY, ALERTMANAGER_BINARY)
    missing = [name for name in wanted if not binary_available(name)]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed: {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the binaries are required)", pytrace=False)
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------------
# Process management
# ---------------------------------------------------------------------------------------------

# Runs as `python -c _WATCHDOG server-argv...`.  Starts the server, and stops it (SIGTERM, then
# SIGKILL after 10 s) on SIGTERM/SIGINT or when stdin (a pipe from the test process) reaches
# EOF, which happens when the test process exits for any reason, even SIGKILL.
_WATCHDOG = r"""
import os, signal, subprocess, sys, threading
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
def watch_parent():
    try:
        while os.read(0, 4096):
            pass
    finally:
        stop.set()
threading.Thread(target=watch_parent, daemon=True).start()
while child.poll() is None and not stop.wait(0.2):
    pass
if child.poll() is None:
    child.terminate()
    try:
        child.wait(10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
rc = child.returncode
os._exit(rc if rc >= 0 else 128 - rc)  # no interpreter teardown while watch_parent blocks
"""

_live: set[_ManagedProcess] = set()
_live_lock = threading.Lock()


class _ManagedProcess:
    """A server process behind the watchdog, in its own session, output appended to a log."""

    def __init__(self, argv: Sequence[str], *, log_path: Path, cwd: Path) -> None:
        with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self._popen = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, *argv],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,  # keep Ctrl-C away; pytest's teardown stops us
            )
        with _live_lock:
            _live.add(self)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def poll(self) -> int | None:
        return self._popen.poll()

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        proc = self._popen
        try:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    # The watchdog is not reaped yet, so its process group id is still ours.
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        finally:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()
            with _live_lock:
                _live.discard(self)


@atexit.register
def _stop_all_servers() -> None:
    with _live_lock:
        remaining = list(_live)
    for proc in remaining:
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            proc.stop(timeout=5.0)


class ServerStartError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""


def _http_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    """Status of GET http://127.0.0.1:port/path, or None when nothing answers (no proxies)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


class _Server:
    """Common start/stop/readiness logic for a binary serving HTTP on 127.0.0.1:port."""

    name: str
    binary: str

    def __init__(self, tmp: Path, *, extra_args: Sequence[str] = ()) -> None:
        self.tmp = Path(tmp)
        self.extra_args = list(extra_args)
        self.log_path = self.tmp / f"{self.name}.log"
        self._port: int | None = None
        self._proc: _ManagedProcess | None = None

    # -- to be provided by subclasses ---------------------------------------------------------
    def _write_config(self) -> None:
        raise NotImplementedError

    def _argv(self, binary: str, port: int) -> list[str]:
        raise NotImplementedError

    # -- public API ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """Everything the server wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = _READY_TIMEOUT_S) -> None:
        """Write the config, launch the server and wait until ``GET /-/ready`` answers 200.

        Picks a free port; if the server loses a bind race for it, retries once on another
        port.  Raises ServerStartError (with the log tail) when not ready within ``timeout``.
        """
        if self._proc is not None:
            raise RuntimeError(f"{self.name} is already started")
        binary = shutil.which(self.binary)
        if binary is None:
            raise FileNotFoundError(f"{self.binary} not installed: {INSTALL_HINT}")
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._write_config()
        for attempt in (1, 2):
            port = free_port()
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._port = port
            self._proc = _ManagedProcess(
                [binary, *self._argv(binary, port), *self.extra_args],
                log_path=self.log_path,
                cwd=self.tmp,
            )
            error = self._wait_ready(port, timeout)
            if error is None:
                return
            self._proc.stop()
            self._proc = None
            self._port = None
            attempt_log = self.log()[log_offset:]
            if attempt == 1 and "address already in use" in attempt_log:
                continue
            raise ServerStartError(
                f"{self.name} {error}; log {self.log_path}:\n{_tail(attempt_log)}"
            )

    def stop(self) -> None:
        """Terminate the server (SIGTERM, SIGKILL after a grace period) and wait for it."""
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------
    def _wait_ready(self, port: int, timeout: float) -> str | None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                return f"exited with status {rc} before becoming ready"
            if _http_status(port, "/-/ready") == 200:
                return None
            if time.monotonic() > deadline:
                return f"not ready on port {port} within {timeout:g} s"
            time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Alertmanager
# ---------------------------------------------------------------------------------------------


class AlertmanagerServer(_Server):
    """``prometheus-alertmanager`` with one webhook receiver, clustering disabled.

    Files in ``tmp``: alertmanager.yml, alertmanager-data/, alertmanager.log (so use one
    ``tmp`` per Alertmanager).
    """

    name = "alertmanager"
    binary = ALERTMANAGER_BINARY

    def __init__(
        self,
        tmp: Path,
        *,
        webhook_url: str,
        bearer_token: str | None = None,
        group_by: Sequence[str] = ("alertname",),
        group_wait: str = "1s",
        group_interval: str = "2s",
        repeat_interval: str = "1h",
        receiver: str = "tocsin",
        extra_args: Sequence[str] = (),
        more_webhook_urls: Sequence[str] = (),
        cluster_port: int | None = None,
        cluster_peers: Sequence[str] = (),
        peer_timeout: str = "15s",
    ) -> None:
        super().__init__(tmp, extra_args=extra_args)
        self.webhook_url = webhook_url
        self.webhook_urls = [webhook_url, *more_webhook_urls]  # one webhook_config each
        self.cluster_port = cluster_port  # None: clustering disabled
        self.cluster_peers = list(cluster_peers)
        self.peer_timeout = peer_timeout
        self.bearer_token = bearer_token
        self.group_by = list(group_by)
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.receiver = receiver
        self.config_path = self.tmp / "alertmanager.yml"
        self.storage_path = self.tmp / "alertmanager-data"

    def config(self) -> dict[str, Any]:
        """The alertmanager.yml content, as data."""
        webhooks: list[dict[str, Any]] = []
        for url in self.webhook_urls:
            webhook: dict[str, Any] = {"url": url, "send_resolved": True}
            if self.bearer_token is not None:
                webhook["http_config"] = {
                    "authorization": {"type": "Bearer", "credentials": self.bearer_token}
                }
            webhooks.append(webhook)
        return {
            "route": {
                "receiver": self.receiver,
                "group_by": self.group_by,
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [{"name": self.receiver, "webhook_configs": webhooks}],
        }

    def _write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.storage_path.mkdir(parents=True, exist_ok=True)

    def _argv(self, binary: str, port: int) -> list[str]:
        argv = [
            f"--config.file={self.config_path}",
            f"--storage.path={self.storage_path}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        if self.cluster_port is None:
            return [*argv, "--cluster.listen-address="]  # no gossip, no peer wait
        address = f"127.0.0.1:{self.cluster_port}"
        return [
            *argv,
            f"--cluster.listen-address={address}",
            f"--cluster.advertise-address={address}",  # loopback is not a private address
            *(f"--cluster.peer={peer}" for peer in self.cluster_peers),
            f"--cluster.peer-timeout={self.peer_timeout}",
            "--cluster.pushpull-interval=2s",
            "--cluster.settle-timeout=10s",
        ]

    def cluster_status(self) -> dict[str, Any] | None:
        """The `cluster` part of `GET /api/v2/status` (status, peers), or None unanswered."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2.0)
        try:
            conn.request("GET", "/api/v2/status")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                return None
            cluster: dict[str, Any] = json.loads(body).get("cluster") or {}
            return cluster
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            conn.close()


class AlertmanagerCluster:
    """Alertmanager peers in one HA cluster on loopback, each with its own storage, web port
    and cluster port, each peered to all others; every peer's receiver lists `webhook_urls`.

    ``start()`` returns once every peer's ``/api/v2/status`` says the cluster is ``ready``
    with all the peers.  Files in ``tmp/peer-N/``.
    """

    def __init__(
        self, tmp: Path, *, webhook_urls: Sequence[str], peers: int = 2, **options: Any
    ) -> None:
        if peers < 2 or not webhook_urls:
            raise ValueError("a cluster has two peers or more, and a webhook")
        ports = [free_port() for _ in range(peers)]
        self.peers = [
            AlertmanagerServer(
                Path(tmp) / f"peer-{index}",
                webhook_url=webhook_urls[0],
                more_webhook_urls=webhook_urls[1:],
                cluster_port=port,
                cluster_peers=[f"127.0.0.1:{other}" for other in ports if other != port],
                **options,
            )
            for index, port in enumerate(ports, start=1)
        ]

    def start(self, timeout: float = _READY_TIMEOUT_S) -> None:
        """Start every peer; wait until each says the cluster is ready, with every peer."""
        try:
            for peer in self.peers:
                peer.start(timeout)
            deadline = time.monotonic() + timeout
            while not all(self._ready(peer) for peer in self.peers):
                if time.monotonic() > deadline:
                    states = [peer.cluster_status() for peer in self.peers]
                    raise ServerStartError(f"the cluster did not settle: {states}")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise

    def _ready(self, peer: AlertmanagerServer) -> bool:
        status = peer.cluster_status()
        return (
            status is not None
            and status.get("status") == "ready"
            and len(status.get("peers") or []) == len(self.peers)
        )

    def stop(self) -> None:
        """Stop every peer."""
        for peer in self.peers:
            peer.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------------------------


class PrometheusServer(_Server):
    """``prometheus`` scraping ``scrape_targets`` (job ``tocsin-test``), optionally with rules
    and an Alertmanager.

    Started with ``--rules.alert.resend-delay=1s`` (default 1m): Alertmanager discovery is
    usually not ready at the first rule evaluation, and without it the first firing alert
    would only be re-sent a minute later.  Files in ``tmp``: prometheus.yml, rules.yml,
    prometheus-data/, prometheus.log (so use one ``tmp`` per Prometheus).
    """

    name = "prometheus"
    binary = PROMETHEUS_BINARY
    job_name = "tocsin-test"

    def __init__(
        self,
        tmp: Path,
        *,
        scrape_targets: Sequence[str],
        rules: str | None = None,
        alertmanager_url: str | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(tmp, extra_args=extra_args)
        self.scrape_targets = list(scrape_targets)
        self.rules = rules
        self.alertmanager_url = alertmanager_url
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.config_path = self.tmp / "prometheus.yml"
        self.rules_path = self.tmp / "rules.yml"
        self.storage_path = self.tmp / "prometheus-data"

    def config(self) -> dict[str, Any]:
        """The prometheus.yml content, as data."""
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [
                {
                    "job_name": self.job_name,
                    "static_configs": [{"targets": self.scrape_targets}],
                }
            ],
        }
        if self.rules is not None:
            config["rule_files"] = [str(self.rules_path)]
        if self.alertmanager_url is not None:
            parts = urlsplit(self.alertmanager_url)
            if not parts.netloc:
                raise ValueError(f"alertmanager_url needs scheme://host:port, got {parts!r}")
            config["alerting"] = {
                "alertmanagers": [
                    {
                        "scheme": parts.scheme or "http",
                        "path_prefix": parts.path or "/",
                        "api_version": "v2",
                        "timeout": "10s",
                        "static_configs": [{"targets": [parts.netloc]}],
                    }
                ]
            }
        return config

    def _write_config(self) -> None:
        if self.rules is not None:
            self.rules_path.write_text(self.rules)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.storage_path.mkdir(parents=True, exist_ok=True)

    def _argv(self, binary: str, port: int) -> list[str]:
        return [
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.storage_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--rules.alert.resend-delay=1s",
        ]


# ---------------------------------------------------------------------------------------------
# A scrape target
# ---------------------------------------------------------------------------------------------

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

_LabelKey = tuple[tuple[str, str], ...]


def _label_key(labels: dict[str, str] | None) -> _LabelKey:
    items = tuple(sorted((labels or {}).items()))
    for name, _ in items:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"invalid label name {name!r}")
    return items


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _exposition(metrics: Iterable[tuple[str, Iterable[tuple[_LabelKey, float]]]]) -> str:
    lines: list[str] = []
    for name, samples in metrics:
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            rendered = ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in labels)
            selector = f"{name}{{{rendered}}}" if rendered else name
            lines.append(f"{selector} {_format_value(value)}")
    return "\n".join(lines) + "\n"


class MetricSource:
    """An HTTP server in a background thread serving gauges at ``GET /metrics``.

    ``url`` is ``127.0.0.1:PORT``, ready for a scrape config's ``targets``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gauges: dict[str, dict[_LabelKey, float]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        """Set gauge ``name{labels}`` to ``value``; each label set is its own series."""
        if not _METRIC_NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        key = _label_key(labels)
        with self._lock:
            self._gauges.setdefault(name, {})[key] = float(value)

    def remove(self, name: str, labels: dict[str, str] | None = None) -> None:
        """Stop exposing ``name{labels}`` (Prometheus then marks the series stale)."""
        key = _label_key(labels)
        with self._lock:
            series = self._gauges.get(name)
            if series is not None:
                series.pop(key, None)
                if not series:
                    del self._gauges[name]

    def render(self) -> str:
        """The current /metrics body (Prometheus text format 0.0.4)."""
        with self._lock:
            snapshot = [(name, list(series.items())) for name, series in self._gauges.items()]
        return _exposition(snapshot)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("MetricSource is not started")
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        """``127.0.0.1:PORT``, for a scrape config."""
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.url}/metrics"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("MetricSource is already started")
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404)
                    return
                body = source.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # port 0: no bind race
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class Received:
    """One request a local endpoint received."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body, as JSON."""
        return json.loads(self.body)


@contextlib.asynccontextmanager
async def local_endpoint(status: int = 200) -> AsyncIterator[tuple[list[Received], int]]:
    """An HTTP server on loopback that takes any POST, answers `status`, and keeps what it
    was sent (a webhook's, a push service's or an apprise json:// destination's stand-in)."""
    from aiohttp import web

    received: list[Received] = []

    async def take(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(Received(request.path, dict(request.headers), body))
        return web.Response(status=status, text="ok" if status < 300 else "refused")

    app = web.Application()
    app.router.add_post("/{path:.*}", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield received, port
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def smtp_server(handler: Any) -> Iterator[int]:
    """A real SMTP server (aiosmtpd) on loopback whose `handler` takes each message; yields
    its port."""
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
