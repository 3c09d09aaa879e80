"""Drills: a realistic Alertmanager notification for a shipped playbook, sent through the real
webhook path, and a report of how far the incident got and how long each step took."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.diagnostics import POSTED_EVENT
from bot.domain.drills import DRILL_LABEL
from bot.domain.incidents import Incident, TimelineEvent
from bot.domain.playbooks import Playbook

RECEIVER = "tocsin"

# Labels and annotations a real alert of each shipped rule carries (playbooks/rules).
_EXAMPLES: dict[str, tuple[dict[str, str], str, str]] = {
    "HighErrorRate": (
        {"severity": "critical", "service": "api", "job": "api"},
        "5xx above 5% on api",
        "6.2% of requests to api answered 5xx over the last 5 minutes.",
    ),
    "WebhookFailure": (
        {"severity": "warning", "workflow": "orders-sync", "job": "n8n"},
        "n8n webhook failures above 10%",
        "Workflow orders-sync failed 14 of 90 webhook calls in 10 minutes.",
    ),
    "DatabaseConnectionLoss": (
        {"severity": "critical", "job": "supabase-db", "instance": "db.internal:5432"},
        "The app cannot reach its Postgres",
        "Connection attempts to db.internal:5432 failed for 2 minutes.",
    ),
}


def new_drill_id() -> str:
    """A short id that names the drill's channel: "drill-1a2b3c"."""
    return f"drill-{secrets.token_hex(3)}"


def drill_playbooks(playbooks: Sequence[Playbook]) -> dict[str, Playbook]:
    """The playbooks a drill can fire, by alert name."""
    return {p.match_labels["alertname"]: p for p in playbooks if p.match_labels.get("alertname")}


def drill_payload(playbook: Playbook, *, drill_id: str, now: datetime) -> dict[str, Any]:
    """A version-4 Alertmanager notification for the playbook's alert, marked as a drill."""
    alertname = playbook.match_labels["alertname"]
    extra, summary, description = _EXAMPLES.get(
        alertname, ({"severity": "warning"}, f"{alertname} is firing", "")
    )
    labels = {**extra, **playbook.match_labels, DRILL_LABEL: drill_id}
    group_labels = {"alertname": alertname, DRILL_LABEL: drill_id}
    annotations = {
        "summary": f"[DRILL] {summary}",
        "description": f"This is a drill, nobody needs to act. {description}".strip(),
    }
    if playbook.runbook:
        annotations["runbook_url"] = playbook.runbook
    starts = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    matchers = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return {
        "version": "4",
        "groupKey": f'{{}}/{{{DRILL_LABEL}=~".+"}}:{{{matchers}}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": RECEIVER,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "http://alertmanager.drill.invalid:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.drill.invalid:9090/graph",
                "fingerprint": secrets.token_hex(8),
            }
        ],
    }


@dataclass
class DrillStep:
    """One step of a drill and when it happened, in seconds after the incident opened."""

    name: str
    seconds: float | None
    detail: str = ""


@dataclass
class DrillReport:
    """What a drill's incident reached; `done` once the card and every diagnostic are posted."""

    incident_id: int
    channel: str | None
    status: str
    steps: list[DrillStep] = field(default_factory=list)
    diagnostics: int = 0
    expected_diagnostics: int = 0
    escalation: str = "no escalation policy"
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON for the page and the CLI."""
        return {
            "incident": self.incident_id,
            "channel": self.channel,
            "status": self.status,
            "steps": [s.__dict__ for s in self.steps],
            "diagnostics": self.diagnostics,
            "expected_diagnostics": self.expected_diagnostics,
            "escalation": self.escalation,
            "done": self.done,
        }


def _after(event: TimelineEvent | None, start: datetime) -> float | None:
    return None if event is None else round((event.at - start).total_seconds(), 3)


def _first(events: Sequence[TimelineEvent], kind: str) -> TimelineEvent | None:
    return next((e for e in events if e.kind == kind), None)


def drill_report(
    incident: Incident, events: Sequence[TimelineEvent], expected_diagnostics: int
) -> DrillReport:
    """The steps of a drill read from its incident's timeline, each when people could see it:
    a diagnostic counts when its message was posted in the channel, not when it was computed."""
    opened = _first(events, "opened")
    start = opened.at if opened else incident.opened_at
    posts = [e for e in events if e.kind == POSTED_EVENT]
    posted = sum(_count(e) for e in posts)
    paged = [e for e in events if e.kind in ("paged", "escalate")]
    report = DrillReport(
        incident_id=incident.id,
        channel=incident.channel_name,
        status=incident.status.value,
        diagnostics=posted,
        expected_diagnostics=expected_diagnostics,
    )
    created = _first(events, "channel_created")
    card = _first(events, "card_posted")
    report.steps = [
        DrillStep("incident opened", 0.0, incident.title),
        DrillStep("channel created", _after(created, start), f"#{incident.channel_name or '?'}"),
        DrillStep("card posted", _after(card, start)),
        DrillStep("first diagnostic", _after(posts[0] if posts else None, start)),
        DrillStep(
            "last diagnostic",
            _after(posts[-1] if posts else None, start),
            f"{posted} of {expected_diagnostics}",
        ),
    ]
    if incident.escalation_policy:
        report.escalation = f"{incident.escalation_policy}, level {incident.escalation_level + 1}"
    report.steps.append(
        DrillStep("escalation", _after(paged[-1] if paged else None, start), report.escalation)
    )
    report.done = card is not None and posted >= expected_diagnostics
    return report


def _count(event: TimelineEvent) -> int:
    """How many results one posted message of diagnostics carried."""
    count = event.data.get("count") if event.data else None
    return count if isinstance(count, int) and count > 0 else 1
