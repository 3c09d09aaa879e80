"""Digest settings in tocsin.yml: the shipped KPIs load, bad values stop start-up in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.config.digest import DigestSettings
from bot.domain.kpi import Good, Unit
from bot.errors import ConfigError


def test_the_shipped_kpis_cover_the_product_and_incident_statistics() -> None:
    kpis = {k.name: k for k in DigestSettings().definitions()}
    for name in (
        "Daily active users",
        "Messages sent",
        "Average session duration",
        "7-day retention",
        "Average API response time",
        "Error rate",
        "Uptime",
        "Webhook success rate",
        "CPU utilisation",
        "Memory utilisation",
        "Disk utilisation",
        "MTTA",
        "MTTR",
    ):
        assert name in kpis, name
    assert kpis["Error rate"].unit is Unit.PERCENT and kpis["Error rate"].good is Good.DOWN
    assert kpis["Error rate"].warn == pytest.approx(0.01)
    assert kpis["MTTR"].warn == 4 * 3600


def config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "tocsin.yml"
    path.write_text(text)
    return {"TOCSIN_CONFIG": str(path)}


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("digest:\n  digests:\n    - timezone: Mars/Olympus\n", "unknown time zone 'Mars/Olympus'"),
        ("digest:\n  digests:\n    - time: '9am'\n", "must be HH:MM"),
        (
            "digest:\n  kpis:\n    - {name: X, source: supabase, sql: 'delete from users'}\n",
            "single SELECT",
        ),
        (
            "digest:\n  kpis:\n    - {name: X, source: prometheus, sql: 'select 1'}\n",
            "takes `query`",
        ),
        (
            "digest:\n  kpis:\n    - {name: X, source: incidents, stat: mtta, warn: 2%}\n",
            "does not fit the unit count",
        ),
        (
            "digest:\n  kpis:\n    - {name: X, source: incidents, stat: opened}\n"
            "  digests:\n    - {kpis: [Y]}\n",
            "unknown KPI Y",
        ),
    ],
)
def test_a_bad_digest_setting_is_one_line(tmp_path: Path, yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config(tmp_path, yaml_text))
    text = str(caught.value)
    # Named by file, line and key: `TOCSIN_CONFIG: …/tocsin.yml:3: digest.digests.0.time: …`
    assert re.match(rf"TOCSIN_CONFIG: {re.escape(str(tmp_path))}/tocsin.yml:\d+: digest", text), (
        text
    )
    assert message in text and "\n" not in text
