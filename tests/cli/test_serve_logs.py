"""What `tocsin serve` logs, read from a real process: one line per webhook that opens an
incident (every webhook at DEBUG), per refusal, per change of an incident's state and per failed
Slack call; plain text or JSON; never a secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.builders import contract_payload
from tests.harness import ServeProcess, bot_env, eventually, post_webhook, running_emulator
from tests.realservers import free_port

TOKEN = "webhook-token-right-4f2a"
WRONG = "wrong-token-s3cr3t-9c1d"
PAYLOAD = "alertmanager-0.25-captured-1-firing.json"


def serve(tmp_path: Path, api: str, **env: str) -> ServeProcess:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    process = ServeProcess(
        {**bot_env(url, api), "TOCSIN_WEBHOOK_TOKEN": TOKEN, **env},
        free_port(),
        tmp_path / "serve.log",
    )
    for name in ("TOCSIN_LOG_FORMAT", "TOCSIN_LOG_LEVEL"):
        if name not in env:
            process.env.pop(name, None)
    return process


def records(log: Path) -> list[dict[str, Any]]:
    """Every line of the log, each one JSON object."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def one(found: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    matching = [r for r in found if all(r.get(k) == v for k, v in fields.items())]
    assert len(matching) == 1, (fields, found)
    return matching[0]


async def test_json_lines_say_what_came_what_was_refused_and_what_changed(
    tmp_path: Path,
) -> None:
    log = tmp_path / "serve.log"
    async with running_emulator() as (emulator, api):
        process = serve(tmp_path, api, TOCSIN_LOG_FORMAT="json")
        await process.start()
        try:
            status, _ = await post_webhook(process.url, contract_payload(PAYLOAD), token=WRONG)
            assert status == 401
            emulator.lose_answers("conversations.create")  # done, but answered 503
            status, answer = await post_webhook(process.url, contract_payload(PAYLOAD), token=TOKEN)
            assert status == 200
            await eventually(lambda: len(emulator.calls_to("pins.add")) == 1, what="the card")
            status, _ = await post_webhook(process.url, contract_payload(PAYLOAD), token=TOKEN)
            assert status == 200
        finally:
            process.stop()
    found = records(log)  # every line parses: nothing is printed beside the JSON lines
    assert all({"time", "level", "logger", "message"} <= set(r) for r in found)
    incident = answer["incident"]

    refusal = one(found, route="/webhooks/alertmanager", status=401)
    assert refusal["level"] == "WARNING"
    assert refusal["reason"] == "missing or wrong bearer token"

    opened = one(found, source="alertmanager", decision="open")
    assert opened["level"] == "INFO" and opened["incident"] == incident
    assert opened["alerts"] == 1 and opened["group_key"]
    # The repeat changed nothing: at the default level it leaves no line of its own.
    assert not [r for r in found if r.get("decision") == "duplicate"]

    change = one(found, incident=incident, to="triggered")
    assert change["from"] == "new" and change["actor"] == "alertmanager"
    assert change["message"] == f"incident {incident}: new -> triggered by alertmanager"

    slack = one(found, method="conversations.create")
    assert slack["level"] == "WARNING" and slack["code"] and slack["job"]

    text = log.read_text()
    assert WRONG not in text and TOKEN not in text
    assert "xoxb-" not in text


async def test_plain_text_is_the_default_and_the_level_can_be_raised(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    async with running_emulator() as (_emulator, api):
        process = serve(tmp_path, api)
        await process.start()
        try:
            status, _ = await post_webhook(process.url, contract_payload(PAYLOAD), token=WRONG)
            assert status == 401
            status, answer = await post_webhook(process.url, contract_payload(PAYLOAD), token=TOKEN)
            assert status == 200
        finally:
            process.stop()
    lines = log.read_text().splitlines()
    incident = answer["incident"]
    assert any(
        line.endswith(
            "WARNING bot.web: refused POST /webhooks/alertmanager from 127.0.0.1: "
            "401 missing or wrong bearer token"
        )
        for line in lines
    ), lines
    assert any(
        "INFO bot.web.webhooks: alertmanager webhook: group " in line
        and line.endswith(f", 1 alert: open incident {incident}")
        for line in lines
    ), lines
    assert any(
        line.endswith(f"INFO bot.incidents: incident {incident}: new -> triggered by alertmanager")
        for line in lines
    ), lines
    assert WRONG not in log.read_text()

    quiet_log = tmp_path / "quiet.log"
    async with running_emulator() as (_emulator, api):
        quiet = serve(tmp_path, api, TOCSIN_LOG_LEVEL="warning")
        quiet.log_path = quiet_log
        await quiet.start()
        try:
            status, _ = await post_webhook(quiet.url, contract_payload(PAYLOAD), token=TOKEN)
            assert status == 200
        finally:
            quiet.stop()
    assert " INFO " not in quiet_log.read_text()


async def test_at_debug_a_webhook_that_changed_nothing_has_its_line_too(tmp_path: Path) -> None:
    """An alert storm's repeats and updates stay out of the INFO log; at DEBUG each is there."""
    async with running_emulator() as (_emulator, api):
        process = serve(tmp_path, api, TOCSIN_LOG_LEVEL="debug", TOCSIN_LOG_FORMAT="json")
        await process.start()
        try:
            for _ in range(2):
                status, _answer = await post_webhook(
                    process.url, contract_payload(PAYLOAD), token=TOKEN
                )
                assert status == 200
        finally:
            process.stop()
    found = records(tmp_path / "serve.log")
    assert one(found, source="alertmanager", decision="open")["level"] == "INFO"
    again = one(found, source="alertmanager", decision="duplicate")
    assert again["level"] == "DEBUG" and again["incident"] is None
    assert again["message"].endswith(", 1 alert: duplicate")
