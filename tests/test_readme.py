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
    assert len(blocks) >= 3
    loaded = {}
    for block in blocks:
        path = tmp_path / "tocsin.yml"
        path.write_text(block)
        loaded[next(iter(yaml.safe_load(block)))] = load_settings({"TOCSIN_CONFIG": str(path)})
    escalation = loaded["escalation"]
    assert escalation.escalation.policies[0].to_domain().levels[0].timeout.total_seconds() == 300
    assert [r.to_domain().name for r in escalation.oncall.rotations] == ["primary"]
    digest = loaded["digest"].digest
    assert [k.name for k in digest.definitions()] == ["Error rate", "Messages sent", "MTTR"]
    assert digest.digests[0].timezone == "Europe/Paris"


def test_readme_alertmanager_receiver_is_valid_yaml() -> None:
    (receiver,) = [b for b in yaml_blocks() if "receivers:" in b]
    config = yaml.safe_load(receiver)
    assert config["receivers"][0]["webhook_configs"][0]["url"].endswith("/webhooks/alertmanager")


def test_readme_commands_are_the_ci_ones() -> None:
    assert "python -m pip install -e . && tocsin serve" in README
    assert "bash .ci/run" in README
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "python -m pytest" in ci
