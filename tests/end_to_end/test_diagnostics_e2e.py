"""Playbook diagnostics end to end: webhook -> incident -> diagnostics -> Slack messages.

Real Prometheus (scraping a MetricSource whose counters grow with time, so ``rate()`` has
data), a fake Sentry Web API (``tests.fakes.sentry.FakeSentry``) and the machine's real
Postgres as the Supabase database; Slack is the emulator. Tocsin runs in this process
(``tests.harness.running_bot``) on a fresh SQLite store.

What an on-call engineer sees is asserted from the emulator's workspace: one result per
playbook step in the incident channel (status taken from the context line that
``bot.slack.render.diagnostics.render_result`` writes; results ready together share a message),
the graph uploaded there as a PNG, and one ``diagnostic`` event per result on the incident's
timeline.

Slack's pacing (one post per second per channel, Tocsin's default) is left on; the deadlines
below allow for a few paced posts.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import requests
from PIL import Image
from pydantic import SecretStr

import bot.main.sources as main_sources
from bot.config import SHIPPED_PLAYBOOKS, Settings
from bot.domain.incidents import TimelineEvent
from bot.slack import ids
from bot.slack.emulator import SlackEmulator
from bot.slack.emulator.state import Message
from bot.slack.render.diagnostics import EMOJI
from integrations.sentry import SentryClient
from tests.builders import make_alert, make_payload
from tests.fakes.sentry import FakeSentry
from tests.harness import RunningBot, eventually, running_bot, running_emulator, settled
from tests.realservers import MetricSource, PrometheusServer, require_binaries

pytestmark = pytest.mark.integration

PG = os.environ.get("TOCSIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALICE = "U0ALICE01"
SENTRY_PROJECT = "web"
WAIT = 30.0  # upper bound for anything that should take a few seconds

# Traffic the MetricSource reports, per second: api answers 10% 5xx, web 1%.
REQUESTS_PER_S = {"api": 100.0, "web": 50.0}
ERROR_SHARE = {"api": 0.10, "web": 0.01}
# Cumulative share of api requests per latency bucket: p95 falls in (0.5, 1] -> 0.75 s.
BUCKETS = {"0.1": 0.5, "0.25": 0.8, "0.5": 0.9, "1": 1.0, "+Inf": 1.0}
EXPECTED_P95 = "0.75 s"
BUCKET_METRIC = "http_request_duration_seconds_bucket"

HIGH_ERROR_TITLES = ("5xx ratio by service", "p95 latency (service api)")
SENTRY_TITLE = "Top unresolved Sentry issues"  # the playbook's title of its sentry step


# --- real Prometheus over a growing MetricSource --------------------------------------------


class TrafficSource(MetricSource):
    """Counters that grow at fixed rates: every scrape sees values computed at one instant."""

    def __init__(self) -> None:
        super().__init__()
        self.started = time.monotonic()

    def render(self) -> str:
        seconds = time.monotonic() - self.started + 1.0
        for service, per_s in REQUESTS_PER_S.items():
            total = per_s * seconds
            errors = total * ERROR_SHARE[service]
            self.set("http_requests_total", errors, {"service": service, "code": "500"})
            self.set("http_requests_total", total - errors, {"service": service, "code": "200"})
        total = REQUESTS_PER_S["api"] * seconds
        for le, share in BUCKETS.items():
            self.set(BUCKET_METRIC, total * share, {"service": "api", "le": le})
        return super().render()


def _prom_query(url: str, query: str, *, ago: float = 0.0) -> list[Any]:
    """An instant query evaluated `ago` seconds in the past."""
    params = {"query": query, "time": f"{time.time() - ago:.3f}"}
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(f"{url}/api/v1/query", params=params, timeout=5)
        answer.raise_for_status()
        result: list[Any] = answer.json()["data"]["result"]
        return result


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus whose rate() and histogram_quantile() queries already have data."""
    require_binaries("prometheus")
    source = TrafficSource()
    source.start()
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), scrape_targets=[source.url])
    try:
        server.start()
        ratio = 'sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))'
        p95 = "histogram_quantile(0.95, sum by (le) (rate(" + BUCKET_METRIC + "[5m])))"
        deadline = time.monotonic() + WAIT
        while True:
            try:
                # A graph's last point is the whole second before now: have data 2 s back.
                if len(_prom_query(server.url, ratio, ago=2)) == 2 and _prom_query(
                    server.url, p95, ago=2
                ):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus has no rate data; log:\n{server.log()[-3000:]}")
            time.sleep(0.2)
        yield server.url
    finally:
        server.stop()
        source.stop()


# --- the fake Sentry, the store, the playbooks ------------------------------------------------


@pytest.fixture
async def sentry() -> AsyncIterator[FakeSentry]:
    """A fake Sentry with three recent unresolved issues in project "web"."""
    fake = FakeSentry(token="sntrys_fake_token_0123456789", org="acme")
    await fake.start()
    recent = datetime.now(UTC) - timedelta(minutes=5)
    fake.add_issue(SENTRY_PROJECT, "101", count=420, user_count=12, last_seen=recent)
    fake.add_issue(SENTRY_PROJECT, "102", count=37, user_count=3, last_seen=recent)
    fake.add_issue(SENTRY_PROJECT, "103", count=5, user_count=1, last_seen=recent)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def store_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated SQLite store for Tocsin itself."""
    target = tmp_path / "tocsin.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


def quick_sentry_playbooks(folder: Path, timeout: str = "2s") -> Path:
    """The shipped playbooks, but HighErrorRate's sentry step times out after `timeout`."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in SHIPPED_PLAYBOOKS.glob("*.yml"):
        shutil.copy(path, folder / path.name)
    (folder / "high-error-rate.yml").write_text(
        f"""\
name: HighErrorRate
match:
  labels:
    alertname: HighErrorRate
severity: sev2
auto_resolve: true
diagnostics:
  - prometheus:
      title: 5xx ratio by service
      query: |
        sum by (service) (rate(http_requests_total{{code=~"5.."}}[5m]))
          / sum by (service) (rate(http_requests_total[5m]))
      warn_above: 0.02
      fail_above: 0.05
      unit: ratio
  - prometheus:
      title: p95 latency (service ${{service}})
      query: |
        histogram_quantile(0.95,
          sum by (le) (rate(http_request_duration_seconds_bucket{{service="${{service}}"}}[5m])))
      graph: 1h
      warn_above: 0.5
      fail_above: 1.5
      unit: s
  - sentry:
      title: {SENTRY_TITLE}
      hours: 6
      limit: 5
    timeout: {timeout}
"""
    )
    return folder


def sources(
    *,
    prometheus: str | None = None,
    sentry: FakeSentry | None = None,
    supabase: bool = False,
    playbooks: Path | None = None,
) -> Callable[[Settings], None]:
    """A `tweak` for running_bot that configures the given diagnostic sources."""

    def tweak(settings: Settings) -> None:
        settings.prometheus_url = prometheus
        if sentry is not None:
            assert sentry.base_url is not None
            settings.sentry_api_url = sentry.base_url
            settings.sentry_org = sentry.org
            settings.sentry_token = SecretStr(sentry.token)
            settings.sentry_project = SENTRY_PROJECT
        if supabase:
            settings.supabase_db_url = SecretStr(PG)
        if playbooks is not None:
            settings.playbooks_dir = playbooks

    return tweak


def alert_payload(
    name: str = "HighErrorRate",
    *,
    service: str | None = "api",
    group: str = "",
    started: datetime | None = None,
) -> Any:
    """One firing alert as Alertmanager sends it, grouped by alertname and instance; it began
    firing at `started` (now by default); `service=None` leaves the service label out."""
    instance = group or f"{service or 'host'}-1"
    labels = {"alertname": name, "instance": instance}
    if service is not None:
        labels["service"] = service
    alert = make_alert(name, starts_at=_iso(started or datetime.now(UTC)), **labels)
    return make_payload(
        [alert],
        group=name,
        groupLabels={"alertname": name, "instance": instance},
        commonLabels={**labels, "severity": "critical"},
        groupKey=f'{{}}:{{alertname="{name}", instance="{instance}"}}',
    )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- reading what Slack shows -----------------------------------------------------------------


_STATUS_OF_EMOJI = {emoji: status.value for status, emoji in EMOJI.items()}


@dataclass(frozen=True)
class Posted:
    """One diagnostic result as the channel shows it, and the message that carries it."""

    title: str
    status: str
    text: str
    table: str
    message: Message
    blocks: tuple[dict[str, Any], ...] = ()

    @property
    def everything(self) -> str:
        return json.dumps(list(self.blocks))


def diagnostic_messages(emulator: SlackEmulator, channel: str) -> list[Posted]:
    """The channel's diagnostic results, oldest first. A message may carry several results,
    each a summary line, perhaps a table, and a context line."""
    found = []
    for message in emulator.state.channel_messages(channel):
        found += _results_in(message)
    return found


def _results_in(message: Message) -> list[Posted]:
    """The results of a message made of results only (summary, maybe a table, context)."""
    found: list[Posted] = []
    blocks = message.blocks or []
    start = 0
    while start < len(blocks):
        if _summary_of(blocks[start]) is None:
            return []
        end = start + 1
        if end < len(blocks) and blocks[end].get("type") == "section":
            end += 1  # the table
        if end >= len(blocks) or blocks[end].get("type") != "context":
            return []
        found.append(_posted(message, blocks[start : end + 1]))
        start = end + 1
    return found


def _summary_of(block: dict[str, Any]) -> str | None:
    summary = str(block.get("text", {}).get("text", "")) if block.get("type") == "section" else ""
    emoji, _, rest = summary.partition(" ")
    return rest if emoji in _STATUS_OF_EMOJI and rest.startswith("*") else None


def _posted(message: Message, blocks: list[dict[str, Any]]) -> Posted:
    summary = str(blocks[0]["text"]["text"])
    emoji, _, rest = summary.partition(" ")
    title, _, text = rest[1:].partition("* — ")
    context = str(blocks[-1]["elements"][0]["text"])
    status = context.split(" · ")[1]
    assert status == _STATUS_OF_EMOJI[emoji], (summary, context)
    table = str(blocks[1]["text"]["text"]) if len(blocks) == 3 else ""
    return Posted(_unescape(title), status, _unescape(text), table, message, tuple(blocks))


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def by_title(posted: list[Posted]) -> dict[str, Posted]:
    titles = [p.title for p in posted]
    assert len(set(titles)) == len(titles), titles
    return {p.title: p for p in posted}


def post_time(emulator: SlackEmulator, channel: str, ts: str) -> float:
    """When (time.monotonic) the emulator received the chat.postMessage that made `ts`."""
    return next(
        c.at
        for c in emulator.calls_to("chat.postMessage")
        if c.params.get("channel") == channel and c.response.get("ts") == ts
    )


def uploads_to(emulator: SlackEmulator, channel: str) -> list[bytes]:
    """The bytes of every file shared into `channel` by files.completeUploadExternal."""
    found = []
    for call in emulator.calls_to("files.completeUploadExternal"):
        if not call.response.get("ok") or call.params.get("channel_id") != channel:
            continue
        files = call.params["files"]
        for item in json.loads(files) if isinstance(files, str) else files:
            found.append(emulator.state.files[item["id"]].content())
    return found


@dataclass(frozen=True)
class Opened:
    id: int
    channel: str
    card_ts: str


async def open_incident(bot: RunningBot, payload: Any, incident_id: int = 1) -> Opened:
    """POST the webhook and wait for the incident's pinned card."""
    status, body = await bot.post_alerts(payload)
    assert status == 200, body

    async def pinned() -> bool:
        incident = await bot.app.services.incidents.get(incident_id)
        return incident.card_ts is not None and any(
            p.channel == incident.channel_id and p.ts == incident.card_ts
            for p in bot.emulator.state.pins
        )

    await eventually(pinned, timeout=WAIT, what="the incident's card pinned")
    incident = await bot.app.services.incidents.get(incident_id)
    assert incident.channel_id is not None and incident.card_ts is not None
    return Opened(incident_id, incident.channel_id, incident.card_ts)


async def wait_for_results(bot: RunningBot, channel: str, count: int) -> list[Posted]:
    """The channel's results once there are `count` and nothing more is on its way (the outbox
    drained, no timer due): a duplicate would be among them."""
    await eventually(
        lambda: len(diagnostic_messages(bot.emulator, channel)) >= count,
        timeout=WAIT,
        what=f"{count} diagnostic messages",
    )
    await eventually(lambda: settled(bot.url), timeout=WAIT, what="the outbox drained")
    return diagnostic_messages(bot.emulator, channel)


async def diagnostic_events(bot: RunningBot, incident_id: int) -> list[TimelineEvent]:
    events = await bot.app.services.incidents.timeline(incident_id)
    return [e for e in events if e.kind == "diagnostic"]


def event_title(event: TimelineEvent) -> str:
    """The result title of a diagnostic event ("<title>: <status> — <text>")."""
    head, _, _ = event.text.partition(" — ")
    return head.rsplit(": ", 1)[0]


def assert_png(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), data[:16]
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.format == "PNG"
        size: tuple[int, int] = image.size
    return size


# --- 1. every source healthy -------------------------------------------------------------------


async def test_healthy_sources_post_one_result_per_step_with_real_numbers(
    prometheus: str, sentry: FakeSentry, store_url: str
) -> None:
    tweak = sources(prometheus=prometheus, sentry=sentry, supabase=True)
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(store_url, emulator, emulator_url, tweak=tweak) as bot,
    ):
        incident = await open_incident(bot, alert_payload())
        posted = await wait_for_results(bot, incident.channel, 3)

        assert len(posted) == 3, [p.title for p in posted]
        results = by_title(posted)
        sentry_title = next(t for t in results if t not in HIGH_ERROR_TITLES)

        # The main signal is a graph (uploaded below) with a table of each series' numbers.
        ratio = results["5xx ratio by service"]
        assert ratio.status == "fail", ratio  # 10% is above fail_above 5%
        assert "highest last 0.1 ratio (service=api)" in ratio.text, ratio.text
        assert "graph below" in ratio.everything
        rows = [line.split() for line in ratio.table.strip("`").splitlines()]
        assert rows[0] == ["series", "last", "max"]
        assert [row[0] for row in rows[1:]] == ["service=api", "service=web"]
        assert rows[1][1:3] == ["0.1", "ratio"] and rows[2][1:3] == ["0.01", "ratio"], rows

        latency = results["p95 latency (service api)"]
        assert latency.status == "warn", latency  # 0.75 s: above warn 0.5, below fail 1.5
        assert f"last {EXPECTED_P95}" in latency.text, latency.text
        assert "graph below" in latency.everything

        issues = results[sentry_title]
        assert "Sentry" in sentry_title
        assert issues.status == "warn", issues
        assert issues.text.startswith("3 unresolved issues in web"), issues.text
        assert "WEB-101" in issues.table and "420" in issues.table
        assert sentry.calls_to(f"projects/acme/{SENTRY_PROJECT}/issues/")

        # Both graphs are uploaded into the incident channel as PNGs, each once.
        await eventually(
            lambda: len(uploads_to(emulator, incident.channel)) == 2,
            timeout=WAIT,
            what="the graphs uploaded to the incident channel",
        )
        for png in uploads_to(emulator, incident.channel):
            width, height = assert_png(png)
            assert width >= 600 and height >= 300
        stored = [f for f in emulator.state.files.values() if incident.channel in f.channels]
        assert all(f.name.endswith(".png") for f in stored)
        assert sorted(f.title for f in stored) == sorted(HIGH_ERROR_TITLES)

        # Each result is on the timeline, with its status.
        events = await diagnostic_events(bot, incident.id)
        assert len(events) == 3, events
        assert {e.actor for e in events} == {"tocsin"}
        for result in posted:
            (event,) = [e for e in events if event_title(e) == result.title]
            assert event.data["status"] == result.status
            assert event.text.startswith(f"{result.title}: {result.status} — ")

        # Nothing else went to the alerts channel.
        alerts = emulator.state.channel("alerts")
        assert alerts is not None
        assert diagnostic_messages(emulator, alerts.id) == []


async def test_sentry_step_keeps_its_playbook_title(sentry: FakeSentry, store_url: str) -> None:
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(store_url, emulator, emulator_url, tweak=sources(sentry=sentry)) as bot,
    ):
        incident = await open_incident(bot, alert_payload())
        posted = await wait_for_results(bot, incident.channel, 3)
        issues = next(p for p in posted if p.status != "error")  # Prometheus is not configured
        assert issues.text.startswith("3 unresolved issues in web"), issues
        assert issues.title == SENTRY_TITLE, issues.title


# --- 2. one source stalls ---------------------------------------------------------------------


async def test_a_stalled_sentry_holds_up_nothing_else(
    prometheus: str,
    sentry: FakeSentry,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Sentry answers nothing until the test lets it, and no timeout ends the wait first: the
    # step's is the longest a playbook may give, the client's is made as long.
    sentry.stall = True
    monkeypatch.setattr(main_sources, "SentryClient", functools.partial(SentryClient, timeout=600))
    playbooks = quick_sentry_playbooks(tmp_path / "playbooks", timeout="120s")
    tweak = sources(prometheus=prometheus, sentry=sentry, supabase=True, playbooks=playbooks)
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(store_url, emulator, emulator_url, tweak=tweak) as bot,
    ):
        # The incident (channel, card, pin) and the Prometheus results come while Sentry has
        # been asked and still says nothing.
        incident = await open_incident(bot, alert_payload())
        await eventually(
            lambda: len(diagnostic_messages(emulator, incident.channel)) >= 2,
            timeout=WAIT,
            what="the Prometheus results",
        )
        assert sentry.calls_to("issues/"), "Sentry was never asked"
        posted = diagnostic_messages(emulator, incident.channel)
        assert sorted(p.title for p in posted) == sorted(HIGH_ERROR_TITLES)
        events = await diagnostic_events(bot, incident.id)
        assert sorted(event_title(e) for e in events) == sorted(HIGH_ERROR_TITLES)
        # Below the card, as it shows in the channel.
        assert all(float(p.message.ts) > float(incident.card_ts) for p in posted)

        # Sentry gives up (503s): its error follows, and nothing is posted twice.
        await sentry.stop()
        posted = await wait_for_results(bot, incident.channel, 3)
        assert len(posted) == 3, [p.title for p in posted]
        assert {p.title for p in posted[:2]} == set(HIGH_ERROR_TITLES)
        stalled = posted[2]
        assert stalled.title == SENTRY_TITLE and stalled.status == "error", stalled


async def test_a_stalled_sentry_ends_at_its_own_timeout(
    prometheus: str, sentry: FakeSentry, store_url: str, tmp_path: Path
) -> None:
    sentry.stall = True  # until the test ends: only the step's 2 s timeout can end the step
    playbooks = quick_sentry_playbooks(tmp_path / "playbooks", timeout="2s")
    tweak = sources(prometheus=prometheus, sentry=sentry, supabase=True, playbooks=playbooks)
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(store_url, emulator, emulator_url, tweak=tweak) as bot,
    ):
        incident = await open_incident(bot, alert_payload())
        posted = await wait_for_results(bot, incident.channel, 3)

        assert len(posted) == 3, [p.title for p in posted]
        results = by_title(posted)
        stalled = results[SENTRY_TITLE]
        # The step's own timeout ended it (the Sentry client's would say "within 10s").
        assert (stalled.status, stalled.text) == ("error", "no answer within 2s"), stalled
        assert sentry.calls_to("issues/"), "Sentry was never asked"
        for title in HIGH_ERROR_TITLES:
            assert results[title].status != "error", results[title]

        events = {event_title(e): e for e in await diagnostic_events(bot, incident.id)}
        assert sorted(events) == sorted([*HIGH_ERROR_TITLES, SENTRY_TITLE])
        assert events[SENTRY_TITLE].text == f"{SENTRY_TITLE}: error — no answer within 2s"


# --- 3. nothing configured ---------------------------------------------------------------------


SECRET_TOKEN = "sntrys_never_show_me_42"  # a Sentry token without SENTRY_ORG: not configured
SECRET_KEY = "supabase-service-role-never-show-me"


async def _run_unconfigured(store_url: str) -> tuple[list[Posted], list[TimelineEvent], str]:
    def tweak(settings: Settings) -> None:
        settings.sentry_token = SecretStr(SECRET_TOKEN)
        settings.supabase_key = SecretStr(SECRET_KEY)

    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(store_url, emulator, emulator_url, tweak=tweak) as bot,
    ):
        incident = await open_incident(bot, alert_payload())
        posted = await wait_for_results(bot, incident.channel, 3)
        events = await diagnostic_events(bot, incident.id)
        everything = json.dumps([c.params for c in emulator.calls])
    return posted, events, everything


async def test_unconfigured_sources_give_one_line_errors_without_secrets(store_url: str) -> None:
    posted, events, everything = await _run_unconfigured(store_url)

    assert len(posted) == 3
    assert [p.status for p in posted] == ["error"] * 3
    texts = sorted(p.text for p in posted)
    assert texts == [
        "not configured: set PROMETHEUS_URL",
        "not configured: set PROMETHEUS_URL",
        "not configured: set SENTRY_TOKEN and SENTRY_ORG",
    ]
    assert len(events) == 3 and {e.data["status"] for e in events} == {"error"}
    for text in [p.text for p in posted] + [e.text for e in events]:
        assert "\n" not in text and "Traceback" not in text and 'File "' not in text
    assert SECRET_TOKEN not in everything and SECRET_KEY not in everything


async def test_unconfigured_step_titles_have_their_labels_filled(store_url: str) -> None:
    posted, events, _ = await _run_unconfigured(store_url)

    titles = {p.title for p in posted}
    assert "p95 latency (service api)" in titles, titles
    assert not any("${" in e.text for e in events), [e.text for e in events]


async def test_a_label_the_alert_lacks_is_said_plainly_in_the_title(store_url: str) -> None:
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(store_url, emulator, emulator_url) as bot,
    ):
        incident = await open_incident(bot, alert_payload(service=None))
        posted = await wait_for_results(bot, incident.channel, 3)
        events = await diagnostic_events(bot, incident.id)

    titles = {p.title for p in posted}
    assert "p95 latency (no service label)" in titles, titles
    assert not any("service )" in t for t in titles | {e.text for e in events}), titles


# --- 3b. the graph's window ---------------------------------------------------------------------


async def test_graphs_start_half_an_hour_before_the_alert_fired(
    prometheus: str, store_url: str
) -> None:
    started = datetime.now(UTC) - timedelta(hours=2)
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(store_url, emulator, emulator_url, tweak=sources(prometheus=prometheus)) as bot,
    ):
        incident = await open_incident(bot, alert_payload(started=started))
        results = by_title(await wait_for_results(bot, incident.channel, 3))
        await eventually(
            lambda: len(uploads_to(emulator, incident.channel)) == 2,
            timeout=WAIT,
            what="both graphs uploaded",
        )

    # Both graphs reach back to 30 min before the alert's startsAt (2 h ago): 2h30m and the
    # seconds the diagnostics took to start, longer than either step's own 1 h.
    for title in HIGH_ERROR_TITLES:
        assert re.search(r" over 2h30m(\d+s)?[:;]", results[title].text), results[title].text


# --- 4. on demand: the card's button and /diag --------------------------------------------------


async def test_run_diagnostics_button_and_diag_command(
    prometheus: str, sentry: FakeSentry, store_url: str
) -> None:
    tweak = sources(prometheus=prometheus, sentry=sentry)
    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(store_url, emulator, emulator_url, tweak=tweak) as bot,
    ):
        emulator.add_user(ALICE, "alice")
        events_url = f"{bot.url}/slack/events"
        incident = await open_incident(bot, alert_payload())
        first = await wait_for_results(bot, incident.channel, 3)
        assert len(first) == 3
        await eventually(lambda: len(uploads_to(emulator, incident.channel)) == 2, timeout=WAIT)

        reply = await emulator.send_block_action(
            events_url,
            action_id=ids.RUN_DIAGNOSTICS,
            value=str(incident.id),
            user_id=ALICE,
            channel_id=incident.channel,
            message_ts=incident.card_ts,
            block_id=ids.CARD_BLOCK_ID,
        )
        assert reply.status == 200
        again = await wait_for_results(bot, incident.channel, 6)
        assert len(again) == 6
        assert sorted(p.title for p in again[3:]) == sorted(p.title for p in first)
        await eventually(
            lambda: len(uploads_to(emulator, incident.channel)) == 4,
            timeout=WAIT,
            what="the second run's graphs uploaded",
        )
        timeline = await bot.app.services.incidents.timeline(incident.id)
        requested = [e for e in timeline if e.kind == "diagnostics_requested"]
        assert [e.actor for e in requested] == [ALICE]
        assert len([e for e in timeline if e.kind == "diagnostic"]) == 6

        # /diag in the incident channel: the result goes to the channel and the timeline.
        await emulator.send_slash_command(
            events_url, ids.DIAG_COMMAND, "prom up", user_id=ALICE, channel_id=incident.channel
        )
        posted = await wait_for_results(bot, incident.channel, 7)
        up = posted[6]
        assert up.title == "up" and up.status == "ok", up
        assert "1 series; max 1" in up.text, up.text
        assert any(
            e.kind == "diagnostic" and e.text.startswith("up: ok")
            for e in await bot.app.services.incidents.timeline(incident.id)
        )
        ack = [p for p in emulator.state.response_posts if p.effect == "ephemeral"]
        assert any("Posted 1 result here" in str(p.body.get("text")) for p in ack), ack

        # Outside an incident channel only the person who asked sees the answer.
        alerts = emulator.state.channel("alerts")
        assert alerts is not None
        before = len(emulator.state.channel_messages(alerts.id))
        known = len(emulator.state.response_posts)
        await emulator.send_slash_command(
            events_url, ids.DIAG_COMMAND, "prom up", user_id=ALICE, channel_id=alerts.id
        )
        await eventually(
            lambda: len(emulator.state.response_posts) > known,
            timeout=WAIT,
            what="the ephemeral /diag answer",
        )
        (answer,) = emulator.state.response_posts[known:]
        assert answer.effect == "ephemeral", answer
        assert "OK up" in str(answer.body.get("text")), answer.body
        assert len(emulator.state.channel_messages(alerts.id)) == before
        assert len(diagnostic_messages(emulator, incident.channel)) == 7


# --- 5. the database playbook against the real Postgres ------------------------------------------


async def test_database_playbook_against_real_postgres(prometheus: str, store_url: str) -> None:
    tweak = sources(prometheus=prometheus, supabase=True)
    # Two idle sessions of our own, so the connections check has something real to count.
    sessions = [await asyncpg.connect(PG) for _ in range(2)]
    try:
        async with (
            running_emulator() as (emulator, emulator_url),
            running_bot(store_url, emulator, emulator_url, tweak=tweak) as bot,
        ):
            payload = alert_payload("DatabaseConnectionLoss", service="db")
            incident = await open_incident(bot, payload)
            posted = await wait_for_results(bot, incident.channel, 7)
            assert len(posted) == 7, [p.title for p in posted]
            results = by_title(posted)

            connections = results["Supabase connections"]
            assert connections.status == "ok", connections
            match = re.fullmatch(r"(\d+)/(\d+) connections \((\d+)%\)", connections.text)
            assert match and int(match[1]) >= 2, connections.text
            assert "postgres" in connections.table and "idle" in connections.table, connections
            for title in ("Supabase long queries", "Supabase locks", "Supabase replication"):
                # Other people's sessions share this Postgres: a long query there may warn.
                assert results[title].status in ("ok", "warn"), results[title]
            assert results["Supabase replication"].status == "ok"

            for title in ("Supabase Auth", "Supabase REST"):
                assert results[title].status == "error", results[title]
                assert results[title].text == "not configured: set SUPABASE_URL and SUPABASE_KEY"

            # Nothing scrapes this Postgres: for this playbook no data is the outage itself.
            scrape = results["Database scrape target"]
            assert scrape.status == "fail", scrape
            assert scrape.text == "no data, which this step counts as a failure", scrape

            events = await diagnostic_events(bot, incident.id)
            assert len(events) == 7
            statuses = [e.data["status"] for e in events]
            assert statuses.count("error") == 2, statuses
            assert "postgres@" not in json.dumps([c.params for c in emulator.calls])
    finally:
        for session in sessions:
            await session.close()


# --- the card comes first -----------------------------------------------------------------------

CREATE_LATENCY = 1.0  # conversations.create answering in a second: ordinary for Slack's Tier 2


async def test_card_is_posted_before_diagnostics_when_channel_creation_is_slow(
    prometheus: str, store_url: str
) -> None:
    tweak = sources(prometheus=prometheus)  # Sentry not configured: its error is instant too
    async with (
        running_emulator(latency={"conversations.create": CREATE_LATENCY}) as (emulator, url),
        running_bot(store_url, emulator, url, tweak=tweak) as bot,
    ):
        # Three incidents at once: their channels are created one after another, so each
        # meets its own diagnostics at a different moment.
        opened = await asyncio.gather(
            *(bot.post_alerts(alert_payload(group=f"slow-{n}")) for n in range(3))
        )
        assert [status for status, _ in opened] == [200] * 3, opened
        late = {}
        for _, body in opened:
            incident = await _wait_for_card(bot, int(body["incident"]))
            posted = await wait_for_results(bot, incident.channel, 3)
            # The card is the channel's first post: every result is below it.
            first = min(float(p.message.ts) for p in posted)
            if float(incident.card_ts) > first:
                late[incident.id] = (incident.card_ts, first)
        assert late == {}, f"card posted after a result (card ts, first result ts): {late}"


async def _wait_for_card(bot: RunningBot, incident_id: int) -> Opened:
    async def pinned() -> bool:
        incident = await bot.app.services.incidents.get(incident_id)
        return incident.card_ts is not None and incident.channel_id is not None

    await eventually(pinned, timeout=WAIT, what=f"incident {incident_id}'s card")
    incident = await bot.app.services.incidents.get(incident_id)
    assert incident.channel_id is not None and incident.card_ts is not None
    return Opened(incident_id, incident.channel_id, incident.card_ts)
