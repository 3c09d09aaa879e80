"""Tocsin's own Prometheus metrics, in a registry owned by the app (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Every `tocsin_*` metric."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.alerts_received = Counter(
            "tocsin_alerts_received", "Alerts received in webhooks", ["source"], registry=r
        )
        self.webhooks_rejected = Counter(
            "tocsin_webhooks_rejected", "Webhooks refused", ["source", "reason"], registry=r
        )
        self.webhook_seconds = Histogram(
            "tocsin_webhook_seconds",
            "Time to validate and commit a webhook",
            ["source"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.incidents_opened = Counter(
            "tocsin_incidents_opened", "Incidents opened", ["source"], registry=r
        )
        self.storms_opened = Counter(
            "tocsin_storms_opened", "Alert storms: storm incidents opened", registry=r
        )
        self.flaps_detected = Counter(
            "tocsin_flaps_detected", "Alert groups found flapping", registry=r
        )
        self.groups_folded = Counter(
            "tocsin_storm_groups_folded",
            "New alert groups that joined a storm instead of opening a channel",
            registry=r,
        )
        self.slack_calls = Counter(
            "tocsin_slack_calls", "Slack Web API calls", ["method", "outcome"], registry=r
        )
        self.slack_call_seconds = Histogram(
            "tocsin_slack_call_seconds", "Slack Web API call latency", ["method"], registry=r
        )
        self.rate_limited_waits = Counter(
            "tocsin_slack_rate_limited_waits",
            "Times a Slack call had to wait (local pacing or a 429's Retry-After)",
            ["method", "reason"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "tocsin_outbox_depth", "Slack jobs pending or running", registry=r
        )
        self.outbox_oldest_due = Gauge(
            "tocsin_outbox_oldest_due_seconds",
            "How long the longest-waiting due Slack job has waited (0 when none waits)",
            registry=r,
        )
        self.outbox_lease_holder = Gauge(
            "tocsin_outbox_lease_holder",
            "1 for the replica that holds the outbox lease (sends to Slack), by its name",
            ["holder"],
            registry=r,
        )
        self.outbox_lease_held = Gauge(
            "tocsin_outbox_lease_held", "1 when this replica sends to Slack, else 0", registry=r
        )
        self.outbox_jobs = Counter(
            "tocsin_outbox_jobs", "Outbox jobs finished", ["kind", "outcome"], registry=r
        )

        self.notifications = Counter(
            "tocsin_notifications",
            "Pages through contact methods beyond Slack, by service (email, ntfy, ...) and "
            "outcome (sent, failed, unknown)",
            ["method", "outcome"],
            registry=r,
        )
        self.notification_delay = Histogram(
            "tocsin_notification_delay_seconds",
            "From a notification step's due time to its delivery",
            ["method"],
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )

    def contact_outcome(self, method: str, outcome: str, delay: float | None) -> None:
        """Count a page beyond Slack; a delivered one observes its delay."""
        self.notifications.labels(method, outcome).inc()
        if delay is not None:
            self.notification_delay.labels(method).observe(max(delay, 0.0))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
