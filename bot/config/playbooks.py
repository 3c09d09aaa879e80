"""Playbook files: pydantic schema, loading with line numbers, and `tocsin playbooks check`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.config.yaml_text import line_of, load_yaml, yaml_problem
from bot.domain.diagnostics import Status
from bot.domain.durations import config_duration
from bot.domain.incidents import Severity
from bot.domain.playbooks import (
    SUPABASE_CHECKS,
    SUPABASE_TITLES,
    Check,
    Playbook,
    PrometheusCheck,
    SentryCheck,
    Step,
    SupabaseCheck,
)


def _duration(value: Any) -> Any:
    return config_duration(value)


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
    no_data: Literal["ok", "warn", "fail"] = Field(
        default="ok", description="what an answer with no series means"
    )
    _dur = field_validator("graph", mode="before")(classmethod(lambda cls, v: _duration(v)))


class SentrySpec(_Strict):
    title: str = Field(default="Top Sentry issues", min_length=1, max_length=150)
    project: str | None = None
    hours: int = Field(default=24, ge=1, le=24 * 14)
    limit: int = Field(default=5, ge=1, le=25)


class SupabaseSpec(_Strict):
    title: str | None = None
    check: str

    @field_validator("check")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SUPABASE_CHECKS:
            raise ValueError(f"unknown check {value!r}; one of: {', '.join(SUPABASE_CHECKS)}")
        return value


class StepSpec(_Strict):
    """Exactly one of prometheus / sentry / supabase, and an optional timeout."""

    prometheus: PrometheusSpec | None = None
    sentry: SentrySpec | None = None
    supabase: SupabaseSpec | None = None
    timeout: timedelta = timedelta(seconds=10)
    _dur = field_validator("timeout", mode="before")(classmethod(lambda cls, v: _duration(v)))

    @field_validator("timeout")
    @classmethod
    def _timeout_in_range(cls, value: timedelta) -> timedelta:
        # A field validator, not the model one: the error's loc (and so its line) is `timeout:`.
        if not timedelta(seconds=1) <= value <= timedelta(seconds=120):
            raise ValueError("timeout must be between 1s and 120s")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> StepSpec:
        given = [k for k in ("prometheus", "sentry", "supabase") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a step needs exactly one of: prometheus, sentry, supabase")
        return self

    def to_domain(self) -> Step:
        """The domain step."""
        check: Check
        if self.prometheus is not None:
            p = self.prometheus
            check = PrometheusCheck(
                p.title,
                p.query,
                p.graph,
                p.warn_above,
                p.fail_above,
                p.unit,
                p.top,
                no_data=Status(p.no_data),
            )
        elif self.sentry is not None:
            s = self.sentry
            check = SentryCheck(s.title, s.project, s.hours, s.limit)
        else:
            assert self.supabase is not None
            check = SupabaseCheck(
                self.supabase.title
                or SUPABASE_TITLES.get(self.supabase.check, self.supabase.check),
                self.supabase.check,
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


def load_file(path: Path) -> tuple[Playbook | None, list[PlaybookProblem]]:
    """Load one playbook file, or say precisely what is wrong with it."""
    playbook, problems, _ = _load(path)
    return playbook, problems


def _load(path: Path) -> tuple[Playbook | None, list[PlaybookProblem], yaml.Node | None]:
    """The playbook, its problems, and the YAML node tree that gives their lines."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        return None, [PlaybookProblem(path, line, f"invalid YAML: {problem}")], None
    except OSError as exc:
        return None, [PlaybookProblem(path, 1, f"cannot read: {exc.strerror}")], None
    if not isinstance(data, dict):
        reason = "a playbook must be a mapping (name, match, ...)"
        return None, [PlaybookProblem(path, 1, reason)], node
    try:
        return PlaybookSpec.model_validate(data).to_domain(), [], node
    except ValidationError as exc:
        problems = [
            PlaybookProblem(path, line_of(node, err["loc"]), _reason(err)) for err in exc.errors()
        ]
        return None, problems, node


def _reason(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def load_dir(folder: Path) -> tuple[list[Playbook], list[PlaybookProblem]]:
    """Every playbook in a folder (*.yml, *.yaml, sorted), and every problem found."""
    if not folder.is_dir():
        return [], [PlaybookProblem(folder, 0, "no such folder")]
    playbooks: list[Playbook] = []
    problems: list[PlaybookProblem] = []
    files: dict[str, Path] = {}  # the file of each playbook name loaded so far
    default: str | None = None
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        playbook, found, node = _load(path)
        problems += found
        if playbook is None:
            continue
        clash = _clash(playbook, files, default)
        if clash is not None:
            # Blame the later file (sorted order), at its `name:` line.
            problems.append(PlaybookProblem(path, line_of(node, ("name",)), clash))
            continue
        files[playbook.name] = path
        if playbook.is_default:
            default = playbook.name
        playbooks.append(playbook)
    return playbooks, problems


def _clash(playbook: Playbook, files: dict[str, Path], default: str | None) -> str | None:
    """Why a valid playbook cannot join those already loaded, or None when it can."""
    name = playbook.name
    if name in files:
        return f"name: {name!r} is also used by {files[name].name}"
    if playbook.is_default and default is not None:
        return (
            f"name: {name!r} is a second default playbook (no match labels or sentry_project); "
            f"{default!r} in {files[default].name} is the first"
        )
    return None
