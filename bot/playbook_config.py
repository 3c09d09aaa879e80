"""Playbook files: pydantic schema, loading with line numbers, and `tocsin playbooks check`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.domain.incidents import Severity
from bot.domain.playbooks import (
    Check,
    Playbook,
    PrometheusCheck,
    SentryCheck,
    Step,
    SupabaseCheck,
)

SUPABASE_CHECKS = (
    "connections",
    "long_queries",
    "locks",
    "size",
    "cache_hit",
    "replication",
    "rest",
    "auth",
)


def _duration(value: Any) -> Any:
    from bot.config import parse_duration

    return parse_duration(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrometheusSpec(_Strict):
    title: str = Field(min_length=1, max_length=150)
    query: str = Field(min_length=1)
    graph: timedelta | None = None
    warn_above: float | None = None
    fail_above: float | None = None
    unit: str = ""
    top: int = Field(default=10, ge=1, le=50)
    _dur = field_validator("graph", mode="before")(classmethod(lambda cls, v: _duration(v)))


class SentrySpec(_Strict):
    title: str = Field(default="Top Sentry issues", min_length=1, max_length=150)
    project: str | None = None
    hours: int = Field(default=24, ge=1, le=24 * 14)
    limit: int = Field(default=5, ge=1, le=25)


class SupabaseSpec(_Strict):
    title: str | None = None
    check: Literal[
        "connections", "long_queries", "locks", "size", "cache_hit", "replication", "rest", "auth"
    ]


class StepSpec(_Strict):
    """Exactly one of prometheus / sentry / supabase, and an optional timeout."""

    prometheus: PrometheusSpec | None = None
    sentry: SentrySpec | None = None
    supabase: SupabaseSpec | None = None
    timeout: timedelta = timedelta(seconds=10)
    _dur = field_validator("timeout", mode="before")(classmethod(lambda cls, v: _duration(v)))

    @model_validator(mode="after")
    def _exactly_one(self) -> StepSpec:
        given = [k for k in ("prometheus", "sentry", "supabase") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a step needs exactly one of: prometheus, sentry, supabase")
        if not timedelta(seconds=1) <= self.timeout <= timedelta(seconds=120):
            raise ValueError("timeout must be between 1s and 120s")
        return self

    def to_domain(self) -> Step:
        """The domain step."""
        check: Check
        if self.prometheus is not None:
            p = self.prometheus
            check = PrometheusCheck(
                p.title, p.query, p.graph, p.warn_above, p.fail_above, p.unit, p.top
            )
        elif self.sentry is not None:
            s = self.sentry
            check = SentryCheck(s.title, s.project, s.hours, s.limit)
        else:
            assert self.supabase is not None
            check = SupabaseCheck(
                self.supabase.title or f"Supabase {self.supabase.check}", self.supabase.check
            )
        return Step(check=check, timeout=self.timeout)


class MatchSpec(_Strict):
    labels: dict[str, str] = Field(default_factory=dict)
    sentry_project: str | None = None


class PlaybookSpec(_Strict):
    """One playbook file."""

    name: str = Field(min_length=1, max_length=100)
    match: MatchSpec = Field(default_factory=MatchSpec)
    severity: Severity | None = None
    escalation: str | None = None
    runbook: str | None = Field(default=None, pattern=r"^https?://")
    auto_resolve: bool | None = None
    diagnostics: list[StepSpec] = Field(default_factory=list, max_length=20)

    def to_domain(self) -> Playbook:
        """The domain playbook."""
        return Playbook(
            name=self.name,
            match_labels=dict(self.match.labels),
            sentry_project=self.match.sentry_project,
            severity=self.severity,
            escalation=self.escalation,
            runbook=self.runbook,
            auto_resolve=self.auto_resolve,
            steps=tuple(s.to_domain() for s in self.diagnostics),
        )


@dataclass(frozen=True)
class PlaybookProblem:
    """One error in a playbook file."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the YAML node at a pydantic error location (the nearest parent)."""
    line = (node.start_mark.line + 1) if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def load_file(path: Path) -> tuple[Playbook | None, list[PlaybookProblem]]:
    """Load one playbook file, or say precisely what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        return None, [PlaybookProblem(path, line, f"invalid YAML: {getattr(exc, 'problem', exc)}")]
    except OSError as exc:
        return None, [PlaybookProblem(path, 1, f"cannot read: {exc.strerror}")]
    if not isinstance(data, dict):
        return None, [PlaybookProblem(path, 1, "a playbook must be a mapping (name, match, ...)")]
    try:
        return PlaybookSpec.model_validate(data).to_domain(), []
    except ValidationError as exc:
        return None, [
            PlaybookProblem(path, _line_of(node, err["loc"]), _reason(err)) for err in exc.errors()
        ]


def _reason(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def load_dir(folder: Path) -> tuple[list[Playbook], list[PlaybookProblem]]:
    """Every playbook in a folder (*.yml, *.yaml, sorted), and every problem found."""
    playbooks: list[Playbook] = []
    problems: list[PlaybookProblem] = []
    if not folder.is_dir():
        return [], [PlaybookProblem(folder, 0, "no such folder")]
    seen: dict[str, Path] = {}
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        playbook, found = load_file(path)
        problems += found
        if playbook is None:
            continue
        if playbook.name in seen:
            problems.append(
                PlaybookProblem(
                    path, 1, f"name: {playbook.name!r} is also used by {seen[playbook.name].name}"
                )
            )
            continue
        seen[playbook.name] = path
        playbooks.append(playbook)
    defaults = [p.name for p in playbooks if p.is_default]
    if len(defaults) > 1:
        problems.append(
            PlaybookProblem(folder, 0, f"more than one default playbook: {', '.join(defaults)}")
        )
    return playbooks, problems
