"""The daily digest in tocsin.yml: KPI definitions and digests (time, zone, channels)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.config.yaml_text import load_yaml
from bot.domain.digest_schedule import ScheduledDigest
from bot.domain.kpi import INCIDENT_STATS, Good, KpiDef, Unit, parse_amount

SHIPPED_KPIS = Path(__file__).resolve().parents[2] / "playbooks" / "digest" / "kpis.yml"
_SQL_START = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class KpiConfig(BaseModel):
    """One KPI: where its daily value comes from, how to show it, and when to worry."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)
    source: Literal["prometheus", "supabase", "incidents"]
    query: str | None = Field(default=None, description="PromQL giving the day's value")
    sql: str | None = Field(default=None, description="one SELECT; :start and :end bound")
    stat: str | None = Field(default=None, description="opened, resolved, mtta, mttr, ...")
    unit: Unit = Unit.COUNT
    good: Good = Good.UP
    warn: float | str | None = None
    fail: float | str | None = None
    chart: bool = Field(default=False, description="draw its 7-day trend on the chart")

    @model_validator(mode="after")
    def _one_source(self) -> KpiConfig:
        wanted = {"prometheus": "query", "supabase": "sql", "incidents": "stat"}[self.source]
        given = [f for f in ("query", "sql", "stat") if getattr(self, f)]
        if given != [wanted]:
            raise ValueError(f"a {self.source} KPI takes `{wanted}` (and only that)")
        if self.sql is not None and not _single_select(self.sql):
            raise ValueError("sql must be a single SELECT (or WITH ... SELECT) statement")
        if self.stat is not None and self.stat not in INCIDENT_STATS:
            raise ValueError(f"stat must be one of {', '.join(INCIDENT_STATS)}")
        for name in ("warn", "fail"):
            raw = getattr(self, name)
            if raw is not None:
                parse_amount(raw, self.unit)  # ValueError names the value
        return self

    def to_domain(self) -> KpiDef:
        return KpiDef(
            name=self.name,
            source=self.source,
            query=self.query or self.sql or self.stat or "",
            unit=self.unit,
            good=self.good,
            warn=parse_amount(self.warn, self.unit) if self.warn is not None else None,
            fail=parse_amount(self.fail, self.unit) if self.fail is not None else None,
            chart=self.chart,
        )


class DigestConfig(BaseModel):
    """One digest: posted once a day at `time` in `timezone` to each of `channels`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="daily", min_length=1, max_length=60, pattern=r"^[\w.-]+$")
    time: str = Field(default="09:00", description="HH:MM, local time")
    timezone: str = "UTC"
    channels: list[str] = Field(default_factory=list, description="default: the alerts channel")
    kpis: list[str] = Field(default_factory=list, description="KPI names; default: all")
    sentry_project: str | None = None
    enabled: bool = True

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _TIME.match(value.strip()):
            raise ValueError("must be HH:MM (24-hour), e.g. 09:00")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @property
    def at(self) -> dt.time:
        hours, minutes = self.time.split(":")
        return dt.time(int(hours), int(minutes))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def scheduled(self) -> ScheduledDigest:
        """The digest as the digest service takes it."""
        return ScheduledDigest(
            name=self.name,
            at=self.at,
            zone=self.zone,
            timezone=self.timezone,
            channels=tuple(self.channels),
            kpis=tuple(self.kpis),
            sentry_project=self.sentry_project,
            enabled=self.enabled,
        )


class DigestSettings(BaseModel):
    """The `digest:` section: KPI definitions (default: the shipped ones) and the digests."""

    model_config = ConfigDict(extra="forbid")

    kpis: list[KpiConfig] | None = None
    digests: list[DigestConfig] = Field(default_factory=lambda: [DigestConfig()])

    @model_validator(mode="after")
    def _names(self) -> DigestSettings:
        kpi_names = [k.name for k in self.kpis or []]
        if len(set(kpi_names)) != len(kpi_names):
            raise ValueError("KPI names must be unique")
        digest_names = [d.name for d in self.digests]
        if len(set(digest_names)) != len(digest_names):
            raise ValueError("digest names must be unique")
        if self.kpis is not None:
            for digest in self.digests:
                unknown = sorted(set(digest.kpis) - set(kpi_names))
                if unknown:
                    raise ValueError(f"digest {digest.name}: unknown KPI {', '.join(unknown)}")
        return self

    def definitions(self) -> list[KpiDef]:
        """The configured KPIs, or the shipped defaults."""
        return [k.to_domain() for k in (self.kpis if self.kpis is not None else shipped_kpis())]


def shipped_kpis() -> list[KpiConfig]:
    """The KPIs that ship with Tocsin, for a chat app on Supabase with n8n webhooks."""
    data: Any = load_yaml(SHIPPED_KPIS.read_text(encoding="utf-8"))
    return [KpiConfig.model_validate(item) for item in data["kpis"]]


def _single_select(sql: str) -> bool:
    return bool(_SQL_START.match(sql)) and ";" not in sql.strip().rstrip(";")
