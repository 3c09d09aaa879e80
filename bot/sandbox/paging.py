"""What the page says about paging: the rotations (who is on call now) and the policies' levels."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.domain.escalation import Policy, Target, TargetKind
from bot.domain.oncall import Rotation, Shift

Names = Callable[[str], str]
NowAndNext = Callable[[], Awaitable[Sequence[tuple[str, Shift | None, Shift | None]]]]


def duration(value: timedelta) -> str:
    """`2m`, `1h 30m`, `45s`: as a person writes it in tocsin.yml."""
    seconds = int(value.total_seconds())
    parts = [(seconds // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return " ".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def _target(target: Target, names: Names) -> str:
    if target.kind is TargetKind.ROTATION:
        return f"on call in {target.ref}"
    if target.kind is TargetKind.USERGROUP:
        return f"@{names(target.ref)} (group)"
    return f"@{names(target.ref)}"


@dataclass(frozen=True)
class PagingConfig:
    """The rotations and policies in force, and who is on call now (with overrides)."""

    rotations: Mapping[str, Rotation]
    policies: Sequence[Policy]
    default_policy: str | None
    now_and_next: NowAndNext
    last_resort: Sequence[Target] = ()  # for the policies that name none

    async def describe(self, names: Names) -> dict[str, Any]:
        """JSON for the page: each rotation's members and who is on call now; each policy's
        levels, in order."""
        rows = {name: current for name, current, _ in await self.now_and_next()}
        rotations = []
        for rotation in self.rotations.values():
            members = dict.fromkeys(m for layer in rotation.layers for m in layer.members)
            current = rows.get(rotation.name)
            rotations.append(
                {
                    "name": rotation.name,
                    "members": [names(m) for m in members],
                    "now": names(current.user) if current else None,
                    "until": f"{current.ends_at:%a %H:%M} UTC" if current else None,
                }
            )
        policies = [
            {
                "name": policy.name,
                "default": policy.name == self.default_policy,
                "levels": [
                    {
                        "targets": [_target(t, names) for t in level.targets],
                        "timeout": duration(level.timeout),
                    }
                    for level in policy.levels
                ],
                "last_resort": [_target(t, names) for t in policy.last_resort or self.last_resort]
                or ["@channel"],
            }
            for policy in self.policies
        ]
        return {"rotations": rotations, "policies": policies}
