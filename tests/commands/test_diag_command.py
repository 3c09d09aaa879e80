"""/diag: diagnostics on demand, against a running bot, the emulator and a small fake Prometheus."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from bot.config import Settings
from bot.slack import ids
from tests.commands.conftest import ALICE, WAIT, Launch, Tweak, Workspace, shown
from tests.harness import eventually, settled
from tests.realservers import free_port

SUBCOMMANDS = ("prom", "sentry", "supabase", "health")
NOT_CONFIGURED = "not configured: set PROMETHEUS_URL"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class FakePrometheus:
    """Answers /api/v1/query, /api/v1/query_range and /-/ready; records what it was asked."""

    url: str = ""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def asked(self, path: str) -> list[dict[str, str]]:
        return [params for p, params in self.requests if p == path]

    async def _params(self, request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        return params

    async def query(self, request: web.Request) -> web.Response:
        self.requests.append(("query", await self._params(request)))
        now = time.time()
        result = [
            {
                "metric": {"__name__": "up", "job": "api", "instance": "api-1:9090"},
                "value": [now, "1"],
            },
            {
                "metric": {"__name__": "up", "job": "db", "instance": "db-1:9187"},
                "value": [now, "0"],
            },
        ]
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    async def query_range(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        self.requests.append(("query_range", params))
        start, end, step = float(params["start"]), float(params["end"]), float(params["step"])
        values = []
        t = start
        while t <= end:
            values.append([t, str(round((t - start) / max(end - start, 1), 3))])
            t += step
        result = [{"metric": {"job": "api"}, "values": values}]
        return web.json_response(
            {"status": "success", "data": {"resultType": "matrix", "result": result}}
        )

    async def ready(self, _request: web.Request) -> web.Response:
        self.requests.append(("ready", {}))
        return web.Response(text="Prometheus Server is Ready.\n")


@pytest.fixture
async def prometheus() -> AsyncIterator[FakePrometheus]:
    fake = FakePrometheus()
    app = web.Application()
    app.router.add_route("*", "/api/v1/query", fake.query)
    app.router.add_route("*", "/api/v1/query_range", fake.query_range)
    app.router.add_get("/-/ready", fake.ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


def with_prometheus(fake: FakePrometheus) -> Tweak:
    def tweak(settings: Settings) -> None:
        settings.prometheus_url = fake.url

    return tweak


async def diag(ws: Workspace, text: str, *, channel: str | None = None) -> dict[str, Any]:
    return await ws.command(text, command=ids.DIAG_COMMAND, channel=channel)


def everything(reply: dict[str, Any]) -> str:
    """The reply's text and blocks, for `in` checks."""
    return str(reply.get("text", "")) + json.dumps(reply.get("blocks", []))


@pytest.mark.parametrize("text", ["", "help", "HELP"])
async def test_help_lists_every_subcommand(ws: Workspace, text: str) -> None:
    reply = await diag(ws, text)
    assert reply["response_type"] == "ephemeral"
    for name in SUBCOMMANDS:
        assert f"`{name}" in reply["text"]


async def test_unknown_subcommand_gets_usage(ws: Workspace) -> None:
    reply = await diag(ws, "sql select 1")
    assert reply["text"].startswith("Unknown subcommand `sql`.")
    for name in SUBCOMMANDS:
        assert f"`{name}" in reply["text"]


async def test_prom_without_a_query_gets_usage(ws: Workspace) -> None:
    reply = await diag(ws, "prom")
    # Escaped for Slack, which shows `<promql>` (a bare one would be read as a link).
    assert "Usage: `/diag prom &lt;promql&gt; [range]`" in reply["text"]
    assert "Usage: `/diag prom <promql> [range]`" in shown(reply["text"])


async def test_prom_without_prometheus_says_what_to_set(ws: Workspace) -> None:
    reply = await diag(ws, "prom up")
    assert reply["response_type"] == "ephemeral"
    assert NOT_CONFIGURED in reply["text"]
    assert "error" in reply["text"].lower()
    assert NOT_CONFIGURED in json.dumps(reply["blocks"])
    assert "Traceback" not in everything(reply)


async def test_slack_escaped_query_is_unescaped_before_use(
    launch: Launch, prometheus: FakePrometheus
) -> None:
    ws = await launch(with_prometheus(prometheus))
    # Typed as is; Slack (the emulator) sends it escaped: up &gt; 0 and up &lt; 2 &amp;&amp; 1
    reply = await diag(ws, "prom up > 0 and up < 2 && 1")
    assert prometheus.asked("query")[-1]["query"] == "up > 0 and up < 2 && 1"
    shown = everything(reply)
    # The ephemeral reply shows the answer as a table: both series, their labels and values.
    assert "```" in shown
    assert "api-1:9090" in shown and "db-1:9187" in shown
    assert NOT_CONFIGURED not in shown


def dm_of(ws: Workspace, user: str) -> str | None:
    """The direct-message channel between the bot and `user`, once opened."""
    return next(
        (c.id for c in ws.emulator.state.channels.values() if c.is_im and c.im_user == user), None
    )


def files_in(ws: Workspace, channel: str | None) -> list[tuple[str, str, bytes]]:
    """(message text, file title, bytes) of every file shared into a channel."""
    state = ws.emulator.state
    return [
        (m.text, state.files[f].title, state.files[f].content())
        for m in ws.messages_in(channel or "")
        for f in m.files
    ]


async def wait_for_files(ws: Workspace, channel: Callable[[], str | None], count: int) -> None:
    await eventually(
        lambda: len(files_in(ws, channel())) >= count, timeout=WAIT, what=f"{count} file(s)"
    )
    await eventually(lambda: settled(ws.bot.url), timeout=WAIT, what="the outbox drained")


async def test_prom_graph_outside_an_incident_channel_goes_to_the_persons_dm(
    launch: Launch, prometheus: FakePrometheus
) -> None:
    ws = await launch(with_prometheus(prometheus))
    reply = await diag(ws, "prom rate(http_requests_total[5m]) 1h")
    (asked,) = prometheus.asked("query_range")
    assert asked["query"] == "rate(http_requests_total[5m])"
    assert 3600 <= float(asked["end"]) - float(asked["start"]) <= 3600 + 60
    assert prometheus.asked("query") == []

    # The reply says where the graph went, and promises nothing below it.
    shown = everything(reply)
    assert "graph sent to you in a DM" in shown
    assert "graph below" not in shown and "Graphs are posted" not in shown

    await wait_for_files(ws, lambda: dm_of(ws, ALICE), 1)
    ((text, title, png),) = files_in(ws, dm_of(ws, ALICE))
    assert png.startswith(PNG_SIGNATURE)
    assert title == "rate(http_requests_total[5m])"
    assert text.startswith("rate(http_requests_total[5m]): 1 series over 1h")
    assert [f for m in ws.messages_in(ws.general) for f in m.files] == []  # not in #general


async def test_a_lost_share_answer_does_not_send_the_graph_twice(
    launch: Launch, prometheus: FakePrometheus
) -> None:
    ws = await launch(with_prometheus(prometheus))
    ws.emulator.lose_answers("files.completeUploadExternal")
    await diag(ws, "prom up 30m")

    await wait_for_files(ws, lambda: dm_of(ws, ALICE), 1)
    assert len(files_in(ws, dm_of(ws, ALICE))) == 1
    assert len(ws.emulator.calls_to("files.getUploadURLExternal")) == 1
    assert len(ws.emulator.calls_to("conversations.open")) == 1


async def test_share_posts_the_graph_in_the_channel_where_it_was_asked(
    launch: Launch, prometheus: FakePrometheus
) -> None:
    ws = await launch(with_prometheus(prometheus))
    channel = ws.emulator.add_channel("ops", members=[ALICE, ws.emulator.bot_user_id])
    reply = await diag(ws, "prom up 1h share", channel=channel)
    assert prometheus.asked("query_range")[-1]["query"] == "up"  # `share` is not PromQL
    assert "graph shared in this channel" in everything(reply)

    await wait_for_files(ws, lambda: channel, 1)
    ((text, title, _png),) = files_in(ws, channel)
    assert title == "up" and text.startswith("up: 1 series over 1h")
    assert dm_of(ws, ALICE) is None


async def test_share_where_the_bot_cannot_post_sends_the_graph_to_the_dm_and_says_why(
    launch: Launch, prometheus: FakePrometheus
) -> None:
    ws = await launch(with_prometheus(prometheus))  # the bot is not in #general
    await diag(ws, "prom up 1h SHARE")

    await wait_for_files(ws, lambda: dm_of(ws, ALICE), 1)
    ((text, _title, _png),) = files_in(ws, dm_of(ws, ALICE))
    assert text.startswith(f"I could not share this graph in <#{ws.general}> (not_in_channel).")


async def test_in_an_incident_channel_the_result_is_posted_there(
    launch: Launch, prometheus: FakePrometheus
) -> None:
    ws = await launch(with_prometheus(prometheus))
    incident = await ws.declare("Checkout is slow")
    reply = await diag(ws, "prom up", channel=incident.channel)
    assert reply["text"] == "Posted 1 result here."
    assert prometheus.asked("query")[-1]["query"] == "up"

    def posted() -> list[Any]:
        return [
            c
            for c in ws.emulator.calls_to("chat.postMessage")
            if c.params.get("channel") == incident.channel and "api-1:9090" in json.dumps(c.params)
        ]

    await eventually(lambda: bool(posted()), what="the result in the incident channel")
    await ws.wait_for_event(incident.id, "diagnostic")


async def test_in_an_incident_channel_a_not_configured_source_is_posted_too(
    ws: Workspace,
) -> None:
    incident = await ws.declare("Payments down")
    reply = await diag(ws, "prom up", channel=incident.channel)
    assert reply["text"] == "Posted 1 result here."
    await ws.wait_for_message(incident.channel, NOT_CONFIGURED)


def ok_with_latency(line: str, name: str) -> bool:
    """ "OK Slack: ok (12 ms)" """
    return re.fullmatch(rf"OK {name}: ok \(\d+ ms\)", line) is not None


async def test_health_lists_every_dependency_each_in_its_own_state(ws: Workspace) -> None:
    reply = await diag(ws, "health")
    lines = reply["text"].splitlines()
    assert len(lines) == 6, lines
    assert ok_with_latency(lines[0], "Database") and ok_with_latency(lines[1], "Slack")
    assert lines[2:] == [
        "NOT CONFIGURED Alertmanager: set ALERTMANAGER_URL",
        "NOT CONFIGURED Prometheus: set PROMETHEUS_URL",
        "NOT CONFIGURED Sentry: set SENTRY_TOKEN and SENTRY_ORG",
        "NOT CONFIGURED Supabase: set SUPABASE_DB_URL, or SUPABASE_URL and SUPABASE_KEY",
    ]
    assert "ERROR" not in reply["text"]


async def test_health_says_which_configured_dependency_fails_and_why(
    launch: Launch, prometheus: FakePrometheus
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"

    def tweak(settings: Settings) -> None:
        settings.prometheus_url = prometheus.url
        settings.alertmanager_url = unreachable

    ws = await launch(tweak)
    reply = await diag(ws, "health")
    lines = reply["text"].splitlines()
    assert ok_with_latency(lines[3], "Prometheus")
    assert lines[2] == (
        "FAIL Alertmanager: failing: Alertmanager unreachable: ClientConnectorError"
    ), lines
    assert prometheus.asked("ready")
    assert "NOT CONFIGURED Sentry" in reply["text"]


async def test_supabase_not_configured(ws: Workspace) -> None:
    reply = await diag(ws, "supabase")
    assert "not configured: set SUPABASE_DB_URL" in reply["text"]


async def test_sentry_not_configured(ws: Workspace) -> None:
    reply = await diag(ws, "sentry web")
    assert "not configured: set SENTRY_TOKEN and SENTRY_ORG" in reply["text"]


@pytest.mark.parametrize("span", ["32d", "745h", "2678401s"])
async def test_prom_range_over_31_days_is_refused(
    launch: Launch, prometheus: FakePrometheus, span: str
) -> None:
    ws = await launch(with_prometheus(prometheus))
    reply = await diag(ws, f"prom up {span}")
    assert "at most 31d" in reply["text"]
    assert prometheus.requests == []


async def test_prom_range_of_exactly_31_days_is_a_graph(
    launch: Launch, prometheus: FakePrometheus
) -> None:
    ws = await launch(with_prometheus(prometheus))
    reply = await diag(ws, "prom up 31d")
    (asked,) = prometheus.asked("query_range")
    assert asked["query"] == "up"
    assert "at most 31d" not in reply["text"]


@pytest.mark.parametrize(
    "query",
    [
        "sum(rate(http_requests_total[5m])) offset 1h",
        "up OFFSET 5m",
        "up @ 1700000000 offset 5m",
        "rate(http_requests_total[5m])",
    ],
)
async def test_prom_offset_duration_stays_in_the_query(
    launch: Launch, prometheus: FakePrometheus, query: str
) -> None:
    ws = await launch(with_prometheus(prometheus))
    await diag(ws, f"prom {query}")
    assert prometheus.asked("query_range") == []
    assert prometheus.asked("query")[-1]["query"] == query


async def test_prom_range_after_an_offset_is_a_graph(
    launch: Launch, prometheus: FakePrometheus
) -> None:
    ws = await launch(with_prometheus(prometheus))
    await diag(ws, "prom up offset 5m 1h")
    (asked,) = prometheus.asked("query_range")
    assert asked["query"] == "up offset 5m"
