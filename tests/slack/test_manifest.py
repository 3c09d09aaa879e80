"""manifest.yml lists exactly the commands the code registers and the scopes its calls need."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.slack import ids

ROOT = Path(__file__).resolve().parents[2]
# Web API method -> the bot scope it needs (docs.slack.dev method pages).
SCOPE_OF = {
    "auth.test": None,
    "views.open": None,
    "views.update": None,
    "conversations.create": "channels:manage",
    "conversations.setTopic": "channels:manage",
    "conversations.archive": "channels:manage",  # public channels (REF; private: groups:write)
    "conversations.invite": "channels:manage",
    "conversations.list": "channels:read",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",  # the same scopes as history (REF)
    "conversations.join": "channels:join",
    "conversations.open": "im:write",
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "pins.add": "pins:write",
    "usergroups.users.list": "usergroups:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
CALL = re.compile(r"""(?:\.call|api_call)\(\s*["']([a-z]+\.[A-Za-z.]+)["']""")
SDK_CALL = re.compile(r"client\.(views_open|chat_postMessage|views_update)\(")


def methods_called() -> set[str]:
    found: set[str] = set()
    for folder in ("bot", "commands", "integrations"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name.startswith("emulator"):
                continue
            text = path.read_text()
            found |= set(CALL.findall(text))
            found |= {m.replace("_", ".", 1) for m in SDK_CALL.findall(text)}
    return found


def manifest() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "manifest.yml").read_text())  # type: ignore[no-any-return]


def test_manifest_commands_match_the_registered_ones() -> None:
    listed = {c["command"] for c in manifest()["features"]["slash_commands"]}
    assert listed == set(ids.COMMANDS)
    for command in manifest()["features"]["slash_commands"]:
        assert command["url"].endswith("/slack/events")
        # /incident and /oncall take mentions, which must arrive as <@U…|name>.
        assert command["should_escape"] is (command["command"] != ids.DIAG_COMMAND)


def test_manifest_scopes_are_exactly_the_ones_used() -> None:
    called = methods_called()
    unknown = called - SCOPE_OF.keys()
    assert unknown == set(), f"add these methods' scopes to the test table: {unknown}"
    needed = {SCOPE_OF[m] for m in called} - {None} | {"commands"}
    # A page's DM is posted once: after an uncertain try Tocsin reads the DM's history, which
    # for a conversation of type im needs im:history (REF conversations.history scopes).
    needed |= {"im:history"}
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == needed


def test_the_socket_mode_switch_is_the_only_change_socket_mode_needs() -> None:
    """SCHEMA: socket_mode_enabled turns Socket Mode on; commands and interactivity then come
    over the socket (semantics.md), so the rest of the manifest serves both ways."""
    text = (ROOT / "manifest.yml").read_text()
    assert text.count("socket_mode_enabled: false") == 1
    switched = yaml.safe_load(
        text.replace("socket_mode_enabled: false", "socket_mode_enabled: true")
    )
    assert switched["settings"]["socket_mode_enabled"] is True
    assert switched["settings"]["interactivity"]["is_enabled"] is True
    assert {c["command"] for c in switched["features"]["slash_commands"]} == set(ids.COMMANDS)
    readme = (ROOT / "README.md").read_text()
    assert "socket_mode_enabled: true" in readme and "connections:write" in readme


def test_interactivity_points_at_slack_events() -> None:
    settings = manifest()["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
