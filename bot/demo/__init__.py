"""Demo sources: what the sandbox shows when no Prometheus, Sentry or Supabase is configured.

Look-alike servers of Prometheus and Sentry, and of Supabase's HTTP APIs, mounted in the
sandbox's own web application under `/sandbox/demo/`; the real clients call them unchanged,
and every result they give is marked demo data (`labelled`). The series follow the incidents
Tocsin holds (`episodes`, `world`): a HighErrorRate drill raises the 5xx share of its service.

- `world`: the demo system as series over time; `promql`: the queries it answers;
- `prometheus`, `sentry`, `supabase`: the servers (and the demo database's answers);
- `episodes`: the incidents of the store as episodes; `labelled`: the demo data mark.

Never built with a real Slack token, nor for a source that is configured (main decides).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bot.demo.episodes import StoredEpisodes
from bot.demo.labelled import DemoErrors, DemoHealth, DemoMetrics
from bot.demo.prometheus import prometheus_app
from bot.demo.sentry import ORG, PROJECT, sentry_app
from bot.demo.supabase import KEY, DemoDatabase, supabase_app
from bot.ports import Clock
from integrations.prometheus import PrometheusDiagnostics
from integrations.sentry import SentryClient
from integrations.supabase import SupabaseDiagnostics

__all__ = ["PATH", "PROJECT", "DemoSources", "StoredEpisodes"]

PATH = "/sandbox/demo"
TOKEN = "demo-token"  # noqa: S105 - the demo Sentry takes any token


@dataclass
class DemoSources:
    """Builds the demo sources asked for, each served under `base_url` once `mount`ed."""

    base_url: str  # this Tocsin's public URL
    episodes: StoredEpisodes
    clock: Clock
    apps: dict[str, web.Application] = field(default_factory=dict)

    def _url(self, name: str) -> str:
        return f"{self.base_url.rstrip('/')}{PATH}/{name}"

    def metrics(self) -> DemoMetrics:
        """Prometheus: the real client against the demo Prometheus."""
        self.apps["prometheus"] = prometheus_app(self.episodes, self.clock.now)
        client = PrometheusDiagnostics(self._url("prometheus"))
        return DemoMetrics(client, client)

    def errors(self, http: aiohttp.ClientSession) -> DemoErrors:
        """Sentry: the real client against the demo Sentry."""
        self.apps["sentry"] = sentry_app(self.episodes, self.clock.now)
        api = f"{self._url('sentry')}/api/0/"
        client = SentryClient(http, api_url=api, org=ORG, token=TOKEN, clock=self.clock)
        return DemoErrors(client)

    def database(self, http: aiohttp.ClientSession) -> DemoHealth:
        """Supabase: the real client's HTTP probes against the demo APIs, demo Postgres rows."""
        self.apps["supabase"] = supabase_app()
        url = self._url("supabase")
        probes = SupabaseDiagnostics(db_url=None, rest_url=url, key=KEY, session=http)
        database = DemoDatabase(probes, self.episodes, self.clock.now)
        return DemoHealth(database, database)

    @property
    def running(self) -> list[str]:
        """The sources on demo data, by name."""
        return sorted(self.apps)

    def mount(self, app: web.Application) -> None:
        """Serve the demo sources built so far from the sandbox's web application."""
        for name, sub in self.apps.items():
            app.add_subapp(f"{PATH}/{name}", sub)
