"""The sandbox page in a real browser: paging between its people, a restart of the server
under an open page, and the first screen."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.harness import ServeProcess

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def say(url: str, channel: str, text: str) -> None:
    """Post a message into the sandbox as its first person, outside the browser."""
    request = urllib.request.Request(
        f"{url}/sandbox/command",
        data=json.dumps({"channel": channel, "text": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def test_a_page_escalated_to_the_second_level_is_acknowledged_from_that_persons_dm(
    sandbox: ServeProcess, browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{sandbox.url}/sandbox")
    paging = page.locator("#paging")
    expect(paging).to_contain_text("Rotation primary")
    expect(paging).to_contain_text("Sandbox User, Ada Lovelace, Grace Hopper")
    expect(paging).to_contain_text("Policy sandbox (default)")
    expect(paging).to_contain_text("on call in primary — 2m")
    expect(paging).to_contain_text("@Alan Turing — 2m")

    page.select_option("#drill-alert", "HighErrorRate")
    page.click("#fire-drill")
    expect(page.locator("#drill-report")).to_contain_text("card posted", timeout=30_000)
    card = page.locator("#messages .msg.pinned")
    expect(card).to_contain_text("level 1")

    page.select_option("#lead-person", label="Grace Hopper")
    page.click("#set-lead")
    expect(page.locator("#messages")).to_contain_text("@Grace Hopper is now the incident lead")

    card.get_by_role("button", name="Escalate").click()
    expect(card).to_contain_text("@Alan Turing")  # paged at level 2

    page.select_option("#you", label="Alan Turing")
    dm = page.locator("#channels a", has_text="● tocsin")
    dm.click()
    expect(page.locator("#channel-name")).to_contain_text("tocsin")
    dm_card = page.locator("#messages .msg", has_text="[DRILL] 5xx above 5% on api").last
    dm_card.get_by_role("button", name="Acknowledge").click()
    expect(dm_card).to_contain_text("acknowledged by @Alan Turing")


def test_an_open_page_follows_the_server_across_a_restart(
    sandbox: ServeProcess, browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{sandbox.url}/sandbox")
    expect(page.locator("#channel-name")).to_contain_text("alerts")
    alerts = page.locator("#channels a", has_text="alerts").get_attribute("data-channel")
    assert alerts is not None
    say(sandbox.url, alerts, "before the restart")
    expect(page.locator("#messages")).to_contain_text("before the restart")
    banner = page.locator("#disconnected")
    expect(banner).to_be_hidden()

    sandbox.stop()
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Disconnected")
    expect(page.locator("body")).not_to_contain_text("Failed to fetch")

    with ThreadPoolExecutor(1) as thread:  # Playwright's loop runs in this one
        thread.submit(lambda: asyncio.run(sandbox.start())).result()
    expect(banner).to_be_hidden()
    say(sandbox.url, alerts, "after the restart")
    expect(page.locator("#messages")).to_contain_text("after the restart")
    expect(page.locator("#messages")).to_contain_text("before the restart")


def test_first_screen_root_favicon_and_a_narrow_window(sandbox: ServeProcess, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{sandbox.url}/")
    assert page.url == f"{sandbox.url}/sandbox"
    hint = page.locator("#hint")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("Fire a drill: pick an alert above, or run tocsin drill")
    icon = page.request.get(f"{sandbox.url}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    picker = page.locator("#drill-alert")
    page.select_option("#drill-alert", "DatabaseConnectionLoss")
    fits = picker.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    assert fits, "the drill picker cuts its longest alert name"
    fire = page.locator("#fire-drill").bounding_box()
    sidebar = page.locator("#sidebar").bounding_box()
    assert fire is not None and sidebar is not None
    assert fire["x"] + fire["width"] <= sidebar["x"] + sidebar["width"]

    page.set_viewport_size({"width": 380, "height": 700})
    expect(page.locator("#channels")).to_be_hidden()
    page.click("#menu")
    expect(page.locator("#channels")).to_be_visible()
    page.locator("#channels a", has_text="alerts").click()
    expect(page.locator("#channels")).to_be_hidden()
    expect(page.locator("#composer-text")).to_be_visible()
