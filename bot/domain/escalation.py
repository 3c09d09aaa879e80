"""Escalation policies: who is paged at each level, and when the next level is due."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.incidents import Incident
from bot.domain.timers import ESCALATE, Timer


class TargetKind(StrEnum):
    """What an escalation target names."""

    USER = "user"
    USERGROUP = "usergroup"
    ROTATION = "rotation"
    # Paging services, by the name tocsin.yml gives their keys (notify.pagerduty, ...): they
    # are told of the incident (trigger), and of its acknowledgement and resolution.
    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"
    WEBHOOK = "webhook"


SERVICES = frozenset({TargetKind.PAGERDUTY, TargetKind.OPSGENIE, TargetKind.WEBHOOK})
_SERVICE_NAMES = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie", "webhook": "webhook"}


def service_label(kind: str, name: str) -> str:
    """A paging service as people read it: "PagerDuty payments"."""
    return f"{_SERVICE_NAMES.get(kind, kind)} {name}"


@dataclass(frozen=True)
class Target:
    """A user, a user group, or whoever is on call in a rotation."""

    kind: TargetKind
    ref: str


@dataclass(frozen=True)
class Level:
    """One level: notify these targets, then wait `timeout` for an acknowledgement."""

    targets: tuple[Target, ...]
    timeout: timedelta


@dataclass(frozen=True)
class Policy:
    """Levels in order; after the last, start again `repeat` more times. When the last level's
    timeout passes unacknowledged the policy is exhausted: `last_resort` is paged (none named:
    whoever the deployment names, else everyone in the channel)."""

    name: str
    levels: tuple[Level, ...]
    repeat: int = 0
    match: Mapping[str, str] = field(default_factory=dict)
    last_resort: tuple[Target, ...] = ()


@dataclass(frozen=True)
class Step:
    """A position in a policy: level index and round (0 = first pass)."""

    level: int
    round: int

    @property
    def label(self) -> str:
        """Human level number, 1-based, with the round when repeating."""
        return f"level {self.level + 1}" + (f" (repeat {self.round})" if self.round else "")


FIRST = Step(level=0, round=0)


def services_paged(policy: Policy, incident: Incident) -> tuple[Target, ...]:
    """The paging services the incident's escalation has told so far: those of every level
    reached (all of them once it repeated), and of the last resort once it ran out."""
    reached = (
        policy.levels
        if incident.escalation_round
        else policy.levels[: incident.escalation_level + 1]
    )
    targets = [t for level in reached for t in level.targets]
    if incident.escalation_exhausted_at is not None:
        targets += policy.last_resort
    return tuple(dict.fromkeys(t for t in targets if t.kind in SERVICES))


def rotations_paged(policy: Policy) -> tuple[str, ...]:
    """The rotations a policy pages, in the order it pages them (its last resort last)."""
    targets = [t for level in policy.levels for t in level.targets] + list(policy.last_resort)
    names = [t.ref for t in targets if t.kind is TargetKind.ROTATION]
    return tuple(dict.fromkeys(names))


def next_step(policy: Policy, current: Step) -> Step | None:
    """The step after `current`, or None when the policy is exhausted."""
    if current.level + 1 < len(policy.levels):
        return Step(level=current.level + 1, round=current.round)
    if current.round < policy.repeat:
        return Step(level=0, round=current.round + 1)
    return None


def exhausted_step(policy: Policy, last: Step) -> Step:
    """The step after the policy's last: when it is due and nobody acknowledged, the policy is
    exhausted."""
    return Step(level=len(policy.levels), round=last.round)


def due_at(policy: Policy, step: Step, notified_at: datetime) -> datetime:
    """When the level after `step` is due if nobody acknowledges."""
    return notified_at + policy.levels[step.level].timeout


def choose_policy(
    policies: Sequence[Policy],
    labels: Mapping[str, str],
    *,
    requested: str | None = None,
    default: str | None = None,
) -> Policy | None:
    """The policy named by the playbook or an `escalation` label, else a match, else default."""
    by_name = {p.name: p for p in policies}
    for name in (requested, labels.get("escalation")):
        if name and name in by_name:
            return by_name[name]
    for policy in policies:
        if policy.match and all(labels.get(k) == v for k, v in policy.match.items()):
            return policy
    return by_name.get(default) if default else None


def escalating(
    incident: Incident,
    policies: Sequence[Policy],
    labels: Mapping[str, str],
    *,
    requested: str | None = None,
    default: str | None = None,
) -> Incident | None:
    """The incident escalating from the first level under the policy its labels choose (see
    `choose_policy`), or None when no policy applies. Once saved, its first timer is
    `escalation_timer(saved, FIRST, now, manual=False)`."""
    policy = choose_policy(policies, labels, requested=requested, default=default)
    if policy is None:
        return None
    return replace(
        incident,
        escalation_policy=policy.name,
        escalation_level=0,
        escalation_round=0,
        escalation_exhausted_at=None,
    )


def escalation_timer(incident: Incident, step: Step, due: datetime, *, manual: bool) -> Timer:
    """The timer that pages `step` at `due`; its key is new for each version of the incident."""
    return Timer(
        kind=ESCALATE,
        idem_key=f"escalate:{incident.id}:v{incident.version}:{step.round}:{step.level}:{int(manual)}",
        due_at=due,
        incident_id=incident.id,
        payload={"level": step.level, "round": step.round, "manual": manual},
    )
