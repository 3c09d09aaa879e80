"""The card of an incident with many alerts: counts of them all, the first ten listed (SQLite,
Postgres)."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.domain.intake import IntakeRules
from bot.services.alerts import AlertIntake
from bot.slack.render import render_incident_card
from bot.store.outbox import OutboxStore
from bot.store.repository import Database
from integrations.alertmanager import parse_webhook
from tests.builders import make_alert, make_payload, utc

NOW = utc("2026-11-26T15:36:00Z")


def card_text(blocks: list[dict]) -> str:  # type: ignore[type-arg]
    return "\n".join(
        b["text"]["text"]
        if b["type"] == "section" and "text" in b
        else "\n".join(f["text"] for f in b.get("fields", []))
        for b in blocks
        if b["type"] == "section"
    )


async def test_the_card_counts_every_alert_and_lists_firing_ones_first(db: Database) -> None:
    intake = AlertIntake(store=db, rules=IntakeRules(timedelta(minutes=30), auto_resolve=False))
    alerts = [
        make_alert("DiskFull", instance=f"db-{i:02d}", service="pg")
        if i % 5
        else make_alert(
            "DiskFull", instance=f"db-{i:02d}", status="resolved", ends_at="2026-11-26T10:05:00Z"
        )
        for i in range(25)
    ]
    body = json.dumps(make_payload(alerts, group="DiskFull"))
    opened = await intake.ingest(parse_webhook(body.encode()), body=body, now=NOW)
    assert opened.incident_id is not None

    view = await OutboxStore(db).incident_view(opened.incident_id)
    assert view is not None
    text = card_text(render_incident_card(view))
    assert "20 firing, 5 resolved" in text
    assert text.count(":red_circle:") == 10 and ":white_check_mark:" not in text
    assert "…and 15 more" in text
