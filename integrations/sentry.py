"""Sentry: Web API diagnostics (contracts 4.2) as DiagnosticResults; webhooks live beside it."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
from multidict import CIMultiDictProxy
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.domain.diagnostics import DiagnosticResult, Status, Table, one_line, redact
from bot.errors import IntegrationError
from bot.ports import Clock
from bot.retry_after import number, retry_after_seconds
from integrations.sentry_webhooks import parse_webhook, verify_signature

__all__ = ["SentryClient", "SentryError", "parse_webhook", "verify_signature"]

log = logging.getLogger(__name__)

SOURCE = "sentry"
MAX_PAGES = 5
_RETRY_PAUSE = 0.2  # before the one retry of a 5xx
_MIN_REQUEST_BUDGET = 0.1  # a retry must leave at least this long for the request itself
_LINK = re.compile(r'<(?P<url>[^>]*)>(?P<params>(?:\s*;\s*[\w-]+\s*=\s*"[^"]*")*)')
_LINK_PARAM = re.compile(r'([\w-]+)\s*=\s*"([^"]*)"')


class SentryError(IntegrationError):
    """Sentry failed or answered something unusable; the message is one safe line."""


@dataclass(frozen=True)
class _Reply:
    data: Any
    headers: CIMultiDictProxy[str]


class _Issue(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str
    shortId: str = ""
    title: str = ""
    count: int = 0
    userCount: int = 0
    firstSeen: datetime | None = None
    lastSeen: datetime | None = None
    permalink: str | None = None


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SentryClient:
    """Sentry's Web API for diagnostics; every failure becomes an error result, never raised."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str,
        org: str,
        token: str,
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self.session = session
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.org = org
        self.timeout = timeout
        self.clock: Clock = clock or _SystemClock()
        self._token = token
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def top_issues(
        self, project: str, *, hours: int = 24, limit: int = 5
    ) -> DiagnosticResult:
        """The unresolved issues of a project seen in the last `hours`, most events first."""
        hours, limit = max(1, hours), max(1, min(limit, 100))
        return await self._guarded(
            f"Sentry: top issues in {project}",
            lambda title: self._top_issues(title, project, hours=hours, limit=limit),
        )

    async def new_issues(
        self, project: str, *, hours: int = 24, limit: int = 5
    ) -> DiagnosticResult:
        """Unresolved issues first seen in the last `hours`, most events first (for digests)."""
        hours, limit = max(1, hours), max(1, min(limit, 100))

        async def run(title: str) -> DiagnosticResult:
            issues, note = await self._collect_issues(project, hours=hours, limit=100)
            cutoff = self.clock.now() - timedelta(hours=hours)
            fresh = [i for i in issues if i.firstSeen is not None and _aware(i.firstSeen) >= cutoff]
            return self._issues_result(title, project, fresh, hours=hours, limit=limit, note=note)

        return await self._guarded(f"Sentry: new issues in {project}", run)

    async def latest_event(self, issue_id: str) -> DiagnosticResult:
        """The latest event of an issue: exception, top in-app frames, release and tags."""

        async def run(title: str) -> DiagnosticResult:
            reply = await self._get(
                f"organizations/{_seg(self.org)}/issues/{_seg(issue_id)}/events/latest/",
                {},
                scope="event:read",
                not_found=f"unknown issue {issue_id} in organization {self.org}",
                deadline=self._deadline(),
            )
            if not isinstance(reply.data, dict):
                raise SentryError("Sentry answered an unexpected shape (expected an event)")
            return _event_result(title, reply.data)

        return await self._guarded(f"Sentry: latest event of issue {issue_id}", run)

    async def health(self) -> DiagnosticResult:
        """Whether Sentry answers an authenticated call for the organization."""

        async def run(title: str) -> DiagnosticResult:
            reply = await self._get(
                f"organizations/{_seg(self.org)}/",
                {},
                scope="org:read",
                not_found=f"unknown organization {self.org}",
                deadline=self._deadline(),
            )
            name = reply.data.get("name") if isinstance(reply.data, dict) else None
            text = f"Sentry answers for organization {name or self.org}"
            return DiagnosticResult(title=title, status=Status.OK, text=text, source=SOURCE)

        return await self._guarded("Sentry", run)

    async def _guarded(
        self, title: str, run: Callable[[str], Awaitable[DiagnosticResult]]
    ) -> DiagnosticResult:
        """Run within the timeout; every failure becomes an error result."""
        try:
            async with asyncio.timeout(self.timeout):
                return await run(title)
        except TimeoutError:
            reason = f"Sentry did not answer within {self.timeout:g}s"
        except SentryError as exc:
            reason = str(exc)
        except Exception as exc:  # the caller gets a result, never a crash; the bug is logged
            log.exception("Sentry diagnostics failed unexpectedly")
            reason = f"unexpected {type(exc).__name__} while reading Sentry's answer"
        if self._token:
            reason = reason.replace(self._token, "***")
        return DiagnosticResult.error(title, reason, source=SOURCE)

    # --- issues ---------------------------------------------------------------------------

    async def _top_issues(
        self, title: str, project: str, *, hours: int, limit: int
    ) -> DiagnosticResult:
        issues, note = await self._collect_issues(project, hours=hours, limit=limit)
        return self._issues_result(title, project, issues, hours=hours, limit=limit, note=note)

    async def _collect_issues(
        self, project: str, *, hours: int, limit: int
    ) -> tuple[list[_Issue], str]:
        deadline = self._deadline()
        cutoff = self.clock.now() - timedelta(hours=hours)
        params = {"query": "is:unresolved", "statsPeriod": "24h" if hours <= 24 else "14d"}
        found: dict[str, _Issue] = {}  # by id: an issue can move to a later page meanwhile
        for _ in range(MAX_PAGES):
            reply = await self._get(
                f"projects/{_seg(self.org)}/{_seg(project)}/issues/",
                params,
                scope="project:read",
                not_found=f"unknown project {project} in organization {self.org}",
                deadline=deadline,
            )
            found |= {i.id: i for i in _parse_issues(reply.data) if _seen_since(i, cutoff)}
            cursor = next_cursor(reply.headers.get("Link", ""))
            if len(found) >= limit or cursor is None:
                return list(found.values()), ""
            if reply.headers.get("X-Sentry-Rate-Limit-Remaining", "").strip() == "0":
                return list(found.values()), "partial: Sentry's rate limit is used up"
            params = {**params, "cursor": cursor}
        return list(found.values()), f"partial: stopped after {MAX_PAGES} pages"

    def _issues_result(
        self,
        title: str,
        project: str,
        issues: list[_Issue],
        *,
        hours: int,
        limit: int,
        note: str,
    ) -> DiagnosticResult:
        window = f"{hours // 24}d" if hours >= 48 and hours % 24 == 0 else f"{hours}h"
        suffix = f" ({note})" if note else ""
        if not issues:
            text = f"No unresolved issues in the last {window}{suffix}"
            return DiagnosticResult(title=title, status=Status.OK, text=text, source=SOURCE)
        issues = sorted(issues, key=lambda i: i.count, reverse=True)[:limit]
        now = self.clock.now()
        rows = tuple(
            (
                one_line(f"{i.shortId} {i.title}".strip(), 80),
                f"{i.count:,}",
                f"{i.userCount:,}",
                _ago(i.firstSeen, now),
                _ago(i.lastSeen, now),
                i.permalink or self._issue_link(i.id),
            )
            for i in issues
        )
        top = issues[0]
        plural = "s" if len(issues) != 1 else ""
        text = (
            f"{len(issues)} unresolved issue{plural} in {project} seen in the last {window}; "
            f"most events: {top.shortId or top.id} ({top.count:,}){suffix}"
        )
        return DiagnosticResult(
            title=title,
            status=Status.WARN,
            text=text,
            table=Table(("issue", "events", "users", "first seen", "last seen", "link"), rows),
            source=SOURCE,
        )

    def _issue_link(self, issue_id: str) -> str:
        base = self.api_url.removesuffix("/").removesuffix("/api/0")
        return f"{base}/organizations/{_seg(self.org)}/issues/{_seg(issue_id)}/"

    # --- transport ------------------------------------------------------------------------

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.timeout

    async def _get(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        scope: str,
        not_found: str,
        deadline: float,
    ) -> _Reply:
        """GET with one retry for a 429 (if its wait fits the budget) or a 5xx."""
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            status, headers, body = await self._fetch(path, params, remaining)
            left = deadline - loop.time() - _MIN_REQUEST_BUDGET
            if status == 429:
                wait = retry_after(headers, now=time.time())
                if attempt == 1 and wait is not None and wait <= left:
                    await asyncio.sleep(wait)
                    continue
                after = f", retry after {math.ceil(wait)}s" if wait is not None else ""
                raise SentryError(f"rate limited by Sentry{after}")
            if status >= 500:
                if attempt == 1 and left >= _RETRY_PAUSE:
                    await asyncio.sleep(_RETRY_PAUSE)
                    continue
                raise SentryError(f"Sentry server error (HTTP {status})")
            return _Reply(_decode(status, body, scope=scope, not_found=not_found), headers)
        raise AssertionError("unreachable")

    async def _fetch(
        self, path: str, params: Mapping[str, str], remaining: float
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        try:
            async with self.session.get(
                self.api_url + path,
                params=params,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=remaining),
                allow_redirects=False,
            ) as response:
                return response.status, response.headers, await response.read()
        except TimeoutError:
            raise  # aiohttp's timeout errors are ClientErrors too; keep them timeouts
        except aiohttp.ClientError as exc:
            raise SentryError(f"Sentry unreachable: {type(exc).__name__}") from None


def next_cursor(link: str) -> str | None:
    """The cursor of the `rel="next"` link when it says results="true" (contracts 4.2)."""
    for match in _LINK.finditer(link):
        params = {k.lower(): v for k, v in _LINK_PARAM.findall(match.group("params"))}
        if params.get("rel") != "next":
            continue
        if params.get("results") != "true":
            return None
        cursor = (
            params.get("cursor")
            or parse_qs(urlsplit(match.group("url")).query).get("cursor", [""])[0]
        )
        return cursor or None
    return None


def retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait after a 429: Retry-After, else X-Sentry-Rate-Limit-Reset (epoch s)."""
    seconds = retry_after_seconds(headers, now=now)
    if seconds is not None:
        return seconds
    reset = number(headers.get("X-Sentry-Rate-Limit-Reset", ""))
    return max(0.0, reset - now) if reset is not None else None


def _decode(status: int, body: bytes, *, scope: str, not_found: str) -> Any:
    if status == 401:
        raise SentryError("Sentry rejected the token (HTTP 401, authentication failed)")
    if status == 403:
        raise SentryError(f"Sentry token lacks scope {scope} (HTTP 403)")
    if status == 404:
        raise SentryError(f"{not_found} (HTTP 404)")
    if 300 <= status < 400:
        raise SentryError(f"Sentry redirected (HTTP {status}); check the Sentry API url")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise SentryError(
            f"Sentry answered with something other than JSON (HTTP {status})"
        ) from None
    if status >= 300:
        detail = data.get("detail") if isinstance(data, dict) else None
        raise SentryError(f"Sentry answered HTTP {status}: {one_line(str(detail or ''), 120)}")
    return data


def _parse_issues(data: Any) -> list[_Issue]:
    if not isinstance(data, list):
        raise SentryError("Sentry answered an unexpected shape (expected a list of issues)")
    issues = []
    for item in data:
        try:
            issues.append(_Issue.model_validate(item))
        except ValidationError:
            continue  # one odd issue should not hide the others
    if data and not issues:
        raise SentryError("Sentry answered issues in an unexpected shape")
    return issues


def _seen_since(issue: _Issue, cutoff: datetime) -> bool:
    return issue.lastSeen is None or _aware(issue.lastSeen) >= cutoff


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "?"
    seconds = int((now - _aware(value)).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


def _seg(value: str) -> str:
    return quote(value, safe="")


# --- latest event ---------------------------------------------------------------------------

_FRAMES_SHOWN = 5
_TAGS_SHOWN = 5
_TAGS_SKIPPED = {"environment", "release", "level", "user", "url"}


def _event_result(title: str, event: dict[str, Any]) -> DiagnosticResult:
    exception = _main_exception(event)
    kind = str(exception.get("type") or "") if exception else ""
    value = str(exception.get("value") or "") if exception else ""
    headline = f"{kind}: {value}" if kind and value else kind or value
    headline = headline or str(event.get("title") or event.get("message") or "no exception")
    frames, in_app = _top_frames(exception)
    tags = _tags(event)
    release = _release(event) or tags.get("release", "")
    environment = str(event.get("environment") or "") or tags.get("environment", "")
    facts = [f"release {release or '?'}", f"environment {environment or '?'}"]
    event_id = str(event.get("eventID") or event.get("event_id") or "")
    if event_id:
        facts.append(f"event {event_id[:12]}")
    when = event.get("dateCreated") or event.get("datetime")
    if when:
        facts.append(f"at {when}")
    shown = [(k, v) for k, v in tags.items() if k not in _TAGS_SKIPPED][:_TAGS_SHOWN]
    lines = [one_line(headline, 200), " · ".join(facts)]
    if shown:
        lines.append("tags: " + ", ".join(f"{k}={one_line(v, 40)}" for k, v in shown))
    if frames:
        where = "" if in_app else " (no in-app frames)"
        lines.append(f"at {frames[0][0]} in {frames[0][1]}{where}")
    else:
        lines.append("no stack trace")
    return DiagnosticResult(
        title=title,
        status=Status.WARN,
        text=redact("\n".join(lines)),
        table=Table(("frame", "function"), tuple(frames)) if frames else None,
        source=SOURCE,
    )


def _main_exception(event: dict[str, Any]) -> dict[str, Any] | None:
    values: Any = None
    for entry in _dicts(event.get("entries")):
        if entry.get("type") == "exception" and isinstance(entry.get("data"), dict):
            values = entry["data"].get("values")
            break
    else:
        exception = event.get("exception")
        values = exception.get("values") if isinstance(exception, dict) else None
    chain = _dicts(values)
    # Sentry lists chained exceptions oldest first: the last one is what was raised.
    return chain[-1] if chain else None


def _top_frames(exception: dict[str, Any] | None) -> tuple[list[tuple[str, str]], bool]:
    stacktrace = exception.get("stacktrace") if exception else None
    frames = _dicts(stacktrace.get("frames") if isinstance(stacktrace, dict) else None)
    frames.reverse()  # Sentry lists the innermost frame last
    in_app = [f for f in frames if f.get("inApp", f.get("in_app")) is True]
    chosen = in_app or frames
    rows = [_frame_row(f) for f in chosen[:_FRAMES_SHOWN]]
    return rows, bool(in_app)


def _frame_row(frame: dict[str, Any]) -> tuple[str, str]:
    where = (
        frame.get("filename")
        or frame.get("absPath")
        or frame.get("abs_path")
        or frame.get("module")
        or "?"
    )
    line = frame.get("lineNo", frame.get("lineno"))
    location = f"{where}:{line}" if line is not None else str(where)
    return one_line(location, 100), one_line(str(frame.get("function") or "?"), 80)


def _tags(event: dict[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    raw = event.get("tags")
    for tag in raw if isinstance(raw, list) else []:
        if isinstance(tag, dict) and "key" in tag:
            tags[str(tag["key"])] = str(tag.get("value") or "")
        elif isinstance(tag, list | tuple) and len(tag) == 2:
            tags[str(tag[0])] = str(tag[1])
    return tags


def _release(event: dict[str, Any]) -> str:
    release = event.get("release")
    if isinstance(release, dict):
        return str(release.get("shortVersion") or release.get("version") or "")
    return str(release or "")


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
