"""`tocsin config check` and `tocsin config example`: what a newcomer runs before `serve`."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from bot.cli.config_check import example_text
from bot.config import Settings, load_settings
from tests.cli.test_cli import tocsin


def test_the_example_loads_and_names_every_setting(tmp_path: Path) -> None:
    example = tmp_path / "tocsin.yml"
    example.write_text(example_text())
    settings = load_settings({"TOCSIN_CONFIG": str(example)})
    assert settings.escalation.default == "standard"
    assert [r.name for r in settings.oncall.rotations] == ["primary"]
    # Every setting a file may hold is in it, set or commented (secrets: named as variables).
    written = set(re.findall(r"^#? ?(\w+):", example_text(), re.M))
    secrets = {n for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)}
    missing = set(Settings.model_fields) - written - secrets
    assert missing == set()
    for name in secrets:
        alias = Settings.model_fields[name].validation_alias
        assert isinstance(alias, AliasChoices)
        assert str(alias.choices[0]) in example_text(), name


def test_example_prints_it_and_check_accepts_it_with_each_origin(tmp_path: Path) -> None:
    printed = tocsin("config", "example", cwd=tmp_path)
    assert printed.returncode == 0 and printed.stdout == example_text()
    (tmp_path / "tocsin.yml").write_text(printed.stdout)

    env = {"SLACK_BOT_TOKEN": "xoxb-not-for-eyes", "SLACK_SIGNING_SECRET": "shh-secret"}
    env["TOCSIN_DATABASE_URL"] = "postgresql+asyncpg://tocsin:hunter2@db/tocsin"
    checked = tocsin("config", "check", "tocsin.yml", cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert lines[0].startswith("tocsin.yml: OK; 4 playbooks OK in ")
    shown = {line.split(" = ")[0].strip(): line.split(" = ", 1)[1] for line in lines[1:]}
    assert shown["slack_bot_token"] == "set (hidden)  (env SLACK_BOT_TOKEN)"
    assert shown["database_url"] == (
        "postgresql+asyncpg://tocsin:***@db/tocsin  (env TOCSIN_DATABASE_URL)"
    )
    assert shown["alerts_channel"] == "#alerts  (file tocsin.yml)"
    assert shown["webhook_token"] == "not set  (default)"
    for secret in ("xoxb-not-for-eyes", "shh-secret", "hunter2"):
        assert secret not in checked.stdout + checked.stderr


def test_check_of_a_broken_file_names_file_and_line_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "tocsin.yml"
    bad.write_text("alerts_channel: C1\noncall:\n  users: [U1]\noncall:\n  usergroup: S1\n")
    result = tocsin("config", "check", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"tocsin: TOCSIN_CONFIG: {bad}:4: duplicate key 'oncall' (first on line 2)"
    )

    bad.write_text("escalation:\n  default: nightly\n  policies: []\n")
    result = tocsin("config", "check", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"tocsin: TOCSIN_CONFIG: {bad}:1: escalation: default policy 'nightly' is not defined"
    )


def test_check_reports_a_broken_playbook_by_file_and_line(tmp_path: Path) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "x.yml").write_text("name: X\nseverity: sev9\n")
    result = tocsin("config", "check", cwd=tmp_path, env={"TOCSIN_PLAYBOOKS_DIR": str(playbooks)})
    assert result.returncode == 1
    assert result.stderr.startswith(f"{playbooks / 'x.yml'}:2: severity")
