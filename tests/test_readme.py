"""What README.md shows a newcomer works as shown: its files load, its commands and flags exist,
its environment variables are read."""

from __future__ import annotations

import argparse
import configparser
import re
import shlex
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices

from bot.cli import _parser
from bot.config import load_settings
from bot.config.playbooks import load_file
from bot.config.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
RULES = ROOT / "playbooks" / "rules" / "tocsin.rules.yml"


def yaml_blocks() -> dict[str, list[str]]:
    """The README's YAML blocks by the file each belongs in, named by its first line."""
    blocks: dict[str, list[str]] = {}
    for found in re.findall(r"```yaml\n(.*?)```", README, re.DOTALL):
        block = textwrap.dedent(found)  # a block inside a list item is indented
        first = block.splitlines()[0]
        assert first.startswith("# "), f"a YAML block must say its file first:\n{block}"
        name = Path(first.removeprefix("# ").split()[0]).name
        kind = "playbook" if first.startswith("# playbooks/") else name
        blocks.setdefault(kind, []).append(block)
    return blocks


def test_every_yaml_block_is_checked() -> None:
    assert set(yaml_blocks()) == {
        "tocsin.yml",
        "alertmanager.yml",
        "prometheus.yml",
        "playbook",
        "kubernetes.yml",
    }


def test_readme_tocsin_yml_examples_load(tmp_path: Path) -> None:
    blocks = yaml_blocks()["tocsin.yml"]
    assert len(blocks) >= 3
    loaded = {}
    for block in blocks:
        path = tmp_path / "tocsin.yml"
        path.write_text(block)
        loaded[next(iter(yaml.safe_load(block)))] = load_settings({"TOCSIN_CONFIG": str(path)})
    escalation = loaded["escalation"]
    assert escalation.escalation.policies[0].to_domain().levels[0].timeout.total_seconds() == 300
    assert [r.to_domain().name for r in escalation.oncall.rotations] == ["primary"]
    services = loaded["notify"].escalation.policies[0].to_domain().levels[0].targets
    assert [t.kind.value for t in services] == ["user", "pagerduty", "opsgenie", "webhook"]
    digest = loaded["digest"].digest
    assert [k.name for k in digest.definitions()] == ["Error rate", "Messages sent", "MTTR"]
    assert digest.digests[0].timezone == "Europe/Paris"


def test_readme_playbook_loads(tmp_path: Path) -> None:
    (block,) = yaml_blocks()["playbook"]
    path = tmp_path / "disk-full.yml"
    path.write_text(block)
    playbook, problems = load_file(path)
    assert problems == [] and playbook is not None
    assert (playbook.name, playbook.escalation, playbook.auto_resolve) == (
        "DiskFull",
        "database",
        True,
    )
    assert len(playbook.steps) == 2


def test_readme_alertmanager_config(tmp_path: Path) -> None:
    (block,) = yaml_blocks()["alertmanager.yml"]
    config = yaml.safe_load(block)
    route, (receiver,) = config["route"], config["receivers"]
    assert route["receiver"] == receiver["name"]
    assert {"group_by", "group_wait", "group_interval", "repeat_interval"} <= set(route)
    (hook,) = receiver["webhook_configs"]
    assert hook["url"].endswith("/webhooks/alertmanager") and hook["send_resolved"] is True
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool (Debian's prometheus-alertmanager) is not installed")
    path = tmp_path / "alertmanager.yml"
    path.write_text(block)
    checked = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_shipped_rules_and_readme_prometheus_config(tmp_path: Path) -> None:
    (block,) = yaml_blocks()["prometheus.yml"]
    assert yaml.safe_load(block)["rule_files"] == ["playbooks/rules/tocsin.rules.yml"]
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian's prometheus) is not installed")
    rules = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    # As the README says: rule_files are relative to prometheus.yml.
    (tmp_path / "playbooks" / "rules").mkdir(parents=True)
    shutil.copy(RULES, tmp_path / "playbooks" / "rules")
    (tmp_path / "prometheus.yml").write_text(block)
    config = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def systemd_unit() -> configparser.ConfigParser:
    (block,) = re.findall(r"```ini\n(.*?)```", README, re.DOTALL)
    unit = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",))
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(block)
    return unit


def test_readme_systemd_unit_runs_a_real_command() -> None:
    unit = systemd_unit()
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    for value in service.values():
        assert "#" not in value, "systemd takes comments on their own lines only"
    program, *args = shlex.split(service["ExecStart"])
    assert Path(program).name == "tocsin"
    parsed = _parser().parse_args(args)
    assert (parsed.command, parsed.host, parsed.port) == ("serve", "127.0.0.1", 3000)
    assert service["RestartPreventExitStatus"] == "2"  # ConfigError, SchemaOutOfDate, no port


def test_readme_kubernetes_example_runs_two_probed_replicas_of_serve() -> None:
    (block,) = yaml_blocks()["kubernetes.yml"]
    deployment, service = yaml.safe_load_all(block)
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["selector"]["matchLabels"] == spec["template"]["metadata"]["labels"]
    assert service["spec"]["selector"] == spec["template"]["metadata"]["labels"]
    (container,) = spec["template"]["spec"]["containers"]
    program, *args = container["args"]
    assert program == "tocsin"
    parsed = _parser().parse_args(args)
    assert (parsed.command, parsed.host) == ("serve", "0.0.0.0")
    port = parsed.port
    assert container["ports"] == [{"containerPort": port}]
    assert service["spec"]["ports"] == [{"port": port, "targetPort": port}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}


def commands() -> list[str]:
    """Every `tocsin ...` the README shows: in code spans and in shell blocks."""
    spans = re.findall(r"`(tocsin [^`]+)`", README)
    for block in re.findall(r"```sh\n(.*?)```", README, re.DOTALL):
        spans += re.findall(r"(?:^|&& )(tocsin [^\n&|>]+)", block, re.MULTILINE)
    return spans


def test_every_tocsin_command_in_the_readme_parses() -> None:
    shown = commands()
    assert len(shown) >= 10
    for command in shown:
        line = re.split(r"\s#|\s>|\[", command)[0]  # no comment, redirection or [OPTIONAL]
        args = shlex.split(line)[1:]
        try:
            _parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"README shows `{command}`, which the tocsin command refuses")


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= option_strings(sub)
    return found


def test_every_flag_the_readme_names_exists() -> None:
    known = option_strings(_parser())
    named = set()
    for command in commands():
        named |= set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", command))
    named |= set(re.findall(r"`(--[a-z][a-z-]*)[ `]", README))
    benchmarks = "".join(p.read_text() for p in (ROOT / "tests" / "benchmarks").glob("*.py"))
    unknown = {flag for flag in named - known if f'"{flag}"' not in benchmarks}
    assert named and not unknown, sorted(unknown)


ENV_NAME = re.compile(
    r"\b((?:SLACK|TOCSIN|SENTRY|SUPABASE|PROMETHEUS|ALERTMANAGER)_[A-Z_]*[A-Z])\b"
)


def setting_aliases() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {c for c in alias.choices if isinstance(c, str) and c.isupper()}
    return names


def test_every_environment_variable_the_readme_names_is_read() -> None:
    named = set(ENV_NAME.findall(README))
    settings = setting_aliases()
    source = "".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))
    source += (ROOT / "tests" / "conftest.py").read_text()
    for name in named - settings:
        assert f'"{name}"' in source, f"README names {name}, which nothing reads"
    assert settings <= named, f"settings the README does not name: {sorted(settings - named)}"


def test_readme_commands_are_the_ci_ones() -> None:
    assert "python -m pip install -e . && tocsin serve" in README
    assert "bash .ci/run" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest" in ci
    assert "sqlite3" in ci  # the backup command the README shows, run by test_readme_run
