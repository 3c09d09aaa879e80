"""Slack Web API rate limits (contracts 1.5) and the emulator's fixed-window limiter."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

POST_MESSAGE = "chat.postMessage"
DEFAULT_BURST = 3


@dataclass(frozen=True)
class RateLimit:
    """At most `calls` per `window_seconds` per method (fixed windows starting at a first call).

    For chat.postMessage, `per_channel_per_second` adds Slack's per-channel limit as a token
    bucket refilled at that rate and holding up to `per_channel_burst` messages.
    """

    calls: int
    window_seconds: float = 60.0
    retry_after: int | None = None  # None = seconds until the current window ends (ceil, >= 1)
    per_channel_per_second: float | None = None
    per_channel_burst: int = DEFAULT_BURST


# Tiers from slackapi/java-slack-sdk@02a29a7 MethodsRateLimits.java (the source of contracts 1.5).
TIER_METHODS: dict[str, int | str] = {
    "auth.test": "special",
    "bookmarks.add": 2,
    "chat.getPermalink": "special",
    "chat.postEphemeral": 4,
    POST_MESSAGE: "special",
    "chat.update": 3,
    "conversations.archive": 2,
    "conversations.create": 2,
    "conversations.history": 3,
    "conversations.info": 3,
    "conversations.invite": 3,
    "conversations.open": 3,
    "conversations.join": 3,
    "conversations.list": 2,
    "conversations.members": 4,
    "conversations.replies": 3,
    "conversations.setPurpose": 2,
    "conversations.setTopic": 2,
    "files.completeUploadExternal": 4,
    "files.getUploadURLExternal": 4,
    "pins.add": 2,
    "pins.list": 2,
    "pins.remove": 2,
    "reactions.add": 3,
    "usergroups.users.list": 2,
    "users.info": 4,
    "users.lookupByEmail": 3,
    "views.open": 4,
    "views.update": 4,
}
TIER_CALLS_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
POST_MESSAGE_PER_MINUTE = 600  # "several hundred messages per minute" per workspace


def documented_rate_limits() -> dict[str, RateLimit]:
    """Return Slack's documented per-method limits (tier minimums; chat.postMessage special)."""
    limits = {
        method: RateLimit(calls=TIER_CALLS_PER_MINUTE[tier])
        for method, tier in TIER_METHODS.items()
        if isinstance(tier, int)
    }
    limits[POST_MESSAGE] = RateLimit(calls=POST_MESSAGE_PER_MINUTE, per_channel_per_second=1.0)
    return limits


@dataclass
class _Window:
    start: float
    count: int


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Counts performed calls and remembers every Retry-After it announced."""

    def __init__(
        self,
        limits: dict[str, RateLimit],
        per_channel_post: float | None,
        per_channel_burst: int,
        clock: Callable[[], float],
    ) -> None:
        self.limits = dict(limits)
        self._per_channel = per_channel_post
        self._burst = per_channel_burst
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._blocked: dict[tuple[str, str | None], float] = {}

    def set(self, method: str, limit: RateLimit | None) -> None:
        """Replace (or remove) the limit of a method and restart its window."""
        self._windows.pop(method, None)
        if limit is None:
            self.limits.pop(method, None)
        else:
            self.limits[method] = limit

    def is_blocked(self, method: str, channel: str | None, now: float) -> bool:
        """Tell whether an announced Retry-After for this method (or channel) is still running."""
        keys = [(method, None), (method, channel)] if channel else [(method, None)]
        return any(now < self._blocked.get(key, -math.inf) for key in keys)

    def acquire(self, method: str, channel: str | None) -> int | None:
        """Count a call if allowed; otherwise return the Retry-After seconds to announce."""
        now = self._clock()
        window = self._window(method, now)
        retry = self._window_retry(method, window, now)
        key: tuple[str, str | None] = (method, None)
        if retry is None and method == POST_MESSAGE and channel:
            retry, key = self._bucket_retry(channel, now), (method, channel)
        if retry is not None:
            self._blocked[key] = max(self._blocked.get(key, -math.inf), now + retry)
            return retry
        if window is not None:
            window.count += 1
            self._windows[method] = window
        if method == POST_MESSAGE and channel:
            self._take_token(channel, now)
        return None

    def _window(self, method: str, now: float) -> _Window | None:
        limit = self.limits.get(method)
        if limit is None:
            return None
        window = self._windows.get(method)
        if window is None or now >= window.start + limit.window_seconds:
            return _Window(start=now, count=0)
        return window

    def _window_retry(self, method: str, window: _Window | None, now: float) -> int | None:
        limit = self.limits.get(method)
        if limit is None or window is None or window.count < limit.calls:
            return None
        if limit.retry_after is not None:
            return limit.retry_after
        return max(1, math.ceil(window.start + limit.window_seconds - now))

    def _channel_rate(self) -> tuple[float, int] | None:
        limit = self.limits.get(POST_MESSAGE)
        if self._per_channel is not None:
            return self._per_channel, self._burst
        if limit is not None and limit.per_channel_per_second is not None:
            return limit.per_channel_per_second, limit.per_channel_burst
        return None

    def _tokens(self, channel: str, now: float) -> float:
        rate = self._channel_rate()
        assert rate is not None
        bucket = self._buckets.get(channel)
        if bucket is None:
            return float(rate[1])
        return min(float(rate[1]), bucket.tokens + (now - bucket.updated) * rate[0])

    def _bucket_retry(self, channel: str, now: float) -> int | None:
        rate = self._channel_rate()
        if rate is None:
            return None
        tokens = self._tokens(channel, now)
        if tokens >= 1.0:
            return None
        return max(1, math.ceil((1.0 - tokens) / rate[0]))

    def _take_token(self, channel: str, now: float) -> None:
        if self._channel_rate() is not None:
            self._buckets[channel] = _Bucket(tokens=self._tokens(channel, now) - 1.0, updated=now)
