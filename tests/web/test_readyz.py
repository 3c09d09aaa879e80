"""/readyz: ready when what the bot needs to run is; the outside dependencies it can run
without are reported beside, as information, and never make it unready."""

from __future__ import annotations

import aiohttp

from bot.config import Settings
from tests.harness import running_bot, running_emulator
from tests.realservers import free_port


async def test_a_failing_outside_dependency_is_reported_and_the_bot_stays_ready(
    database_url: str,
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"

    def tweak(settings: Settings) -> None:
        settings.alertmanager_url = unreachable

    async with (
        running_emulator() as (emulator, emulator_url),
        running_bot(database_url, emulator, emulator_url, tweak=tweak) as bot,
        aiohttp.ClientSession() as session,
        session.get(f"{bot.url}/readyz") as response,
    ):
        status, answer = response.status, await response.json()
    assert status == 200 and answer["ok"] is True
    assert set(answer["checks"]) == {"store", "schema", "outbox", "timers"}
    outside = answer["dependencies"]
    # Configured ones only: Prometheus, Sentry and Supabase are not set up here.
    assert set(outside) == {"slack", "alertmanager"}
    assert outside["slack"]["state"] == "ok"
    assert outside["alertmanager"] == {
        "state": "fail",
        "detail": "failing: Alertmanager unreachable: ClientConnectorError",
    }
