"""A real browser drives the sandbox page of a real `tocsin serve`: drill, Acknowledge, timeline."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import ServeProcess

sync_api = pytest.importorskip("playwright.sync_api")


def test_drill_acknowledge_and_timeline_in_a_real_browser(
    sandbox: ServeProcess, browser: Any
) -> None:
    expect = sync_api.expect
    page = browser.new_page(viewport={"width": 1280, "height": 900})
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
    # With no Prometheus, Sentry or Supabase configured, the sandbox's demo sources answer:
    # the diagnostics below the card have a graph and tables, each said to be demo data.
    messages = page.locator("#messages")
    expect(messages.locator("figure img").first).to_be_visible(timeout=60_000)
    expect(messages.locator(".msg", has_text="5xx ratio by service").first).to_contain_text(
        "demo data", timeout=60_000
    )

    card.get_by_role("button", name="Acknowledge").click()
    expect(card).to_contain_text("acknowledged by @Sandbox User")
    expect(page.locator("#channel-topic")).to_contain_text("acknowledged")

    page.fill("#composer-text", "/incident timeline")
    page.press("#composer-text", "Enter")
    timeline = page.locator("#messages .msg.ephemeral", has_text="Timeline")
    expect(timeline).to_contain_text("Only visible to you")
    expect(timeline).to_contain_text("Incident opened: [DRILL]")
    expect(timeline).to_contain_text("Acknowledged by @Sandbox User")
