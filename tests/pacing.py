"""Slack's documented rate limits, and the same limits with time sped up by a scale.

At scale X every window is X times shorter and per-channel posting X times faster, in the
emulator and in Tocsin alike: the shape of the limits (which call waits for which) is Slack's,
a storm of minutes takes seconds. Scale 1 is Slack's own limits.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from bot.config import OutboxSettings
from bot.slack.emulator import RateLimit, documented_rate_limits

REPO = Path(__file__).resolve().parents[1]
SLACK_WINDOW = 60.0


def scaled_limits(scale: float) -> dict[str, RateLimit]:
    """Slack's documented limits with every window divided (and per-channel rate multiplied)."""
    return {
        method: dataclasses.replace(
            limit,
            window_seconds=limit.window_seconds / scale,
            per_channel_per_second=(
                limit.per_channel_per_second * scale if limit.per_channel_per_second else None
            ),
        )
        for method, limit in documented_rate_limits().items()
    }


def scaled_server(
    workdir: Path, scale: float, config: dict[str, Any] | None = None
) -> tuple[Path, dict[str, str]]:
    """tocsin.yml (with `config`) for a `tocsin serve` paced at `scale`, and the extra
    environment that goes with the scale. What runs on it measures every alert group's own
    channel and page at Slack's pace: storm mode, which would fold most of them into one
    storm incident, is off unless `config` turns it on."""
    defaults = OutboxSettings()
    settings = {
        "alerts_channel": "alerts",
        "storm": False,
        **(config or {}),
        "outbox": {
            "tier_per_minute": defaults.tier_per_minute,
            "per_channel_per_second": defaults.per_channel_per_second * scale,
        },
    }
    path = workdir / "tocsin.yml"
    path.write_text(yaml.safe_dump(settings))
    python_path = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    if scale != 1.0:
        # Tocsin's pacing window is a module constant; shrink it in the server process only.
        shim = workdir / "shim"
        shim.mkdir(exist_ok=True)
        (shim / "sitecustomize.py").write_text(
            "import bot.slack.outbox.ratelimit as _ratelimit\n"
            f"_ratelimit.WINDOW = {SLACK_WINDOW / scale!r}\n"
        )
        python_path.insert(0, str(shim))
    return path, {"PYTHONPATH": os.pathsep.join(python_path)}
