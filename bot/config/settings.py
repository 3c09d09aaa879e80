"""Settings: environment variables plus an optional `tocsin.yml`, validated once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.config.digest import DigestSettings
from bot.config.people import NotifyConfig, PersonConfig, email_without_server, unknown_service
from bot.config.policies import (
    EscalationConfig,
    PermissionsConfig,
    RotationConfig,
)
from bot.config.yaml_text import line_of, load_yaml, yaml_problem
from bot.domain.durations import config_duration
from bot.errors import ConfigError

SHIPPED_PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def _env(name: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name, name.lower()))


class OnCallSettings(BaseModel):
    """Who is invited to every new incident channel, and the on-call rotations."""

    users: list[str] = Field(default_factory=list, description="Slack user ids")
    usergroup: str | None = Field(default=None, description="Slack user group id (S...)")
    rotations: list[RotationConfig] = Field(default_factory=list)


class OutboxSettings(BaseModel):
    """How the worker paces Slack Web API calls."""

    concurrency: int = Field(default=8, ge=1, le=64)
    unpaced_concurrency: int = Field(
        default=32,
        ge=1,
        le=256,
        description="jobs that call no Slack method (pages by email, push, PagerDuty) run at "
        "most this many at once, beside the Slack calls",
    )
    give_up_after: timedelta = Field(
        default=timedelta(hours=6),
        description="how long a job is retried through Slack errors and outages before it is "
        "given up (loudly)",
    )
    poll_interval: float = Field(default=1.0, gt=0)
    tier_per_minute: dict[str, int] = Field(
        default_factory=lambda: {"1": 1, "2": 20, "3": 50, "4": 100, "special": 600}
    )
    per_channel_per_second: float = Field(default=1.0, gt=0)
    card_settle: timedelta = Field(
        default=timedelta(seconds=2),
        description="how long a card waits to show a change of its alerts, so that the changes "
        "of a busy alert group are shown together by one update (0s: each at once); a change "
        "of state (acknowledged, resolved) is shown at once",
    )

    @field_validator("give_up_after", "card_settle", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return config_duration(value)


def _positive(value: Any) -> Any:
    """A duration from config that must be longer than zero."""
    duration = config_duration(value)
    if isinstance(duration, timedelta | int | float) and _seconds(duration) <= 0:
        raise ValueError("must be longer than zero")
    return duration


class StormSettings(BaseModel):
    """When new alert groups come this fast, the next ones join one storm incident."""

    model_config = ConfigDict(extra="forbid")

    new_groups: int = Field(
        default=10, ge=2, description="new alert groups within `within` that make a storm"
    )
    within: timedelta = Field(default=timedelta(minutes=2))

    _within = field_validator("within", mode="before")(lambda value: _positive(value))


class FlappingSettings(BaseModel):
    """An alert group that fires again this often is flapping: its re-fires stop paging."""

    model_config = ConfigDict(extra="forbid")

    refires: int = Field(
        default=3, ge=1, description="re-fires within `within` that make an alert group flap"
    )
    within: timedelta = Field(default=timedelta(minutes=30))

    _within = field_validator("within", mode="before")(lambda value: _positive(value))


class Settings(BaseSettings):
    """Every setting Tocsin reads; see DESIGN.md for the environment variables."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="forbid")

    slack_bot_token: SecretStr | None = _env("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _env("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _env("SLACK_APP_TOKEN")
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        validation_alias=AliasChoices("SLACK_API_URL", "slack_api_url"),
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///./tocsin.db",
        validation_alias=AliasChoices("TOCSIN_DATABASE_URL", "database_url"),
    )
    database_lock_wait: float = Field(
        default=8.0,
        gt=0,
        description="seconds a write waits for another process's SQLite lock before a 503",
    )
    playbooks_dir: Path = Field(
        default=SHIPPED_PLAYBOOKS,
        validation_alias=AliasChoices("TOCSIN_PLAYBOOKS_DIR", "playbooks_dir"),
    )
    webhook_token: SecretStr | None = _env("TOCSIN_WEBHOOK_TOKEN")
    prometheus_url: str | None = _env("PROMETHEUS_URL")
    alertmanager_url: str | None = _env("ALERTMANAGER_URL")
    sentry_api_url: str = Field(
        default="https://sentry.io/api/0/",
        validation_alias=AliasChoices("SENTRY_API_URL", "sentry_api_url"),
    )
    sentry_org: str | None = _env("SENTRY_ORG")
    sentry_project: str | None = _env("SENTRY_PROJECT")
    sentry_token: SecretStr | None = _env("SENTRY_TOKEN")
    sentry_webhook_secret: SecretStr | None = _env("SENTRY_WEBHOOK_SECRET")
    supabase_db_url: SecretStr | None = _env("SUPABASE_DB_URL")
    supabase_url: str | None = _env("SUPABASE_URL")
    supabase_key: SecretStr | None = _env("SUPABASE_KEY")
    sentry_dsn: SecretStr | None = _env("SENTRY_DSN")

    alerts_channel: str | None = Field(default=None, description="channel id or #name")
    oncall: OnCallSettings = Field(default_factory=OnCallSettings)
    reopen_window: timedelta = timedelta(minutes=30)
    auto_resolve: bool = Field(default=False, description="resolve when every alert resolves")
    webhook_max_bytes: int = Field(default=1_048_576, ge=1024)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    permissions: PermissionsConfig = Field(default_factory=PermissionsConfig)
    silence_duration: timedelta = timedelta(hours=1)
    silence_check_every: timedelta = Field(
        default=timedelta(seconds=30),
        description="while silenced, how often Alertmanager is asked which alerts still fire",
    )
    archive_after: timedelta | None = Field(
        default=timedelta(days=7),
        validation_alias=AliasChoices("TOCSIN_ARCHIVE_AFTER", "archive_after"),
        description="archive an incident's channel this long after it is resolved (`off`: never)",
    )
    drill_resolve_after: timedelta | None = Field(
        default=timedelta(minutes=30),
        validation_alias=AliasChoices("TOCSIN_DRILL_RESOLVE_AFTER", "drill_resolve_after"),
        description="resolve a drill left open this long after it opened (`off`: never)",
    )
    digest: DigestSettings = Field(default_factory=DigestSettings)
    storm: StormSettings | None = Field(
        default_factory=StormSettings,
        description="fold the new alert groups of a storm into one incident (`off`: never)",
    )
    flapping: FlappingSettings | None = Field(
        default_factory=FlappingSettings,
        description="quiet the re-fires of a flapping alert group (`off`: never)",
    )
    people: dict[str, PersonConfig] = Field(
        default_factory=dict,
        description="by Slack user id: contact methods beyond Slack, and notification rules",
    )
    notify: NotifyConfig = Field(default_factory=NotifyConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Values arrive only from `load_settings`, which merges the file and the environment."""
        return (init_settings,)

    @field_validator("reopen_window", "silence_duration", "silence_check_every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return config_duration(value)

    @field_validator("archive_after", "drill_resolve_after", mode="before")
    @classmethod
    def _duration_or_off(cls, value: Any) -> Any:
        # YAML reads a bare `off` as false.
        if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
            return None
        if value is None or value is True:
            raise ValueError("must be a duration such as 7d or 30m, or off")
        duration = config_duration(value)
        if isinstance(duration, timedelta | int | float) and _seconds(duration) <= 0:
            raise ValueError("must be longer than zero (or off)")
        return duration

    @field_validator("storm", "flapping", mode="before")
    @classmethod
    def _rule_or_off(cls, value: Any) -> Any:
        # YAML reads a bare `off` as false.
        if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
            return None
        if value is None or value is True:
            raise ValueError("must be a mapping of its settings, or off")
        return value

    @model_validator(mode="after")
    def _email_has_a_server(self) -> Settings:
        where = email_without_server(self.people, self.notify)
        if where is not None:
            raise ValueError(f"{where} is an email contact: add notify.email (the SMTP server)")
        for policy in self.escalation.policies:
            named = [t for level in policy.levels for t in level.targets] + policy.last_resort
            for target in named:
                kind, _, name = target.partition(":")
                problem = unknown_service(self.notify, kind, name.strip())
                if problem:
                    raise ValueError(f"escalation policy {policy.name}: {problem}")
        return self

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value.startswith(("postgres://", "postgresql://")):
            raise ValueError("use the async driver: postgresql+asyncpg://...")
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @property
    def sandbox(self) -> bool:
        """True when no bot token is set: Tocsin runs against its built-in workspace."""
        return self.slack_bot_token is None


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _setting_name(loc: tuple[int | str, ...]) -> str:
    field_name = str(loc[0]) if loc else "?"
    field = Settings.model_fields.get(field_name)
    alias = field.validation_alias if field else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        field_name = alias.choices[0]
    rest = ".".join(str(p) for p in loc[1:])
    return f"{field_name}.{rest}" if rest else field_name


@dataclass(frozen=True)
class LoadedSettings:
    """Settings with where each came from: `origins` maps a field to "env NAME",
    "file PATH" or "default"."""

    settings: Settings
    origins: Mapping[str, str]
    path: Path | None  # the tocsin.yml read, if any


def _read_yaml(path: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
        data = load_yaml(text)
        node = yaml.compose(text)
    except OSError as exc:
        raise ConfigError(f"TOCSIN_CONFIG: cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        line, reason = yaml_problem(exc)
        raise ConfigError(f"TOCSIN_CONFIG: {path}:{line}: {reason}") from exc
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        raise ConfigError(f"TOCSIN_CONFIG: {path} must hold a mapping of settings")
    return data, node


def _env_name(name: str) -> str | None:
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return None


def _from_environment(env: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in Settings.model_fields:
        env_name = _env_name(name)
        value = env.get(env_name) if env_name else None
        if value is not None and value != "":
            values[name] = value
    return values


def _field_of(key: str) -> str | None:
    """The field a key of tocsin.yml sets (its name or one of its aliases)."""
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else ()
        if key == name or key in choices:
            return name
    return None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment and tocsin.yml, or raise ConfigError with one line."""
    return load_config(environ).settings


def load_config(environ: Mapping[str, str] | None = None) -> LoadedSettings:
    """Settings from the environment (which wins) and tocsin.yml, with each one's origin; or
    ConfigError in one line: the variable, or the file and line, and what is wrong."""
    env = os.environ if environ is None else environ
    explicit = env.get("TOCSIN_CONFIG")
    path = Path(explicit) if explicit else Path("tocsin.yml")
    if explicit and not path.is_file():
        raise ConfigError(f"TOCSIN_CONFIG: no such file {path}")
    file_values, node = _read_yaml(path) if path.is_file() else ({}, None)
    from_env = _from_environment(env)
    try:
        settings = Settings(**{**file_values, **from_env})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc, message = first["loc"], str(first["msg"]).removeprefix("Value error, ")
        field = _field_of(str(loc[0])) if loc else None
        if (field is not None and field in from_env) or not loc or str(loc[0]) not in file_values:
            raise ConfigError(f"{_setting_name(loc)}: {message}") from None
        where = ".".join(str(p) for p in loc)
        raise ConfigError(
            f"TOCSIN_CONFIG: {path}:{line_of(node, loc)}: {where}: {message}"
        ) from None
    if settings.slack_bot_token is not None and settings.slack_signing_secret is None:
        raise ConfigError("SLACK_SIGNING_SECRET: required when SLACK_BOT_TOKEN is set")
    if settings.archive_after is not None and settings.archive_after <= settings.reopen_window:
        # An alert reopens its incident up to reopen_window after the resolve: into its channel.
        raise ConfigError(
            f"TOCSIN_ARCHIVE_AFTER: must be longer than reopen_window "
            f"({settings.reopen_window}), or an alert could reopen an incident whose channel "
            "is archived"
        )
    origins: dict[str, str] = {}
    for name in Settings.model_fields:
        if name in from_env:
            origins[name] = f"env {_env_name(name)}"
        elif any(_field_of(key) == name for key in file_values):
            origins[name] = f"file {path}"
        else:
            origins[name] = "default"
    return LoadedSettings(settings, origins, path if file_values or node else None)
