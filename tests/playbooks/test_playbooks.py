"""Playbooks: the shipped ones, their alert rules, validation with file:line, and matching."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import SHIPPED_PLAYBOOKS, load_settings
from bot.config.playbooks import PlaybookProblem, load_dir, load_file
from bot.domain.incidents import Severity
from bot.domain.playbooks import (
    SUPABASE_CHECKS,
    Playbook,
    PrometheusCheck,
    SentryCheck,
    SupabaseCheck,
    choose_playbook,
    fill_labels,
    fill_title,
    graph_start,
)
from bot.errors import ConfigError
from bot.main import load_playbooks
from bot.store import schema
from tests.realservers import free_port, require_binaries

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
RULES = sorted((PLAYBOOKS / "rules").glob("*.yml"))
SHIPPED = {"DatabaseConnectionLoss", "default", "HighErrorRate", "WebhookFailure"}


def tocsin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m bot ...` from the repository root, with no tocsin.yml and no inherited dirs."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TOCSIN_", "SLACK_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env={**base, "TOCSIN_CONFIG": "", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def rule_alerts() -> dict[str, dict[str, Any]]:
    """Every alerting rule of the shipped rules files, by alert name."""
    alerts: dict[str, dict[str, Any]] = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
    return alerts


# --- the shipped playbooks ---------------------------------------------------------------------


def test_every_shipped_playbook_loads() -> None:
    assert PLAYBOOKS == SHIPPED_PLAYBOOKS
    playbooks, problems = load_dir(PLAYBOOKS)
    assert problems == []
    assert {p.name for p in playbooks} == SHIPPED
    assert [p.name for p in playbooks if p.is_default] == ["default"]
    for playbook in playbooks:
        assert playbook.steps, f"{playbook.name} has no diagnostics"
        if not playbook.is_default:
            assert playbook.runbook is not None and playbook.runbook.startswith("https://")
            assert playbook.severity is not None
            assert playbook.auto_resolve is not None


def test_relative_folder_loads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    playbooks, problems = load_dir(Path("playbooks"))
    assert problems == []
    assert {p.name for p in playbooks} == SHIPPED


@pytest.mark.parametrize("explicit", [False, True], ids=["default-dir", "explicit-dir"])
def test_cli_check_of_the_shipped_playbooks_passes(explicit: bool) -> None:
    result = tocsin("playbooks", "check", *(["playbooks"] if explicit else []))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("4 playbooks OK in ")
    for name in SHIPPED:
        assert name in result.stdout
    assert "Traceback" not in result.stderr


def test_promtool_accepts_the_shipped_rules() -> None:
    require_binaries("promtool")
    assert RULES, "no rules files shipped"
    result = subprocess.run(
        ["promtool", "check", "rules", *map(str, RULES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_playbook_alertname_is_an_alert_of_the_rules() -> None:
    alerts = rule_alerts()
    playbooks, _ = load_dir(PLAYBOOKS)
    for playbook in playbooks:
        if playbook.is_default:
            continue
        name = playbook.match_labels.get("alertname")
        assert name is not None, f"{playbook.name} does not match on alertname"
        assert name in alerts, f"{playbook.name}: no alert {name!r} in {[p.name for p in RULES]}"
    # And every shipped alert has a playbook.
    matched = {p.match_labels.get("alertname") for p in playbooks}
    assert set(alerts) <= matched


def test_every_shipped_promql_query_parses(tmp_path: Path) -> None:
    """promtool parses each playbook query (labels filled in) as a recording rule."""
    require_binaries("promtool")
    playbooks, _ = load_dir(PLAYBOOKS)
    labels = {"service": "api", "workflow": "orders", "job": "x", "instance": "y"}
    rules = [
        {"record": f"tocsin:check_{i}", "expr": fill_labels(step.check.query, labels)}
        for i, step in enumerate(s for p in playbooks for s in p.steps)
        if isinstance(step.check, PrometheusCheck)
    ]
    assert len(rules) >= 6
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "playbook-queries", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- validation: file, line and reason ---------------------------------------------------------

# Each case: files to write, the file and line(s) the problem must name, words of the reason.
VALID_STEP = "  - prometheus:\n      title: Up\n      query: up\n"
CASES = [
    pytest.param(
        {
            "typo.yml": "name: X\nmatch:\n  labels:\n    alertname: X\ndiagnostic:\n" + VALID_STEP,
        },
        "typo.yml",
        {5},
        ["diagnostic", "Extra inputs are not permitted"],
        id="unknown-key",
    ),
    pytest.param(
        {"nested.yml": "name: X\nmatch:\n  label:\n    alertname: X\n"},
        "nested.yml",
        {3},
        ["match.label", "Extra inputs are not permitted"],
        id="unknown-nested-key",
    ),
    pytest.param(
        {"noname.yml": "match:\n  labels:\n    alertname: X\nseverity: sev2\n"},
        "noname.yml",
        {1},
        ["name", "Field required"],
        id="missing-name",
    ),
    pytest.param(
        {"sev.yml": "name: X\nmatch:\n  labels:\n    alertname: X\nseverity: sev9\n"},
        "sev.yml",
        {5},
        ["severity", "sev1", "sev4"],
        id="bad-severity",
    ),
    pytest.param(
        {
            "two.yml": "name: X\ndiagnostics:\n"
            + VALID_STEP
            + "  - prometheus:\n      title: t\n      query: up\n"
            + "    supabase:\n      check: locks\n",
        },
        "two.yml",
        {6},
        ["diagnostics.1", "exactly one of: prometheus, sentry, supabase"],
        id="step-with-two-sources",
    ),
    pytest.param(
        {"none.yml": "name: X\ndiagnostics:\n" + VALID_STEP + "  - timeout: 5s\n"},
        "none.yml",
        {6},
        ["diagnostics.1", "exactly one of: prometheus, sentry, supabase"],
        id="step-with-no-source",
    ),
    pytest.param(
        {"t.yml": "name: X\ndiagnostics:\n" + VALID_STEP + "    timeout: 10x\n"},
        "t.yml",
        {6},
        ["diagnostics.0.timeout", "invalid duration '10x'"],
        id="bad-timeout",
    ),
    pytest.param(
        {
            "t.yml": "name: X\ndiagnostics:\n"
            "  - prometheus:\n      title: Up\n      query: up\n      no_data: maybe\n"
        },
        "t.yml",
        {6},
        ["diagnostics.0.prometheus.no_data", "'ok', 'warn' or 'fail'"],
        id="bad-no-data",
    ),
    pytest.param(
        {"t.yml": "name: X\ndiagnostics:\n" + VALID_STEP + "    timeout: 500s\n"},
        "t.yml",
        {6},
        ["timeout must be between 1s and 120s"],
        id="timeout-out-of-range",
    ),
    pytest.param(
        {"q.yml": "name: X\ndiagnostics:\n  - prometheus:\n      title: Up\n"},
        "q.yml",
        # The `prometheus:` key (3) or the block it opens (4) both point at the right place.
        {3, 4},
        ["diagnostics.0.prometheus.query", "Field required"],
        id="prometheus-without-query",
    ),
    pytest.param(
        {"s.yml": "name: X\ndiagnostics:\n  - supabase:\n      check: vacuum\n"},
        "s.yml",
        {4},
        ["diagnostics.0.supabase.check", *SUPABASE_CHECKS],
        id="unknown-supabase-check",
    ),
    pytest.param(
        {"r.yml": "name: X\nseverity: sev3\nrunbook: ftp://runbooks.example.com/x\n"},
        "r.yml",
        {3},
        ["runbook", "https?://"],
        id="runbook-not-http",
    ),
    pytest.param(
        {"y.yml": "name: X\nrunbook: https://x.example.com\nseverity: sev2: bad\n"},
        "y.yml",
        {3},
        ["invalid YAML", "mapping values are not allowed"],
        id="invalid-yaml",
    ),
    pytest.param(
        {"i.yml": "name: X\nmatch:\n  labels:\n    alertname: X\n   severity: sev2\n"},
        "i.yml",
        {5},
        ["invalid YAML"],
        id="bad-indentation",
    ),
    pytest.param(
        {"k.yml": "name: X\nseverity: sev2\nrunbook: https://x.example.com\nseverity: sev1\n"},
        "k.yml",
        {4},
        ["invalid YAML", "duplicate key 'severity' (first on line 2)"],
        id="duplicate-key",
    ),
    pytest.param(
        {"l.yml": "- name: X\n- name: Y\n"},
        "l.yml",
        {1},
        ["must be a mapping"],
        id="list-not-mapping",
    ),
    pytest.param(
        {"a.yml": "name: Same\nseverity: sev2\n", "b.yml": "name: Same\nseverity: sev3\n"},
        "b.yml",
        {1},
        ["'Same'", "also used by a.yml"],
        id="duplicate-names",
    ),
    pytest.param(
        {
            "a.yml": "# API errors\nname: Same\nseverity: sev2\n",
            "b.yml": "# Web errors\nname: Same\nseverity: sev3\n",
        },
        "b.yml",
        {2},
        ["'Same'", "also used by a.yml"],
        id="duplicate-names-after-a-comment",
    ),
    pytest.param(
        {"a.yml": "name: first\nseverity: sev4\n", "b.yml": "name: second\nseverity: sev4\n"},
        "b.yml",
        {1},
        ["default", "first", "second"],
        id="two-defaults",
    ),
    pytest.param(
        {
            "a.yml": "name: first\n",
            "b.yml": "# catch-all\nseverity: sev4\nname: second\n",
        },
        "b.yml",
        {3},
        ["default", "first", "second"],
        id="two-defaults-name-below",
    ),
]


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize(("files", "culprit", "lines", "words"), CASES)
def test_a_bad_playbook_is_named_by_file_line_and_reason(
    tmp_path: Path, files: dict[str, str], culprit: str, lines: set[int], words: list[str]
) -> None:
    folder = write(tmp_path / "playbooks", files)
    _, problems = load_dir(folder)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.path == folder / culprit
    assert problem.line in lines, f"{problem} (expected line {sorted(lines)})"
    for word in words:
        assert word in problem.reason, problem.reason
    assert str(problem) == f"{folder / culprit}:{problem.line}: {problem.reason}"
    assert "\n" not in str(problem)

    result = tocsin("playbooks", "check", str(folder))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [str(problem)]


def test_load_file_reports_every_problem_of_one_file(tmp_path: Path) -> None:
    path = tmp_path / "many.yml"
    path.write_text(
        "name: X\n"  # 1
        "severity: sev9\n"  # 2
        "runbook: runbooks.example.com\n"  # 3
        "diagnostics:\n"  # 4
        "  - supabase:\n"  # 5
        "      check: vacuum\n"  # 6
    )
    playbook, problems = load_file(path)
    assert playbook is None
    assert sorted((p.line, p.reason.split(":")[0]) for p in problems) == [
        (2, "severity"),
        (3, "runbook"),
        (6, "diagnostics.0.supabase.check"),
    ]


def test_cli_lists_every_problem_of_a_folder_and_exits_1(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "playbooks",
        {
            "good.yml": "name: Good\nmatch:\n  labels:\n    alertname: Good\n",
            "sev.yml": "name: Sev\nseverity: sev9\n",
            "yaml.yaml": "name: Y\nseverity: sev2: bad\n",
        },
    )
    result = tocsin("playbooks", "check", str(folder))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{folder / 'sev.yml'}:2: severity: Input should be 'sev1', 'sev2', 'sev3' or 'sev4'",
        f"{folder / 'yaml.yaml'}:2: invalid YAML: mapping values are not allowed here",
    ]
    assert "Traceback" not in result.stderr


def test_cli_check_of_a_missing_folder_fails(tmp_path: Path) -> None:
    result = tocsin("playbooks", "check", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "no such folder" in result.stderr


def test_cli_check_uses_tocsin_playbooks_dir(tmp_path: Path) -> None:
    folder = write(tmp_path / "pb", {"x.yml": "name: X\nseverity: sev9\n"})
    result = tocsin("playbooks", "check", env={"TOCSIN_PLAYBOOKS_DIR": str(folder)})
    assert result.returncode == 1
    assert result.stderr.startswith(f"{folder / 'x.yml'}:2: severity")


def test_load_playbooks_refuses_a_bad_folder_with_file_and_line(tmp_path: Path) -> None:
    folder = write(tmp_path / "pb", {"x.yml": "name: X\nseverity: sev9\n"})
    settings = load_settings({"TOCSIN_CONFIG": "", "TOCSIN_PLAYBOOKS_DIR": str(folder)})
    with pytest.raises(ConfigError) as caught:
        load_playbooks(settings)
    assert str(caught.value).startswith(f"TOCSIN_PLAYBOOKS_DIR: {folder / 'x.yml'}:2: severity")


def serve_with_bad_playbooks(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], int, Path]:
    folder = write(
        tmp_path / "pb",
        {
            "bad.yml": "# checkout\nname: Checkout\nmatch:\n  labels:\n    alertname: X\n"
            "severity: sev9\n"
        },
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    schema.upgrade(url)
    port = free_port()
    result = tocsin(
        "serve",
        "--port",
        str(port),
        env={"TOCSIN_DATABASE_URL": url, "TOCSIN_PLAYBOOKS_DIR": str(folder)},
    )
    return result, port, folder / "bad.yml"


def test_serve_refuses_to_start_with_a_bad_playbook(tmp_path: Path) -> None:
    result, port, bad = serve_with_bad_playbooks(tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    named = [line for line in result.stderr.splitlines() if str(bad) in line]
    assert named == [
        f"tocsin: TOCSIN_PLAYBOOKS_DIR: {bad}:6: severity: "
        "Input should be 'sev1', 'sev2', 'sev3' or 'sev4'"
    ]
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stderr
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_serve_refusing_a_bad_playbook_leaks_nothing(tmp_path: Path) -> None:
    result, _, _ = serve_with_bad_playbooks(tmp_path)
    assert result.returncode == 2
    assert "Unclosed" not in result.stderr


# --- choosing a playbook -----------------------------------------------------------------------

DEFAULT = Playbook(name="default")
API = Playbook(name="api", match_labels={"alertname": "HighErrorRate"})
API_CHECKOUT = Playbook(
    name="api-checkout", match_labels={"alertname": "HighErrorRate", "service": "checkout"}
)
FRONT_END = Playbook(name="front-end", sentry_project="front-end")
ALL = [DEFAULT, API, API_CHECKOUT, FRONT_END]


@pytest.mark.parametrize("order", [ALL, list(reversed(ALL))], ids=["in-order", "reversed"])
@pytest.mark.parametrize(
    ("labels", "source", "expected"),
    [
        ({"alertname": "HighErrorRate", "service": "checkout"}, "alertmanager", "api-checkout"),
        ({"alertname": "HighErrorRate", "service": "search"}, "alertmanager", "api"),
        ({"alertname": "HighErrorRate"}, "alertmanager", "api"),
        ({"alertname": "DiskFull", "service": "checkout"}, "alertmanager", "default"),
        ({}, "alertmanager", "default"),
        ({"alertname": "TypeError: x", "project": "front-end"}, "sentry", "front-end"),
        ({"alertname": "TypeError: x", "project": "back-end"}, "sentry", "default"),
        # A Prometheus alert that happens to carry project=front-end is not a Sentry issue.
        ({"alertname": "DiskFull", "project": "front-end"}, "alertmanager", "default"),
        ({"alertname": "HighErrorRate", "project": "front-end"}, "alertmanager", "api"),
    ],
)
def test_choose_playbook(
    order: list[Playbook], labels: dict[str, str], source: str, expected: str
) -> None:
    chosen = choose_playbook(order, labels, source)
    assert chosen is not None
    assert chosen.name == expected


def test_without_a_default_nothing_matches_unknown_alerts() -> None:
    assert choose_playbook([API, FRONT_END], {"alertname": "DiskFull"}, "alertmanager") is None
    assert choose_playbook([], {"alertname": "HighErrorRate"}, "alertmanager") is None


def test_a_label_value_must_match_exactly() -> None:
    assert choose_playbook([API], {"alertname": "higherrorrate"}, "alertmanager") is None
    assert choose_playbook([API], {"alertname": "HighErrorRate "}, "alertmanager") is None


def test_shipped_playbooks_choose_by_alertname() -> None:
    playbooks, _ = load_dir(PLAYBOOKS)
    for name in ("HighErrorRate", "WebhookFailure", "DatabaseConnectionLoss"):
        chosen = choose_playbook(playbooks, {"alertname": name, "severity": "critical"}, "x")
        assert chosen is not None and chosen.name == name
    chosen = choose_playbook(playbooks, {"alertname": "TypeError: x"}, "sentry")
    assert chosen is not None and chosen.name == "default"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"service": "api"}, 'rate(x{service="api"}[5m])'),
        ({"service": 'a"b'}, 'rate(x{service="a\\"b"}[5m])'),
        ({"service": "a\\b"}, 'rate(x{service="a\\\\b"}[5m])'),
        ({"service": '\\"'}, 'rate(x{service="\\\\\\""}[5m])'),
        ({}, 'rate(x{service=""}[5m])'),
        ({"service": "${service}"}, 'rate(x{service="${service}"}[5m])'),
    ],
    ids=["plain", "quote", "backslash", "both", "missing", "no-recursion"],
)
def test_fill_labels_escapes_for_promql_strings(labels: dict[str, str], expected: str) -> None:
    assert fill_labels('rate(x{service="${service}"}[5m])', labels) == expected


def test_fill_labels_leaves_other_text_alone() -> None:
    assert fill_labels("p95 of ${service} ($5) {a}", {"service": "web"}) == "p95 of web ($5) {a}"
    assert fill_labels("$service ${ service }", {"service": "web"}) == "$service ${ service }"


# --- what a loaded playbook holds --------------------------------------------------------------


def test_a_full_playbook_becomes_its_domain_object(tmp_path: Path) -> None:
    path = tmp_path / "full.yml"
    path.write_text(
        "name: Full\n"
        "match:\n  labels:\n    alertname: Full\n    service: api\n"
        "severity: sev1\n"
        "escalation: critical\n"
        "runbook: https://runbooks.example.com/full\n"
        "auto_resolve: false\n"
        "diagnostics:\n"
        "  - prometheus:\n      title: Latency\n      query: up\n      graph: 3h\n"
        "      warn_above: 1\n      fail_above: 2\n      unit: s\n      top: 3\n"
        "    timeout: 30s\n"
        "  - sentry:\n      project: web\n      hours: 6\n      limit: 3\n"
        "  - supabase:\n      check: locks\n"
    )
    playbook, problems = load_file(path)
    assert problems == []
    assert playbook is not None
    assert playbook.name == "Full"
    assert playbook.match_labels == {"alertname": "Full", "service": "api"}
    assert playbook.sentry_project is None and not playbook.is_default
    assert (playbook.severity, playbook.escalation, playbook.auto_resolve) == (
        Severity.SEV1,
        "critical",
        False,
    )
    assert playbook.runbook == "https://runbooks.example.com/full"
    first, second, third = playbook.steps
    assert first.timeout == timedelta(seconds=30)
    assert first.check == PrometheusCheck("Latency", "up", timedelta(hours=3), 1, 2, "s", 3)
    assert second.timeout == timedelta(seconds=10)
    assert second.check == SentryCheck("Top Sentry issues", "web", 6, 3)
    assert third.check == SupabaseCheck("Supabase locks", "locks")


def test_problem_prints_as_path_line_reason() -> None:
    problem = PlaybookProblem(Path("playbooks/x.yml"), 7, "severity: bad")
    assert str(problem) == "playbooks/x.yml:7: severity: bad"


@pytest.mark.parametrize(
    ("title", "labels", "shown"),
    [
        ("p95 latency (service ${service})", {"service": "api"}, "p95 latency (service api)"),
        ("p95 latency (service ${service})", {}, "p95 latency (no service label)"),
        ("p95 latency (service ${service})", {"service": ""}, "p95 latency (no service label)"),
        ("Errors of ${service} in ${env}", {"env": "prod"}, "Errors of (no service label) in prod"),
        ("Lag (${db} on ${host})", {}, "Lag (no db, host labels)"),
        ("Lag (${db} on ${host})", {"db": "main"}, "Lag (no host label)"),
        ("Quote (${service})", {"service": 'a"b'}, 'Quote (a"b)'),  # a title is not PromQL
        ("Loop (${service})", {"service": "${service}"}, "Loop (${service})"),
        ("Total ($5) {a}", {}, "Total ($5) {a}"),
    ],
    ids=["filled", "missing", "empty", "bare", "two-missing", "one-missing", "raw", "once", "none"],
)
def test_fill_title_never_leaves_a_dangling_label(
    title: str, labels: dict[str, str], shown: str
) -> None:
    assert fill_title(title, labels) == shown


def test_shipped_titles_read_well_without_their_labels() -> None:
    steps = [s for p in load_dir(PLAYBOOKS)[0] for s in p.steps]
    for step in steps:
        shown = fill_title(step.check.title, {})
        assert "${" not in shown and " )" not in shown and "()" not in shown, shown


ALERT_START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "span", "start"),
    [
        # An alert 2 h old: the graph starts 30 min before it, longer than the step's 1 h.
        (ALERT_START + timedelta(hours=2), timedelta(hours=1), ALERT_START - timedelta(minutes=30)),
        # A fresh alert: the step's own 1 h reaches further back.
        (
            ALERT_START + timedelta(minutes=5),
            timedelta(hours=1),
            ALERT_START - timedelta(minutes=55),
        ),
    ],
)
def test_graph_starts_before_the_alert_fired(
    now: datetime, span: timedelta, start: datetime
) -> None:
    assert graph_start(now, span, ALERT_START) == start
    assert graph_start(now, span, None) == now - span
