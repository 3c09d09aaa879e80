"""A Sentry look-alike: the Web API paths Tocsin's Sentry client calls (the organization,
a project's issues, an issue's latest event), with a few issues of the demo app. While a
HighErrorRate alert fires, an issue about the failing upstream appears, first seen when the
trouble began; answers follow the shapes of Sentry's documentation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.demo.world import LEAD_S, Episode

Episodes = Callable[[], Awaitable[Sequence[Episode]]]
ORG = "demo"
PROJECT = "api"
# id, short id, title, culprit, events per hour, users per hour, first seen (hours ago)
_STEADY = (
    (
        "4101",
        "API-1Q",
        "TimeoutError: upstream payments took longer than 10s",
        "payments.charge",
        9,
        4,
        72,
    ),
    ("4102", "API-2C", "KeyError: 'locale'", "users.profile", 5, 3, 30),
    (
        "4103",
        "API-2F",
        "ValidationError: message body exceeds 4000 characters",
        "messages.send",
        3,
        2,
        140,
    ),
)
_SURGE = ("4107", "API-3G", "HTTPError: 503 Service Unavailable from upstream", "gateway.forward")


def sentry_app(episodes: Episodes, now: Callable[[], datetime]) -> web.Application:
    """The demo Sentry as an aiohttp application, serving `/api/0/`."""

    async def organization(request: web.Request) -> web.Response:
        slug = request.match_info["org"]
        return web.json_response({"id": "1", "slug": slug, "name": "Demo organization"})

    async def issues(request: web.Request) -> web.Response:
        org, project = request.match_info["org"], request.match_info["project"]
        found = _issues(request, org, project, await episodes(), now())
        return web.json_response(found, headers={"Link": _links(str(request.url))})

    async def latest(request: web.Request) -> web.Response:
        issue = request.match_info["issue"]
        known = {i[0]: i for i in (*_STEADY, (*_SURGE, 0, 0, 0))}
        if issue not in known:
            return web.json_response(
                {"detail": "The requested resource does not exist"}, status=404
            )
        return web.json_response(_event(known[issue], now()))

    app = web.Application()
    app.router.add_get("/api/0/organizations/{org}/", organization)
    app.router.add_get("/api/0/projects/{org}/{project}/issues/", issues)
    app.router.add_get("/api/0/organizations/{org}/issues/{issue}/events/latest/", latest)
    return app


def _issues(
    request: web.Request, org: str, project: str, episodes: Sequence[Episode], now: datetime
) -> list[dict[str, Any]]:
    base = f"{request.url.origin()}{request.path.split('/api/0/')[0]}"
    found = [
        _issue(
            base,
            org,
            project,
            i,
            title,
            culprit,
            per_hour * 24,
            users * 24,
            now - timedelta(hours=age),
            now,
        )
        for i, _short, title, culprit, per_hour, users, age in _STEADY
    ]
    for episode in episodes:
        if episode.alertname != "HighErrorRate" or episode.start > now.timestamp():
            continue
        began = datetime.fromtimestamp(episode.start - LEAD_S, UTC)
        ended = datetime.fromtimestamp(episode.end, UTC) if episode.end else now
        minutes = max(1, int((min(ended, now) - began).total_seconds() // 60))
        surge_id, _short, title, culprit = _SURGE
        found.append(
            _issue(
                base,
                org,
                project,
                surge_id,
                title,
                culprit,
                140 * minutes,
                31 * minutes,
                began,
                min(ended, now),
            )
        )
    return sorted(found, key=lambda i: -int(i["count"]))


def _issue(
    base: str,
    org: str,
    project: str,
    issue_id: str,
    title: str,
    culprit: str,
    count: int,
    users: int,
    first: datetime,
    last: datetime,
) -> dict[str, Any]:
    short = f"{project.upper()}-{int(issue_id) - 4000:X}"
    return {
        "id": issue_id,
        "shortId": short,
        "title": title,
        "culprit": culprit,
        "level": "error",
        "status": "unresolved",
        "count": str(count),
        "userCount": users,
        "firstSeen": first.isoformat().replace("+00:00", "Z"),
        "lastSeen": last.isoformat().replace("+00:00", "Z"),
        "permalink": f"{base}/organizations/{org}/issues/{issue_id}/",
        "project": {"slug": project, "name": project},
    }


def _links(url: str) -> str:
    bare = url.split("?")[0]
    return (
        f'<{bare}?cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
        f'<{bare}?cursor=0:100:0>; rel="next"; results="false"; cursor="0:100:0"'
    )


def _event(issue: tuple[Any, ...], now: datetime) -> dict[str, Any]:
    title = str(issue[2])
    kind, _, value = title.partition(": ")
    module = str(issue[3])
    return {
        "eventID": f"{issue[0]}" * 4,
        "title": title,
        "dateCreated": now.isoformat().replace("+00:00", "Z"),
        "environment": "production",
        "release": {"version": "api@2026.12.1", "shortVersion": "2026.12.1"},
        "tags": [
            {"key": "environment", "value": "production"},
            {"key": "server_name", "value": "api-1"},
        ],
        "entries": [
            {
                "type": "exception",
                "data": {
                    "values": [
                        {
                            "type": kind,
                            "value": value,
                            "stacktrace": {
                                "frames": [
                                    {
                                        "filename": "app/server.py",
                                        "lineNo": 88,
                                        "function": "handle",
                                        "inApp": True,
                                    },
                                    {
                                        "filename": f"app/{module.replace('.', '/')}.py",
                                        "lineNo": 41,
                                        "function": module.split(".")[-1],
                                        "inApp": True,
                                    },
                                ]
                            },
                        }
                    ]
                },
            }
        ],
    }
