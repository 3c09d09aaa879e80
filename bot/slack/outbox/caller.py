"""One Slack Web API call at a time, paced by the rate limiter, with errors sorted by what to do."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import SlackCallError
from bot.observability.metrics import Metrics
from bot.retry_after import retry_after_seconds
from bot.slack.outbox.budget import SharedBudget
from bot.slack.outbox.ratelimit import PER_CHANNEL_METHODS, RateLimiter


class RetryLater(Exception):
    """The call did not happen; try the job again after `after` seconds."""

    def __init__(
        self,
        after: float,
        reason: str,
        *,
        counts_attempt: bool,
        failure: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.after = after
        self.reason = reason
        self.counts_attempt = counts_attempt
        # (method, error code) when Slack failed the call; None when it was only held back.
        self.failure = failure


_JSON_PREFIXES = (
    "chat.",
    "conversations.create",
    "conversations.invite",
    "conversations.setTopic",
    "conversations.join",
    "pins.",
    "views.",
)
_TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})


class SlackCaller:
    """Makes Web API calls for outbox jobs; never sends one that the limiter holds back."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        limiter: RateLimiter,
        metrics: Metrics,
        timeout: float = 30.0,
        budget: SharedBudget | None = None,
    ) -> None:
        self.client = client
        self.budget = budget
        self.limiter = limiter
        self.metrics = metrics
        self.timeout = timeout
        self._locks: dict[tuple[str, str | None], asyncio.Lock] = {}

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call `method`, or raise RetryLater / SlackCallError."""
        ref = params.get("channel")
        channel = ref if isinstance(ref, str) else None
        # One call of a method (per channel for posting) in flight at a time: a 429 then
        # reaches us before the next call leaves, so none is sent while Retry-After runs.
        key = (method, channel if method in PER_CHANNEL_METHODS else None)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            return await self._call(method, channel, params)

    async def _call(
        self, method: str, channel: str | None, params: dict[str, Any]
    ) -> dict[str, Any]:
        wait = self.limiter.try_acquire(method, channel)
        if wait > 0:
            self.metrics.rate_limited_waits.labels(method, "local").inc()
            raise RetryLater(wait, f"{method} paced for {wait:.1f}s", counts_attempt=False)
        if self.budget is not None:
            try:
                await self.budget.spend(method)
            except Exception as exc:
                # Not written down, not sent: a sender after this one could not count it.
                raise RetryLater(
                    1.0, f"{method}: the call could not be written down", counts_attempt=False
                ) from exc
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(self._send(method, params), timeout=self.timeout)
        except SlackApiError as exc:
            return self._failed(method, exc)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.metrics.slack_calls.labels(method, "network_error").inc()
            code = type(exc).__name__
            raise RetryLater(
                2.0, f"{method}: {code}", counts_attempt=True, failure=(method, code)
            ) from None
        finally:
            self.limiter.settle(method, channel)
            self.metrics.slack_call_seconds.labels(method).observe(time.perf_counter() - started)
        self.metrics.slack_calls.labels(method, "ok").inc()
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def _send(self, method: str, params: dict[str, Any]) -> Any:
        # Slack takes JSON bodies on write methods only; read methods get form fields.
        if method.startswith(_JSON_PREFIXES):
            return await self.client.api_call(method, json=params)
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        return await self.client.api_call(method, data=form)

    def _failed(self, method: str, exc: SlackApiError) -> dict[str, Any]:
        status = exc.response.status_code
        code = str(exc.response.get("error") or f"http_{status}")
        if status == 429:
            after = _retry_after(exc.response.headers)
            self.limiter.block(method, after)
            self.metrics.slack_calls.labels(method, "ratelimited").inc()
            self.metrics.rate_limited_waits.labels(method, "retry_after").inc()
            raise RetryLater(
                after,
                f"{method}: ratelimited, Retry-After {after:.0f}s",
                counts_attempt=False,
                failure=(method, "ratelimited"),
            )
        self.metrics.slack_calls.labels(method, code if len(code) < 40 else "error").inc()
        if status >= 500 or code in _TRANSIENT:
            raise RetryLater(2.0, f"{method}: {code}", counts_attempt=True, failure=(method, code))
        data = exc.response.data
        raise SlackCallError(method, code, dict(data) if isinstance(data, dict) else None)


def _retry_after(headers: Any) -> float:
    """Slack's Retry-After (at least a second); 30 s when it sends none."""
    seconds = retry_after_seconds(dict(headers or {}), now=time.time())
    return max(1.0, seconds) if seconds is not None else 30.0
