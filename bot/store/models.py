"""SQLAlchemy 2.0 typed models. The ORM stays inside bot/store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(512), index=True)
    # Holds `key` on the newest incident of a key only, so two writers cannot open twins.
    current_key: Mapped[str | None] = mapped_column(String(512), unique=True)
    source: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(500))
    slug_source: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), index=True)
    opened_at: Mapped[datetime] = mapped_column(index=True)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    alerts_resolved_at: Mapped[datetime | None]
    auto_resolve: Mapped[bool] = mapped_column(default=False)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    external_url: Mapped[str] = mapped_column(String(1000), default="")
    channel_id: Mapped[str | None] = mapped_column(String(32), index=True)
    channel_name: Mapped[str | None] = mapped_column(String(80))
    card_ts: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime]
    # Optimistic concurrency: every state change bumps it, a stale writer redoes its work.
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    lead: Mapped[str | None] = mapped_column(String(64))
    declared_by: Mapped[str | None] = mapped_column(String(64))
    group_labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    silence_id: Mapped[str | None] = mapped_column(String(64))
    silenced_until: Mapped[datetime | None]
    silenced_by: Mapped[str | None] = mapped_column(String(64))
    escalation_policy: Mapped[str | None] = mapped_column(String(100))
    escalation_level: Mapped[int] = mapped_column(default=0, server_default="0")
    escalation_round: Mapped[int] = mapped_column(default=0, server_default="0")
    playbook: Mapped[str | None] = mapped_column(String(100))
    runbook: Mapped[str | None] = mapped_column(String(1000))
    escalation_exhausted_at: Mapped[datetime | None]
    reopened_at: Mapped[datetime | None]
    # Set once, when a drill's notification opens it: lists mark it, KPIs leave it out.
    drill: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The storm incident this alert group's incident was folded into (bot.domain.storms).
    storm_id: Mapped[int | None] = mapped_column(index=True)
    # Since when its alert group flaps (bot.domain.flapping).
    flapping_since: Mapped[datetime | None]


class CardCopyRow(Base):
    """A message besides the card that shows the incident: a page's DM, the announcement."""

    __tablename__ = "card_copies"
    __table_args__ = (Index("ix_card_copies_message", "channel_id", "ts", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_incident_fp", "incident_id", "fingerprint", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    generator_url: Mapped[str] = mapped_column(Text, default="")
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class TimelineEventRow(Base):
    __tablename__ = "timeline_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)  # plain text, no markup
    refs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=list)  # spans of text
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebhookReceiptRow(Base):
    __tablename__ = "webhook_receipts"
    __table_args__ = (Index("ix_receipts_source_sha", "source", "body_sha256", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    body_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    group_key: Mapped[str] = mapped_column(Text)
    alert_count: Mapped[int]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)


class OutboxJobRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "not_before"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idem_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    coalesce_key: Mapped[str | None] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)


class TimerRow(Base):
    """A durable deadline (escalation), fired once by whichever process claims it."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idem_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]


class OnCallOverrideRow(Base):
    """Someone takes a rotation's shift for a while (`/oncall override @user 4h`)."""

    __tablename__ = "oncall_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rotation: Mapped[str] = mapped_column(String(100), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class DigestRunRow(Base):
    """One digest for one channel on one local day: the unique key makes it post exactly once."""

    __tablename__ = "digest_runs"
    __table_args__ = (UniqueConstraint("digest", "channel", "day", name="uq_digest_runs_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(100))
    day: Mapped[str] = mapped_column(String(10))  # the local date reported on, YYYY-MM-DD
    due_at: Mapped[datetime]
    claimed_at: Mapped[datetime]
    late: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16))  # claimed -> queued


class SandboxSnapshotRow(Base):
    """The sandbox workspace (channels, messages, pins...) as JSON, so a restart keeps it."""

    __tablename__ = "sandbox_snapshots"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(default=0)
    saved_at: Mapped[datetime]


class LeaseRow(Base):
    """A lease: which process holds a role (draining the outbox) until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class SlackCallRow(Base):
    """A Slack Web API call the app made (written before it left), kept for one rate window."""

    __tablename__ = "slack_calls"
    __table_args__ = (Index("ix_slack_calls_sent_at", "sent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    method: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime]
