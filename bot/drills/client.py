"""`tocsin drill`: fire a drill at a running Tocsin over HTTP and report each step's timing."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from bot.domain.playbooks import Playbook
from bot.drills.alerts import drill_payload, drill_playbooks, new_drill_id
from bot.errors import UserError

POLL = 0.2


class DrillFailed(UserError):
    """The drill could not be fired, or the Tocsin did not answer as expected."""


@dataclass
class DrillOutcome:
    """The drill's id, how long the webhook took to be accepted, and the last report seen."""

    drill_id: str
    alertname: str
    accepted_seconds: float
    report: dict[str, Any]
    timed_out: bool
    resolved: bool = False  # Tocsin resolved the drill once its report was done

    def to_dict(self) -> dict[str, Any]:
        """JSON for the page."""
        return {
            "drill": self.drill_id,
            "alertname": self.alertname,
            "accepted_seconds": round(self.accepted_seconds, 3),
            "timed_out": self.timed_out,
            "resolved": self.resolved,
            **self.report,
        }


def pick_playbook(playbooks: Sequence[Playbook], alertname: str | None) -> Playbook:
    """The playbook of `alertname` (the first shipped one if None), or DrillFailed naming them."""
    known = drill_playbooks(playbooks)
    if not known:
        raise DrillFailed("no playbook matches an alertname: nothing to drill")
    if alertname is None:
        return known.get("HighErrorRate") or next(iter(known.values()))
    if alertname not in known:
        raise DrillFailed(f"no playbook for {alertname!r}; try one of: {', '.join(sorted(known))}")
    return known[alertname]


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {"error": f"HTTP {response.status}"}


async def run_drill(
    url: str,
    playbook: Playbook,
    *,
    token: str | None,
    now: Callable[[], datetime],
    wait: float = 30.0,
    resolve: bool = True,
) -> DrillOutcome:
    """Send the drill's webhook, then follow its incident until done or `wait` seconds; once
    done, the drill is over and Tocsin resolves it (unless `resolve` is False)."""
    base = url.rstrip("/")
    drill_id = new_drill_id()
    payload = drill_payload(playbook, drill_id=drill_id, now=now())
    client_timeout = aiohttp.ClientTimeout(total=15)
    try:
        async with aiohttp.ClientSession(timeout=client_timeout, headers=_headers(token)) as http:
            started = time.perf_counter()
            async with http.post(f"{base}/webhooks/alertmanager", json=payload) as response:
                answer = await _json(response)
                accepted = time.perf_counter() - started
                if response.status != 200 or not isinstance(answer.get("incident"), int):
                    reason = answer.get("error", answer)
                    raise DrillFailed(f"the webhook answered HTTP {response.status}: {reason}")
            status_url = f"{base}/drills/{answer['incident']}"
            report, timed_out = await _follow(http, status_url, wait)
            # Done: the drill is over. Not done: it stays open for people to look at, and
            # Tocsin resolves it drill_resolve_after its opening.
            if resolve and not timed_out:
                report["status"] = await _resolve(http, f"{status_url}/resolve")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DrillFailed(f"cannot reach Tocsin at {base}: {type(exc).__name__} {exc}") from None
    alertname = playbook.match_labels["alertname"]
    resolved = report.get("status") == "resolved"
    return DrillOutcome(drill_id, alertname, accepted, report, timed_out, resolved)


async def _resolve(http: aiohttp.ClientSession, resolve_url: str) -> str:
    """Ask Tocsin to resolve the drill (once: asking again changes nothing); its status now."""
    async with http.post(resolve_url) as response:
        answer = await _json(response)
        if response.status != 200:
            raise DrillFailed(f"{resolve_url} answered HTTP {response.status}: {answer}")
    return str(answer.get("status", "?"))


async def _follow(
    http: aiohttp.ClientSession, status_url: str, wait: float
) -> tuple[dict[str, Any], bool]:
    deadline = time.monotonic() + wait
    while True:
        async with http.get(status_url) as response:
            report = await _json(response)
            if response.status != 200:
                raise DrillFailed(f"{status_url} answered HTTP {response.status}: {report}")
        if report.get("done"):
            return report, False
        if time.monotonic() > deadline:
            return report, True
        await asyncio.sleep(POLL)


def _seconds(value: Any) -> str:
    return (
        f"{value * 1000:.0f} ms"
        if isinstance(value, int | float) and value < 1
        else (f"{value:.2f} s" if isinstance(value, int | float) else "not reached")
    )


def format_outcome(outcome: DrillOutcome) -> str:
    """The report as lines for a terminal."""
    report = outcome.report
    lines = [
        f"drill {outcome.drill_id}: {outcome.alertname} -> incident #{report.get('incident')} "
        f"in #{report.get('channel') or '?'} ({report.get('status')})",
        f"  {'webhook accepted':<18} {_seconds(outcome.accepted_seconds)}",
    ]
    for step in report.get("steps", []):
        if step.get("name") == "incident opened":
            continue
        at = step.get("seconds")
        when = f"+{_seconds(at)}" if at is not None else "not reached"
        detail = f"  ({step['detail']})" if step.get("detail") else ""
        lines.append(f"  {step.get('name', '?'):<18} {when}{detail}")
    if outcome.timed_out:
        lines.append("  timed out before every step was reached; the drill stays open")
    elif outcome.resolved:
        lines.append(f"  {'drill over':<18} incident resolved")
    return "\n".join(lines)


def drill_command(
    playbooks: Sequence[Playbook],
    alertname: str | None,
    *,
    url: str,
    token: str | None,
    now: Callable[[], datetime],
    wait: float,
) -> int:
    """`tocsin drill`: 0 when every step was reached, 1 otherwise (with the reason on stderr)."""
    try:
        playbook = pick_playbook(playbooks, alertname)
        outcome = asyncio.run(run_drill(url, playbook, token=token, now=now, wait=wait))
    except DrillFailed as exc:
        print(f"tocsin drill: {exc}", file=sys.stderr)
        return 1
    print(format_outcome(outcome))
    return 1 if outcome.timed_out else 0
