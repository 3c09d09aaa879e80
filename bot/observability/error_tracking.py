"""The bot's own error reporting (sentry-sdk), initialised only when SENTRY_DSN is set."""

from __future__ import annotations

import sentry_sdk

from bot.config import Settings


def init_error_tracking(settings: Settings) -> bool:
    """Start sentry-sdk for Tocsin's own errors; True when it was started."""
    if settings.sentry_dsn is None:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        send_default_pii=False,
        traces_sample_rate=0.0,
    )
    return True
