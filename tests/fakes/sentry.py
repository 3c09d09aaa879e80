"""A fake Sentry Web API on loopback (contracts 4.2), with the failures a client must survive.

    fake = FakeSentry(token="t", org="acme", page_size=3)
    base = await fake.start()            # "http://127.0.0.1:PORT/api/0/"
    fake.issues["backend"] = [make_issue("1", count=5), ...]
    fake.events["1"] = make_event()
    fake.fail_next(429, 1, headers={"Retry-After": "1"})
    fake.stall = True                    # or fake.stall_paths.add("events/latest")
    fake.garbage = True                  # 200 with an HTML body
    fake.requests                        # what was asked, in order

Issues come from the docs' example (`sentry-issues-list.json`); the latest event follows
Sentry's public event JSON (`entries[type=exception].data.values[].stacktrace.frames`).
Differences from Sentry: one rate-limit window for all endpoints, cursors are plain offsets
(`0:<offset>:<is_prev>`), and only the `is:unresolved` term of `query` is understood.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

PAYLOADS = Path(__file__).resolve().parents[3] / "shared" / "contracts" / "payloads"
GARBAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>"

_ORG = re.compile(r"^organizations/(?P<org>[^/]+)/$")
_ISSUES = re.compile(r"^projects/(?P<org>[^/]+)/(?P<project>[^/]+)/issues/$")
_LATEST = re.compile(r"^organizations/(?P<org>[^/]+)/issues/(?P<issue>[^/]+)/events/latest/$")
_CURSOR = re.compile(r"^[^:]*:(?P<offset>\d+):(?P<is_prev>[01])$")
_STATS_PERIODS = ("24h", "14d", "")
_TOO_MANY = "You are attempting to use this endpoint too frequently."


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str  # below /api/0/, e.g. "projects/acme/backend/issues/"
    query: dict[str, str]
    authorization: str | None
    at: float  # time.monotonic()


@dataclass
class _Canned:
    status: int
    headers: dict[str, str] | None
    body: bytes
    content_type: str


@dataclass
class FakeSentry:
    """Serves /api/0/ like Sentry: issues, latest events and the organization."""

    token: str = "fake-sentry-token"
    org: str = "test-org"
    page_size: int = 100
    rate_limit: int = 1000
    rate_window: float = 60.0
    issues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    stall: bool = False
    stall_paths: set[str] = field(default_factory=set)
    garbage: bool = False
    base_url: str | None = None

    def __post_init__(self) -> None:
        self.rate_remaining = self.rate_limit
        self._reset_at = time.time() + self.rate_window
        self._canned: list[_Canned] = []
        self._runner: web.AppRunner | None = None
        self._released: asyncio.Event | None = None

    # --- control --------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Answer the next `count` requests with `status` (429 gets Retry-After: 1 by default)."""
        if body is None:
            detail = _TOO_MANY if status == 429 else "Internal Error"
            body = json.dumps({"detail": detail}).encode()
        self._canned.extend(_Canned(status, headers, body, content_type) for _ in range(count))

    def calls_to(self, part: str) -> list[RecordedRequest]:
        """The recorded requests whose path contains `part`."""
        return [r for r in self.requests if part in r.path]

    def add_issue(self, project: str, issue_id: str, **fields: Any) -> dict[str, Any]:
        """Append an issue built by make_issue to a project; returns it."""
        issue = make_issue(issue_id, project=project, **fields)
        self.issues.setdefault(project, []).append(issue)
        return issue

    # --- server ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve and return the API base url, ending in "/api/0/"."""
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/api/0/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound}/api/0/"
        return self.base_url

    async def stop(self) -> None:
        """Release stalled requests and stop serving."""
        if self._released is not None:
            self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        self.requests.append(
            RecordedRequest(
                request.method,
                path,
                dict(request.query),
                request.headers.get("Authorization"),
                time.monotonic(),
            )
        )
        if self.stall or any(part in path for part in self.stall_paths):
            assert self._released is not None
            await self._released.wait()
            raise web.HTTPServiceUnavailable()
        if self._canned:
            return self._answer_canned(self._canned.pop(0))
        if self.garbage:
            return web.Response(body=GARBAGE, content_type="text/html")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            given = request.headers.get("Authorization")
            reason = "Invalid token" if given else "Authentication credentials were not provided."
            return _json({"detail": reason}, status=401)
        if not self._take_rate_limit():
            headers = {"Retry-After": str(math.ceil(self._reset_at - time.time()))}
            return _json(
                {"detail": _TOO_MANY}, status=429, headers={**self._rate_headers(), **headers}
            )
        return self._route(request, path)

    def _route(self, request: web.Request, path: str) -> web.Response:
        if request.method != "GET":
            return _json({"detail": f'Method "{request.method}" not allowed.'}, status=405)
        if (m := _ORG.match(path)) and m["org"] == self.org:
            org = {"id": "1", "slug": self.org, "name": self.org.replace("-", " ").title()}
            return _json(org, headers=self._rate_headers())
        if (m := _ISSUES.match(path)) and m["org"] == self.org and m["project"] in self.issues:
            return self._issue_page(request, path, m["project"])
        if (m := _LATEST.match(path)) and m["org"] == self.org and m["issue"] in self.events:
            return _json(self.events[m["issue"]], headers=self._rate_headers())
        return _json({"detail": "The requested resource does not exist"}, status=404)

    def _issue_page(self, request: web.Request, path: str, project: str) -> web.Response:
        period = request.query.get("statsPeriod", "24h")
        if period not in _STATS_PERIODS:
            detail = "Invalid stats_period. Valid choices are '', '24h', and '14d'"
            return _json({"detail": detail}, status=400)
        cursor = _CURSOR.match(request.query.get("cursor", "0:0:0"))
        if cursor is None:
            return _json({"detail": "Invalid cursor parameter."}, status=400)
        query = request.query.get("query", "is:unresolved")
        items = [
            _with_period(i, period)
            for i in self.issues[project]
            if "is:unresolved" not in query or i.get("status") == "unresolved"
        ]
        offset = int(cursor["offset"])
        page = items[offset : offset + self.page_size]
        rest = [(k, v) for k, v in request.query.items() if k != "cursor"]
        link = _link_header(
            f"{self.base_url}{path}?{urlencode(rest)}",
            offset,
            self.page_size,
            more=offset + self.page_size < len(items),
        )
        return _json(page, headers={**self._rate_headers(), "Link": link})

    def _answer_canned(self, canned: _Canned) -> web.Response:
        headers = self._rate_headers()
        if canned.status == 429:
            headers["X-Sentry-Rate-Limit-Remaining"] = "0"
            if canned.headers is None:
                headers["Retry-After"] = "1"
        headers.update(canned.headers or {})
        return web.Response(
            status=canned.status,
            body=canned.body,
            headers=headers,
            content_type=canned.content_type,
        )

    def _take_rate_limit(self) -> bool:
        now = time.time()
        if now >= self._reset_at:
            self.rate_remaining = self.rate_limit
            self._reset_at = now + self.rate_window
        if self.rate_remaining <= 0:
            return False
        self.rate_remaining -= 1
        return True

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-Sentry-Rate-Limit-Limit": str(self.rate_limit),
            "X-Sentry-Rate-Limit-Remaining": str(max(0, self.rate_remaining)),
            "X-Sentry-Rate-Limit-Reset": str(math.ceil(self._reset_at)),
            "X-Sentry-Rate-Limit-ConcurrentLimit": "25",
            "X-Sentry-Rate-Limit-ConcurrentRemaining": "24",
        }


def _link_header(url: str, offset: int, page_size: int, *, more: bool) -> str:
    """Both links, always, in the format of contracts 4.2."""
    prev_cursor = f"0:{max(0, offset - page_size)}:1"
    next_cursor = f"0:{offset + page_size}:0"
    return (
        f'<{url}&cursor={prev_cursor}>; rel="previous"; '
        f'results="{"true" if offset > 0 else "false"}"; cursor="{prev_cursor}", '
        f'<{url}&cursor={next_cursor}>; rel="next"; '
        f'results="{"true" if more else "false"}"; cursor="{next_cursor}"'
    )


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers)


def _with_period(issue: dict[str, Any], period: str) -> dict[str, Any]:
    series: list[Any] = next(iter((issue.get("stats") or {}).values()), [])
    return {**issue, "stats": {period: series} if period else {}}


def _iso(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def payload(name: str) -> Any:
    """A payload file from shared/contracts/payloads, parsed."""
    return json.loads((PAYLOADS / name).read_text())


def make_issue(
    issue_id: str,
    *,
    project: str = "pump-station",
    short_id: str | None = None,
    title: str | None = None,
    count: int = 1,
    user_count: int = 0,
    first_seen: datetime | str = "2018-11-06T21:19:55Z",
    last_seen: datetime | str = "2018-11-06T21:19:55Z",
    status: str = "unresolved",
    permalink: str | None = None,
) -> dict[str, Any]:
    """An issue as the project-issues endpoint lists it, from the docs' example."""
    issue: dict[str, Any] = copy.deepcopy(payload("sentry-issues-list.json")[0])
    short = short_id or f"{project.upper()}-{issue_id}"
    issue.update(
        id=issue_id,
        shortId=short,
        title=title or f"Example exception {issue_id}",
        count=str(count),  # Sentry sends the event count as a string
        userCount=user_count,
        firstSeen=_iso(first_seen),
        lastSeen=_iso(last_seen),
        status=status,
        permalink=permalink or f"https://sentry.io/organizations/test-org/issues/{issue_id}/",
    )
    issue["project"] = {"id": "2", "name": project.replace("-", " ").title(), "slug": project}
    issue["metadata"] = {"title": issue["title"]}
    return issue


def make_frame(filename: str, line: int, function: str, *, in_app: bool) -> dict[str, Any]:
    """One stack frame in the Web API's camelCase shape."""
    return {
        "absPath": filename,
        "colNo": None,
        "context": [],
        "filename": filename,
        "function": function,
        "inApp": in_app,
        "lineNo": line,
        "module": None,
        "vars": {},
    }


def make_event(
    *,
    exc_type: str = "ApiException",
    value: str = "Authentication failed, token expired!",
    frames: list[dict[str, Any]] | None = None,
    release: str | None = "17642328ead24b51867165985996d04b29310337",
    environment: str = "production",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A latest event shaped like the Web API's event JSON (frames listed outermost first)."""
    if frames is None:
        frames = [
            make_frame("Thread.java", 748, "run", in_app=False),
            make_frame("Application.java", 102, "home", in_app=True),
            make_frame("Sidebar.java", 5, "fetch", in_app=True),
            make_frame("ApiRequest.java", 8, "perform", in_app=True),
        ]
    all_tags = {"browser": "Chrome 60.0", "environment": environment, "level": "error"}
    all_tags |= tags or {}
    if release:
        all_tags["release"] = release
    return {
        "eventID": "0eabf1c001134940a6199d85c1ce3cf9",
        "dateCreated": "2018-11-06T21:19:56Z",
        "entries": [
            {"type": "message", "data": {"formatted": "This is an example Java exception"}},
            {
                "type": "exception",
                "data": {
                    "hasSystemFrames": True,
                    "values": [
                        {
                            "type": exc_type,
                            "value": value,
                            "module": "io.sentry.example",
                            "stacktrace": {"frames": frames, "framesOmitted": None},
                        }
                    ],
                },
            },
        ],
        "release": {"version": release, "shortVersion": release[:7]} if release else None,
        "tags": [{"key": k, "value": v} for k, v in all_tags.items()],
        "title": f"{exc_type}: {value}",
        "type": "error",
    }
