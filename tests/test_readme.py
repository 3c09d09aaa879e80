"""What README.md shows a newcomer works as shown."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import load_settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README, re.DOTALL)


def test_readme_tocsin_yml_examples_load(tmp_path: Path) -> None:
    blocks = [b for b in yaml_blocks() if "receivers:" not in b]
    assert len(blocks) >= 2
    for block in blocks:
        path = tmp_path / "tocsin.yml"
        path.write_text(block)
        settings = load_settings({"TOCSIN_CONFIG": str(path)})
        assert settings is not None
    escalation = load_settings({"TOCSIN_CONFIG": str(path)})
    assert escalation.escalation.policies[0].to_domain().levels[0].timeout.total_seconds() == 300
    assert [r.to_domain().name for r in escalation.oncall.rotations] == ["primary"]


def test_readme_alertmanager_receiver_is_valid_yaml() -> None:
    (receiver,) = [b for b in yaml_blocks() if "receivers:" in b]
    config = yaml.safe_load(receiver)
    assert config["receivers"][0]["webhook_configs"][0]["url"].endswith("/webhooks/alertmanager")


def test_readme_commands_are_the_ci_ones() -> None:
    assert "python -m pip install -e . && tocsin serve" in README
    assert "bash .ci/run" in README
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "python -m pytest" in ci
