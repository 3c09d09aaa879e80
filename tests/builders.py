"""Builders for test data: Alertmanager payloads as Alertmanager 0.25 sends them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.domain.alerts import fingerprint_of
from bot.domain.text import RefKind, Rich

# shared/ lies beside the repository, for developers and CI alike.
CONTRACTS = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "payloads"

ZERO = "0001-01-01T00:00:00Z"


def contract_payload(name: str) -> dict[str, Any]:
    """A payload file from shared/contracts/payloads."""
    result: dict[str, Any] = json.loads((CONTRACTS / name).read_text())
    return result


def make_alert(
    name: str = "HighErrorRate",
    *,
    status: str = "firing",
    fingerprint: str | None = None,
    starts_at: str = "2026-11-26T10:00:00Z",
    ends_at: str = ZERO,
    **labels: str,
) -> dict[str, Any]:
    """One alert of a webhook payload."""
    all_labels = {"alertname": name, "severity": "critical", **labels}
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{name} on {labels.get('service', 'all')}"},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fingerprint or fingerprint_of(all_labels),
    }


def make_payload(
    alerts: list[dict[str, Any]],
    *,
    group: str = "HighErrorRate",
    receiver: str = "tocsin",
    **extra: Any,
) -> dict[str, Any]:
    """A version 4 webhook body for one group."""
    firing = any(a["status"] == "firing" for a in alerts)
    body: dict[str, Any] = {
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "alerts": alerts,
        "groupLabels": {"alertname": group},
        "commonLabels": {"alertname": group, "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{group}"}}',
        "truncatedAlerts": 0,
    }
    body.update(extra)
    return body


def utc(text: str) -> datetime:
    """A UTC datetime from an ISO string."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def with_tokens(text: Rich) -> str:
    """Timeline text as tests compare it: plain, with each reference as Slack's token."""
    tokens = {
        RefKind.USER: "<@{}>",
        RefKind.USERGROUP: "<!subteam^{}>",
        RefKind.CHANNEL: "<#{}>",
    }
    return "".join(
        piece
        if ref is None
        else (
            f"<{ref.target}|{piece}>"
            if ref.kind is RefKind.LINK
            else tokens[ref.kind].format(ref.target)
        )
        for piece, ref in text.spans()
    )
