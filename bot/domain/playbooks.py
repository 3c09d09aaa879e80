"""Playbooks: what to do for matching incidents, and which playbook matches."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from bot.domain.diagnostics import DiagnosticResult, Status
from bot.domain.incidents import Severity

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


# The fixed Supabase checks: those that ask Postgres, those that ask Supabase's HTTP services.
SUPABASE_SQL_CHECKS: tuple[str, ...] = (
    "connections",
    "long_queries",
    "locks",
    "size",
    "cache_hit",
    "replication",
)
SUPABASE_HTTP_CHECKS: tuple[str, ...] = ("rest", "auth")
SUPABASE_CHECKS = SUPABASE_SQL_CHECKS + SUPABASE_HTTP_CHECKS

# The title of each fixed Supabase check, unless its playbook step names one.
SUPABASE_TITLES: dict[str, str] = {
    "connections": "Supabase connections",
    "long_queries": "Supabase long queries",
    "locks": "Supabase locks",
    "size": "Supabase database size",
    "cache_hit": "Supabase cache hit rate",
    "replication": "Supabase replication",
    "rest": "Supabase REST",
    "auth": "Supabase Auth",
}


@dataclass(frozen=True)
class PrometheusCheck:
    """A PromQL query: a table now, or a graph over `graph` before the incident."""

    title: str
    query: str
    graph: timedelta | None = None
    warn_above: float | None = None
    fail_above: float | None = None
    unit: str = ""
    top: int = 10
    no_data: Status = Status.OK  # what an answer with no series means (for some, the outage)


_NO_DATA_MEANS = {Status.WARN: "a warning", Status.FAIL: "a failure"}


def judge_no_data(result: DiagnosticResult, means: Status) -> DiagnosticResult:
    """A result with no data graded as its step says no data should be."""
    if not result.no_data or means is Status.OK:
        return result
    text = f"{result.text}, which this step counts as {_NO_DATA_MEANS.get(means, means.value)}"
    return replace(result, status=means, text=text)


@dataclass(frozen=True)
class SentryCheck:
    """The top unresolved Sentry issues of a project."""

    title: str
    project: str | None = None
    hours: int = 24
    limit: int = 5


@dataclass(frozen=True)
class SupabaseCheck:
    """One of the fixed, read-only Supabase checks."""

    title: str
    check: str


Check = PrometheusCheck | SentryCheck | SupabaseCheck


@dataclass(frozen=True)
class Step:
    """A diagnostic step and its own timeout."""

    check: Check
    timeout: timedelta = timedelta(seconds=10)


@dataclass(frozen=True)
class Playbook:
    """What to do for incidents whose alert labels (or Sentry project) match."""

    name: str
    match_labels: Mapping[str, str] = field(default_factory=dict)
    sentry_project: str | None = None
    severity: Severity | None = None
    escalation: str | None = None
    runbook: str | None = None
    auto_resolve: bool | None = None
    steps: Sequence[Step] = ()

    @property
    def is_default(self) -> bool:
        """A playbook that matches everything."""
        return not self.match_labels and self.sentry_project is None

    def matches(self, labels: Mapping[str, str], source: str) -> bool:
        """True when every match label equals the incident's (and the Sentry project fits)."""
        if self.sentry_project is not None:
            return source == "sentry" and labels.get("project") == self.sentry_project
        return all(labels.get(k) == v for k, v in self.match_labels.items())


def choose_playbook(
    playbooks: Sequence[Playbook], labels: Mapping[str, str], source: str
) -> Playbook | None:
    """The most specific matching playbook; a default one when nothing else matches."""
    specific = [p for p in playbooks if not p.is_default and p.matches(labels, source)]
    if specific:
        return max(specific, key=lambda p: len(p.match_labels) + (p.sentry_project is not None))
    return next((p for p in playbooks if p.is_default), None)


def fill_labels(text: str, labels: Mapping[str, str]) -> str:
    """Replace `${label}` with the incident's label value (quotes and backslashes escaped)."""

    def value(match: re.Match[str]) -> str:
        raw = labels.get(match.group(1), "")
        return raw.replace("\\", "\\\\").replace('"', '\\"')

    return _PLACEHOLDER.sub(value, text)
