"""tocsin.yml sections for escalation, on-call rotations and permissions, as domain values."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.domain.durations import config_duration
from bot.domain.escalation import Level, Policy, Target, TargetKind
from bot.domain.oncall import Layer, Rotation

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_target(text: str) -> Target:
    """`user:U123`, `usergroup:S123`, `rotation:primary`, `pagerduty:payments` (a paging
    service by its name in notify:); a bare U.../S... id is a user/group."""
    kind, sep, ref = text.partition(":")
    if sep and kind in TargetKind.__members__.values():
        return Target(TargetKind(kind), ref.strip())
    if text.startswith(("U", "W")):
        return Target(TargetKind.USER, text)
    if text.startswith("S"):
        return Target(TargetKind.USERGROUP, text)
    raise ValueError(
        f"target {text!r}: write user:U…, usergroup:S…, rotation:NAME, pagerduty:NAME, "
        "opsgenie:NAME or webhook:NAME"
    )


def _valid_targets(value: list[str]) -> list[str]:
    """Targets that parse (`parse_target` says what is wrong with one that does not)."""
    for text in value:
        parse_target(text)
    return value


class LevelConfig(BaseModel):
    """One escalation level."""

    model_config = ConfigDict(extra="forbid")
    targets: list[str] = Field(min_length=1)
    timeout: timedelta = timedelta(minutes=5)

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return config_duration(value)

    _targets = field_validator("targets")(classmethod(lambda cls, v: _valid_targets(v)))


class PolicyConfig(BaseModel):
    """An escalation policy."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    levels: list[LevelConfig] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10)
    match: dict[str, str] = Field(default_factory=dict)
    last_resort: list[str] = Field(
        default_factory=list,
        description="paged when the last level goes unacknowledged (default: oncall.usergroup, "
        "else oncall.users, else everyone in the incident channel)",
    )

    _targets = field_validator("last_resort")(classmethod(lambda cls, v: _valid_targets(v)))

    def to_domain(self) -> Policy:
        """The domain policy."""
        return Policy(
            name=self.name,
            levels=tuple(
                Level(tuple(parse_target(t) for t in lv.targets), lv.timeout) for lv in self.levels
            ),
            repeat=self.repeat,
            match=dict(self.match),
            last_resort=tuple(parse_target(t) for t in self.last_resort),
        )


class EscalationConfig(BaseModel):
    """Escalation policies and which applies when nothing chooses one."""

    model_config = ConfigDict(extra="forbid")
    default: str | None = None
    policies: list[PolicyConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _default_exists(self) -> EscalationConfig:
        names = [p.name for p in self.policies]
        if len(names) != len(set(names)):
            raise ValueError("policy names must be unique")
        if self.default and self.default not in names:
            raise ValueError(f"default policy {self.default!r} is not defined")
        return self


class LayerConfig(BaseModel):
    """One rotation layer: `handoff: monday 09:00` (weekly) or `handoff: 09:00` with period_days."""

    model_config = ConfigDict(extra="forbid")
    members: list[str] = Field(min_length=1)
    handoff: str = "monday 09:00"
    start: date
    period_days: int = Field(default=7, ge=1)
    hours: tuple[time, time] | None = None
    weekdays: list[str] | None = None

    def to_domain(self) -> Layer:
        """The domain layer."""
        day, _, at = self.handoff.strip().lower().rpartition(" ")
        weekday = WEEKDAYS.index(day) if day else 0
        return Layer(
            members=tuple(self.members),
            handoff_weekday=weekday,
            handoff_time=time.fromisoformat(at),
            start=self.start,
            period_days=self.period_days,
            restrict_hours=self.hours,
            restrict_weekdays=tuple(WEEKDAYS.index(d.lower()) for d in self.weekdays)
            if self.weekdays
            else None,
        )

    @model_validator(mode="after")
    def _valid(self) -> LayerConfig:
        day, _, at = self.handoff.strip().lower().rpartition(" ")
        if day and day not in WEEKDAYS:
            raise ValueError(f"handoff {self.handoff!r}: day must be one of {', '.join(WEEKDAYS)}")
        try:
            time.fromisoformat(at)
        except ValueError:
            raise ValueError(f"handoff {self.handoff!r}: time must be HH:MM") from None
        for d in self.weekdays or []:
            if d.lower() not in WEEKDAYS:
                raise ValueError(f"weekday {d!r} is not a day of the week")
        return self


class RotationConfig(BaseModel):
    """An on-call rotation."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    timezone: str = "UTC"
    layers: list[LayerConfig] = Field(min_length=1)

    def to_domain(self) -> Rotation:
        """The domain rotation (checks the time zone)."""
        return Rotation(self.name, self.timezone, tuple(layer.to_domain() for layer in self.layers))

    @model_validator(mode="after")
    def _valid(self) -> RotationConfig:
        self.to_domain()
        return self


class PermissionsConfig(BaseModel):
    """Who may resolve, escalate, silence: user ids (U…) and user groups (S…); empty = anyone."""

    model_config = ConfigDict(extra="forbid")
    resolve: list[str] = Field(default_factory=list)
    escalate: list[str] = Field(default_factory=list)
    silence: list[str] = Field(default_factory=list)
