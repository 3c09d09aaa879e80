"""`tocsin digest` in a terminal: what a person reads there, with no Slack markup."""

from __future__ import annotations

from datetime import date

from bot.cli.digest_text import digest_text
from bot.domain.diagnostics import DiagnosticResult, Status, Table
from bot.domain.digest import Digest
from bot.domain.incidents import Severity
from bot.domain.kpi import IncidentStats, IncidentTimes
from tests.builders import utc

LINK = "https://sentry.example/organizations/acme/issues/42/"


def a_digest() -> Digest:
    opened = utc("2026-11-24T09:00:00Z")
    return Digest(
        name="daily",
        day=date(2026, 11, 24),
        timezone="UTC",
        values=[],
        stats=IncidentStats(opened=2, resolved=1, still_open=1, mttr=600.0),
        incidents=[
            IncidentTimes(
                5,
                "<script>alert(1)</script> & 5xx",
                Severity.SEV1,
                opened,
                None,
                utc("2026-11-24T09:10:00Z"),
                channel_id="C0ABC123",
                channel_name="inc-2026-11-24-api-5xx",
            ),
            IncidentTimes(6, "Disk > 90%", Severity.SEV3, opened, None, None),
        ],
        sentry=DiagnosticResult(
            "Top new Sentry issues",
            Status.OK,
            "",
            table=Table(
                ("issue", "events", "users", "link"),
                (("TypeError: <b> is not a function", "12", "3", LINK),),
            ),
        ),
    )


def test_the_terminal_names_channels_and_writes_links_as_text() -> None:
    lines = digest_text(a_digest()).splitlines()
    assert "• #inc-2026-11-24-api-5xx sev1 <script>alert(1)</script> & 5xx — resolved" in lines
    assert "• incident #6 sev3 Disk > 90% — open" in lines
    assert f"• TypeError: <b> is not a function ({LINK}) — 12 events, 3 users" in lines
    text = "\n".join(lines)
    for slack_markup in ("<#C", "&lt;", "&gt;", "&amp;", "|", "*", "<http"):
        assert slack_markup not in text
