"""`tocsin config check [FILE]` and `tocsin config example`: the settings as Tocsin will read
them, where each came from, and a commented tocsin.yml to start from.

The check reads exactly what `tocsin serve` reads at start (the environment, tocsin.yml, the
playbooks), with the same validation, so what it accepts starts and what it refuses does not.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bot.config.playbooks import load_dir
from bot.config.settings import LoadedSettings, Settings, load_config


def example_text() -> str:
    """The commented example tocsin.yml shipped with Tocsin."""
    return files("bot.config").joinpath("tocsin.example.yml").read_text(encoding="utf-8")


def print_example() -> int:
    """`tocsin config example`: print it (`> tocsin.yml` to start from it)."""
    sys.stdout.write(example_text())
    return 0


def check(file: Path | None, environ: Mapping[str, str]) -> int:
    """`tocsin config check`: 0 and the effective settings when everything is valid; 1 and each
    playbook problem (file:line: reason) otherwise. A wrong setting raises ConfigError (exit 2,
    one line naming the variable, or the file and line)."""
    env = {**environ, "TOCSIN_CONFIG": str(file)} if file is not None else environ
    loaded = load_config(env)
    playbooks, problems = load_dir(loaded.settings.playbooks_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    source = f"{loaded.path}" if loaded.path is not None else "no tocsin.yml (defaults)"
    print(f"{source}: OK; {len(playbooks)} playbooks OK in {loaded.settings.playbooks_dir}")
    width = max(len(name) for name in Settings.model_fields)
    for name, shown, origin in effective(loaded):
        print(f"{name.ljust(width)} = {shown}  ({origin})")
    return 0


def effective(loaded: LoadedSettings) -> Iterator[tuple[str, str, str]]:
    """(setting, value as shown, origin) for every setting; secrets are never shown."""
    settings = loaded.settings
    for name in Settings.model_fields:
        value = getattr(settings, name)
        yield name, _shown(name, value), loaded.origins.get(name, "default")


def _shown(name: str, value: Any) -> str:
    if isinstance(value, SecretStr):
        return "set (hidden)" if value.get_secret_value() else "not set"
    if value is None:
        return "not set"
    if name == "people":
        shown = {user: person.shown() for user, person in value.items()}
        return json.dumps(shown, separators=(", ", ": "), ensure_ascii=False)
    if name == "database_url":
        return make_url(str(value)).render_as_string(hide_password=True)
    if hasattr(value, "model_dump"):
        return json.dumps(value.model_dump(mode="json"), separators=(", ", ": "))
    return str(value)
