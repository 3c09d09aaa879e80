"""Playbooks: what to do for matching incidents, and which playbook matches."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.domain.diagnostics import DiagnosticResult, Status
from bot.domain.incidents import Severity

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# In a title: a parenthesised part that holds a placeholder ("(service ${service})"), or a
# placeholder on its own.
_TITLE_PART = re.compile(
    r"\((?P<aside>[^()]*\$\{[A-Za-z_][A-Za-z0-9_]*\}[^()]*)\)"
    r"|\$\{(?P<bare>[A-Za-z_][A-Za-z0-9_]*)\}"
)
# How far before its alerts began a graph of an incident starts, so the change shows.
GRAPH_LEAD = timedelta(minutes=30)


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


def fill_title(text: str, labels: Mapping[str, str]) -> str:
    """A title with `${label}` replaced; a label the incident lacks reads "(no <label> label)",
    in place of the parenthesised part that held it: "p95 latency (service ${service})"
    becomes "p95 latency (no service label)", never "p95 latency (service )"."""

    def missing(names: Sequence[str]) -> str:
        absent = [n for n in dict.fromkeys(names) if not labels.get(n)]
        return f"(no {', '.join(absent)} label{'s' if len(absent) > 1 else ''})"

    def one(match: re.Match[str]) -> str:
        inner = match.group("aside")
        if inner is None:
            return labels.get(match.group("bare")) or missing([match.group("bare")])
        names = _PLACEHOLDER.findall(inner)
        if not all(labels.get(n) for n in names):
            return missing(names)
        return f"({_PLACEHOLDER.sub(lambda m: labels[m.group(1)], inner)})"

    filled = _TITLE_PART.sub(one, text)  # one pass: a label's value is never expanded again
    return " ".join(filled.split())


def graph_start(
    end: datetime, span: timedelta, started: datetime | None, lead: timedelta = GRAPH_LEAD
) -> datetime:
    """Where a graph ending at `end` starts: `span` back, or `lead` before the alerts began
    when that is earlier, so the graph shows the time before the problem too."""
    start = end - span
    return start if started is None else min(start, started - lead)
