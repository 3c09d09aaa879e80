"""Every dependency at a glance: each probed on its own, within its own timeout, and said as
ok (with how long it took), failing (with why) or not configured (with what to set)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.domain.diagnostics import DiagnosticResult, Status, one_line, redact

log = logging.getLogger(__name__)
TIMEOUT = 5.0  # seconds: /readyz and `/diag health` wait for no probe longer than this
FRESH = 15.0  # seconds: how long /readyz reports the last probes before probing again


class ProbeFailed(Exception):
    """A dependency answered, but not as it should; the message says how, in one line."""


@dataclass(frozen=True)
class Probe:
    """One dependency: `check` returns when it answers as it should, or raises (None: not
    configured, and `missing` says what to set)."""

    name: str
    check: Callable[[], Awaitable[None]] | None
    missing: str = ""
    needed: bool = False  # the bot cannot run without it (/readyz already judges it)


class HealthService:
    """Probes every dependency concurrently; never raises."""

    def __init__(
        self, probes: Sequence[Probe], *, timeout: float = TIMEOUT, fresh: float = FRESH
    ) -> None:
        self.probes = list(probes)
        self.timeout = timeout
        self.fresh = fresh
        self._outside: tuple[float, dict[str, dict[str, str]]] | None = None
        self._asking = asyncio.Lock()

    async def check_all(self) -> list[DiagnosticResult]:
        """Each dependency's state, in the order they were given."""
        return list(await asyncio.gather(*(self.check(p) for p in self.probes)))

    async def check(self, probe: Probe) -> DiagnosticResult:
        """One dependency's state."""
        if probe.check is None:
            return DiagnosticResult(probe.name, Status.NOT_CONFIGURED, probe.missing)
        began = time.perf_counter()
        try:
            await asyncio.wait_for(probe.check(), self.timeout)
        except TimeoutError:
            reason = f"no answer within {self.timeout:g}s"
        except ProbeFailed as exc:
            reason = str(exc)
        except Exception as exc:  # a probe's bug is logged; the reader gets one line
            log.warning("probe of %s failed: %s", probe.name, type(exc).__name__)
            reason = _reason(exc)
        else:
            elapsed_ms = (time.perf_counter() - began) * 1000
            return DiagnosticResult(probe.name, Status.OK, f"ok ({elapsed_ms:.0f} ms)")
        return DiagnosticResult(probe.name, Status.FAIL, f"failing: {one_line(redact(reason))}")

    async def outside(self) -> dict[str, dict[str, str]]:
        """The configured dependencies the bot can run without, for /readyz: information.

        Probed at most once per `fresh` seconds, whoever asks and however often: a readiness
        probe polled every second must not spend Slack's or Sentry's rate limits."""
        async with self._asking:
            if self._outside is not None and time.monotonic() - self._outside[0] < self.fresh:
                return self._outside[1]
            probes = [p for p in self.probes if p.check is not None and not p.needed]
            results = await asyncio.gather(*(self.check(p) for p in probes))
            report = {
                p.name.lower(): {"state": r.status.value, "detail": r.text}
                for p, r in zip(probes, results, strict=True)
            }
            self._outside = (time.monotonic(), report)
            return report


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
