"""A real browser drives the sandbox page of a real `tocsin serve`: drill, Acknowledge, timeline."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

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

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is needed")


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


def test_drill_acknowledge_and_timeline_in_a_real_browser(sandbox: ServeProcess) -> None:
    expect = sync_api.expect
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(f"{sandbox.url}/sandbox")
            expect(page.locator("#channels")).to_contain_text("alerts")

            page.select_option("#drill-alert", "HighErrorRate")
            page.click("#fire-drill")
            expect(page.locator("#channels")).to_contain_text("higherrorrate-drill-")
            expect(page.locator("#drill-report")).to_contain_text("card posted", timeout=30_000)
            expect(page.locator("#channel-name")).to_contain_text("inc-")
            card = page.locator("#messages .msg.pinned")
            expect(card.locator(".bk-header")).to_contain_text("[DRILL] 5xx above 5% on api")
            expect(card).to_contain_text("triggered")
            expect(page.locator("#pins-summary")).to_contain_text("1 pinned")

            card.get_by_role("button", name="Acknowledge").click()
            expect(card).to_contain_text("acknowledged by @Sandbox User")
            expect(page.locator("#channel-topic")).to_contain_text("acknowledged")

            page.fill("#composer-text", "/incident timeline")
            page.press("#composer-text", "Enter")
            timeline = page.locator("#messages .msg.ephemeral", has_text="Timeline")
            expect(timeline).to_contain_text("Only visible to you")
            expect(timeline).to_contain_text("Incident opened: [DRILL]")
            expect(timeline).to_contain_text("Acknowledged by @Sandbox User")
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "sandbox-drill.png"), full_page=True)
            browser.close()
