"""Real view_submission bodies (bolt-python's and python-slack-sdk's test fixtures,
tests/slack/payloads) re-aimed at Tocsin's declare form: a form Tocsin did not make, an old
one, empty or odd state is answered with field errors or a modal that says what to do, never
a 5xx or a 404."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from bot.domain.incidents import Severity
from bot.slack import ids
from bot.slack.emulator.outbound import block_action_body, post_signed
from commands.incident import declare_modal
from tests.commands.conftest import ALICE, Workspace
from tests.harness import SIGNING_SECRET, eventually

PAYLOADS = Path(__file__).resolve().parents[1] / "slack" / "payloads"
FOREIGN = [
    "bolt-view-submission.json",
    "bolt-view-submission-slack-connect.json",
    "bolt-view-submission-org-wide.json",
]


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def aimed(body: dict[str, Any], values: Any | None = None) -> dict[str, Any]:
    """The body re-aimed at Tocsin's declare form, by a person of the emulated workspace."""
    body = copy.deepcopy(body)
    body["view"]["callback_id"] = ids.DECLARE_MODAL
    body["user"] = {**body["user"], "id": ALICE}
    if values is not None:
        body["view"]["state"] = values
    return body


def ours(title: Any, severity: Any) -> dict[str, Any]:
    """Tocsin's declare form as submitted: state with the given element states."""
    body = aimed(fixture("bolt-view-submission.json"))
    body["view"]["blocks"] = declare_modal()["blocks"]
    body["view"]["state"] = {"values": {"title": {"value": title}, "severity": {"value": severity}}}
    return body


async def submit(ws: Workspace, body: dict[str, Any]) -> tuple[int, Any]:
    reply = await post_signed(
        ws.events_url, block_action_body(body), secret=SIGNING_SECRET, timestamp=int(time.time())
    )
    try:
        answer = json.loads(reply.body) if reply.body.strip() else None
    except ValueError:
        answer = reply.body
    return reply.status, answer


def outdated(answer: Any) -> str:
    """The text of the modal Tocsin answers with instead of the form (response_action update)."""
    assert isinstance(answer, dict) and answer["response_action"] == "update", answer
    view = answer["view"]
    assert view["type"] == "modal" and "submit" not in view
    return " ".join(b["text"]["text"] for b in view["blocks"] if b.get("text"))


@pytest.mark.parametrize("name", FOREIGN)
async def test_a_form_tocsin_did_not_make_gets_a_modal_saying_what_to_do(
    ws: Workspace, name: str
) -> None:
    status, answer = await submit(ws, aimed(fixture(name)))
    assert status == 200
    assert "/incident declare" in outdated(answer)
    assert await ws.bot.app.services.incidents.open_incidents() == []


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"values": {}},
        fixture("sdk-all-state-values.json"),
    ],
    ids=["no-values", "empty-values", "every-input-type"],
)
async def test_empty_or_foreign_state_gets_a_modal_saying_what_to_do(
    ws: Workspace, state: dict[str, Any]
) -> None:
    body = aimed(fixture("bolt-view-submission.json"), state)
    body["view"]["blocks"] = declare_modal()["blocks"]
    status, answer = await submit(ws, body)
    assert status == 200
    assert "/incident declare" in outdated(answer)


@pytest.mark.parametrize(
    ("title", "severity", "field", "says"),
    [
        ({"type": "plain_text_input", "value": None}, None, "title", "Say what is wrong"),
        ({"type": "plain_text_input", "value": "   "}, None, "title", "Say what is wrong"),
        ({"type": "plain_text_input"}, None, "title", "Say what is wrong"),
        (
            {"type": "plain_text_input", "value": "Checkout down"},
            {"type": "static_select", "selected_option": None},
            "severity",
            "Choose a severity",
        ),
        (
            {"type": "plain_text_input", "value": "Checkout down"},
            {"type": "static_select", "selected_option": {"value": "sev9"}},
            "severity",
            "sev9",
        ),
        (
            {"type": "plain_text_input", "value": "Checkout down"},
            {"type": "static_select", "selected_option": {"text": "no value"}},
            "severity",
            "Choose a severity",
        ),
    ],
)
async def test_a_missing_or_unknown_field_is_named(
    ws: Workspace, title: Any, severity: Any, field: str, says: str
) -> None:
    body = ours(title, severity)
    if severity is None:
        body["view"]["state"]["values"]["severity"] = {
            "value": {"type": "static_select", "selected_option": {"value": "sev2"}}
        }
    status, answer = await submit(ws, body)
    assert status == 200
    assert answer["response_action"] == "errors", answer
    assert list(answer["errors"]) == [field]
    assert says in answer["errors"][field]
    assert await ws.bot.app.services.incidents.open_incidents() == []


async def test_a_good_form_declares_and_an_old_one_without_severity_too(ws: Workspace) -> None:
    good = ours(
        {"type": "plain_text_input", "value": "Checkout down"},
        {"type": "static_select", "selected_option": {"value": "sev1"}},
    )
    assert await submit(ws, good) == (200, None)
    # A form from before severities were asked for: the default severity.
    old = aimed(fixture("bolt-view-submission.json"))
    old["view"]["blocks"] = declare_modal()["blocks"][:1]
    old["view"]["state"] = {
        "values": {"title": {"an_old_action_id": {"type": "plain_text_input", "value": "Slow db"}}}
    }
    assert await submit(ws, old) == (200, None)

    async def both() -> bool:
        return len(await ws.bot.app.services.incidents.open_incidents()) == 2

    await eventually(both, what="two incidents declared")
    declared = {i.title: i.severity for i in await ws.bot.app.services.incidents.open_incidents()}
    assert declared == {"Checkout down": Severity.SEV1, "Slow db": Severity.SEV3}
