"""Client-side pacing of Slack Web API calls: per-method tiers, per-channel posting, Retry-After."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Mapping

# Slack's published tiers (contracts §1.5); unknown methods are treated as Tier 3.
METHOD_TIERS: dict[str, str] = {
    "auth.test": "special",
    "conversations.create": "2",
    "conversations.setTopic": "2",
    "conversations.setPurpose": "2",
    "conversations.archive": "2",
    "conversations.list": "2",
    "conversations.history": "3",
    "conversations.replies": "3",
    "conversations.info": "3",
    "conversations.join": "3",
    "conversations.members": "4",
    "pins.add": "2",
    "usergroups.users.list": "2",
    "conversations.invite": "3",
    "conversations.open": "3",
    "chat.update": "3",
    "chat.getPermalink": "special",
    "chat.postMessage": "special",
    "chat.postEphemeral": "4",
    "views.open": "4",
    "views.update": "4",
    "files.getUploadURLExternal": "4",
    "files.completeUploadExternal": "4",
    "users.info": "4",
}
PER_CHANNEL_METHODS = frozenset({"chat.postMessage"})
WINDOW = 60.0


class RateLimiter:
    """Decides when the next call of a method may go, so Slack never has to say 429.

    Each method may make `per_minute` calls in any sliding 60-second window (stricter
    than Slack's fixed windows); posts to one channel are spaced by `1/per_channel`
    seconds; a 429 blocks its method until `Retry-After` has passed.
    """

    def __init__(
        self,
        *,
        tier_per_minute: Mapping[str, int],
        per_channel_per_second: float,
        clock: Callable[[], float],
        method_tiers: Mapping[str, str] = METHOD_TIERS,
    ) -> None:
        self._tier_per_minute = dict(tier_per_minute)
        self._method_tiers = dict(method_tiers)
        self._channel_gap = 1.0 / per_channel_per_second
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._channel_next: dict[str, float] = {}

    @property
    def channel_gap(self) -> float:
        """Seconds between two posts to one channel."""
        return self._channel_gap

    def limit_of(self, method: str) -> int:
        """Calls per minute allowed for a method."""
        tier = self._method_tiers.get(method, "3")
        return self._tier_per_minute.get(tier, self._tier_per_minute.get("3", 50))

    def wait_for(self, method: str, channel: str | None = None) -> float:
        """Seconds until a call of `method` (to `channel`) may be made; 0 means now."""
        now = self._clock()
        waits = [self._blocked_until.get(method, 0.0) - now]
        calls = self._calls.get(method)
        if calls is not None:
            while calls and calls[0] <= now - WINDOW:
                calls.popleft()
            if len(calls) >= self.limit_of(method):
                waits.append(calls[0] + WINDOW - now)
        if channel is not None and method in PER_CHANNEL_METHODS:
            waits.append(self._channel_next.get(channel, 0.0) - now)
        return max(0.0, *waits)

    def room(self, method: str) -> int:
        """How many calls of `method` may go right now (channels aside)."""
        if self.wait_for(method) > 0:
            return 0
        return self.limit_of(method) - len(self._calls.get(method, ()))

    def try_acquire(self, method: str, channel: str | None = None) -> float:
        """Record a call and return 0 if it may go now; else return the wait and record nothing."""
        wait = self.wait_for(method, channel)
        if wait > 0:
            return wait
        now = self._clock()
        self._calls.setdefault(method, deque()).append(now)
        if channel is not None and method in PER_CHANNEL_METHODS:
            self._channel_next[channel] = now + self._channel_gap
        return 0.0

    def settle(self, method: str, channel: str | None = None) -> None:
        """Date the call of `method` just answered by its answer, not by when it left.

        Slack counts a call when it arrives, after it left here; a window measured from the
        leaving could end a moment before Slack's and its next call be refused (429, and a
        Retry-After of at least a second). A big message may take a while to arrive, and a
        channel's next post measured from the leaving could reach Slack less than a second
        after it. The answer comes after the arrival, so a window or a gap measured from it
        never ends early. Calls of a tier method go one at a time (SlackCaller), so the
        newest recorded call is the one answered; posts go one at a time per channel.
        """
        now = self._clock()
        if method in PER_CHANNEL_METHODS:
            if channel is not None and channel in self._channel_next:
                self._channel_next[channel] = max(
                    self._channel_next[channel], now + self._channel_gap
                )
            return
        calls = self._calls.get(method)
        if calls:
            calls[-1] = max(calls[-1], now)

    def forget_calls(self) -> None:
        """Drop every call counted (before counting them again from elsewhere: `restore`)."""
        self._calls.clear()

    def restore(self, method: str, ago: float) -> None:
        """Count a call of `method` made `ago` seconds before now by another sender (the app's
        budget is one, whoever spent it)."""
        at = self._clock() - ago
        calls = self._calls.setdefault(method, deque())
        calls.insert(bisect.bisect_right(calls, at), at)

    def block(self, method: str, retry_after: float) -> None:
        """Obey a 429: no call of `method` until `retry_after` seconds from now."""
        until = self._clock() + max(retry_after, 0.0)
        self._blocked_until[method] = max(self._blocked_until.get(method, 0.0), until)
