"""Settings: environment plus tocsin.yml, one clear line for a bad value, secrets never shown."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.config.yaml_text import load_yaml
from bot.errors import ConfigError


def test_defaults_run_the_sandbox_on_sqlite() -> None:
    settings = load_settings({})
    assert settings.sandbox
    assert settings.database_url == "sqlite+aiosqlite:///./tocsin.db"
    assert settings.reopen_window == timedelta(minutes=30)


def test_file_values_and_environment_override(tmp_path: Path) -> None:
    config = tmp_path / "tocsin.yml"
    config.write_text(
        "reopen_window: 45m\nalerts_channel: C0ALERTS\noncall:\n  users: [U1, U2]\n"
        "webhook_token: from-file\n"
    )
    settings = load_settings({"TOCSIN_CONFIG": str(config), "TOCSIN_WEBHOOK_TOKEN": "from-env"})
    assert settings.reopen_window == timedelta(minutes=45)
    assert settings.oncall.users == ["U1", "U2"]
    assert settings.webhook_token is not None
    assert settings.webhook_token.get_secret_value() == "from-env"


@pytest.mark.parametrize(
    ("env", "file", "expected"),
    [
        ({"TOCSIN_DATABASE_URL": "mysql://db"}, None, "TOCSIN_DATABASE_URL: "),
        ({"TOCSIN_DATABASE_URL": "postgres://u@h/db"}, None, "postgresql+asyncpg"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, None, "SLACK_SIGNING_SECRET: required"),
        ({"SLACK_API_URL": "slack.com"}, None, "SLACK_API_URL: "),
        ({}, "reopen_window: soon\n", "reopen_window: "),
        ({"TOCSIN_ARCHIVE_AFTER": "a week"}, None, "TOCSIN_ARCHIVE_AFTER: "),
        ({}, "archive_after: 0\n", "tocsin.yml:1: archive_after: must be longer than zero"),
        ({}, "archive_after:\n", "tocsin.yml:1: archive_after: must be a duration"),
        ({"TOCSIN_ARCHIVE_AFTER": "0"}, None, "TOCSIN_ARCHIVE_AFTER: must be longer than zero"),
        (
            {},
            "alerts_channel: C1\noncall:\n  rotations:\n    - name: primary\n      layers: []\n",
            "tocsin.yml:5: oncall.rotations.0.layers: List should have at least 1 item",
        ),
        (
            {},
            "archive_after: 1h\nreopen_window: 2h\n",
            "TOCSIN_ARCHIVE_AFTER: must be longer than reopen_window (2:00:00)",
        ),
        ({}, "drill_resolve_after: 0\n", "tocsin.yml:1: drill_resolve_after: must be longer"),
        ({}, "no_such_setting: 1\n", "no_such_setting: "),
        (
            {},
            "oncall:\n  users: [U1]\nalerts_channel: C1\noncall:\n  usergroup: S1\n",
            "tocsin.yml:4: duplicate key 'oncall' (first on line 1)",
        ),
        ({}, "digest:\n  time: '09:00'\n  time: '10:00'\n", "tocsin.yml:3: duplicate key 'time'"),
        ({}, "- a list\n", "must hold a mapping"),
        ({"TOCSIN_CONFIG": "/nonexistent/tocsin.yml"}, None, "TOCSIN_CONFIG: no such file"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(
    tmp_path: Path, env: dict[str, str], file: str | None, expected: str
) -> None:
    if file is not None:
        (tmp_path / "tocsin.yml").write_text(file)
        env = {**env, "TOCSIN_CONFIG": str(tmp_path / "tocsin.yml")}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("env", "file", "expected"),
    [
        ({}, None, timedelta(days=7)),
        ({}, "archive_after: 36h\n", timedelta(hours=36)),
        ({}, "archive_after: off\n", None),  # YAML reads a bare off as false
        ({}, "archive_after: 'off'\n", None),
        ({"TOCSIN_ARCHIVE_AFTER": "off"}, "archive_after: 2d\n", None),
        ({"TOCSIN_ARCHIVE_AFTER": "3d"}, "archive_after: off\n", timedelta(days=3)),
    ],
)
def test_archive_after_is_a_duration_or_off(
    tmp_path: Path, env: dict[str, str], file: str | None, expected: timedelta | None
) -> None:
    config = tmp_path / "tocsin.yml"
    config.write_text(file or "")
    assert load_settings({**env, "TOCSIN_CONFIG": str(config)}).archive_after == expected


@pytest.mark.parametrize(
    ("env", "file", "expected"),
    [
        ({}, None, timedelta(minutes=30)),
        ({}, "drill_resolve_after: 2h\n", timedelta(hours=2)),
        ({}, "drill_resolve_after: off\n", None),
        (
            {"TOCSIN_DRILL_RESOLVE_AFTER": "10m"},
            "drill_resolve_after: off\n",
            timedelta(minutes=10),
        ),
    ],
)
def test_drill_resolve_after_is_a_duration_or_off(
    tmp_path: Path, env: dict[str, str], file: str | None, expected: timedelta | None
) -> None:
    config = tmp_path / "tocsin.yml"
    config.write_text(file or "")
    assert load_settings({**env, "TOCSIN_CONFIG": str(config)}).drill_resolve_after == expected


def test_secrets_are_never_printed() -> None:
    settings = load_settings(
        {"SLACK_BOT_TOKEN": "xoxb-very-secret", "SLACK_SIGNING_SECRET": "sig-very-secret"}
    )
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "very-secret" not in shown


def test_yaml_merge_keys_still_merge_and_a_key_beside_them_overrides() -> None:
    text = "base: &base {timeout: 5m, targets: [U1]}\nlevel:\n  <<: *base\n  timeout: 10m\n"
    assert load_yaml(text)["level"] == {"timeout": "10m", "targets": ["U1"]}
