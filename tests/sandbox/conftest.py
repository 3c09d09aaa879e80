"""A real `tocsin serve` with no Slack token, and a real browser on its sandbox page."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ServeProcess
from tests.realservers import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[ServeProcess]:
    """`tocsin serve` with no Slack token: the sandbox workspace, on a temporary SQLite file."""
    serve = ServeProcess(
        {"TOCSIN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"},
        free_port(),
        tmp_path / "serve.log",
    )
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        serve.env.pop(name, None)
    asyncio.run(serve.start())
    try:
        yield serve
    finally:
        serve.stop()


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Chromium through Playwright; the last page of each test is kept as a screenshot."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is needed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            for number, page in enumerate(p for c in launched.contexts for p in c.pages):
                name = f"{request.node.name}-{number}.png"
                page.screenshot(path=str(ARTIFACTS / name), full_page=True)
            launched.close()
