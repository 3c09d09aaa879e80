"""The sandbox workspace's people, and the paging they rehearse when the config names none.

A page can only be rehearsed with someone to page: without a token, and when tocsin.yml sets
no on-call people, rotation or escalation policy, the sandbox gets four people, a rotation over
three of them and a two-level policy with short timeouts. A real workspace never gets these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from bot.config import Settings
from bot.config.policies import (
    EscalationConfig,
    LayerConfig,
    LevelConfig,
    PolicyConfig,
    RotationConfig,
)
from bot.slack.emulator import SlackEmulator

SANDBOX_USER = "U0SANDBOX1"  # whom the page shows first
SANDBOX_ROTATION = "primary"
SANDBOX_POLICY = "sandbox"
LEVEL_TIMEOUT = timedelta(minutes=2)


@dataclass(frozen=True)
class Person:
    """A member of the sandbox workspace."""

    id: str
    handle: str
    real_name: str


PEOPLE = (
    Person(SANDBOX_USER, "sandbox", "Sandbox User"),
    Person("U0SANDBOX2", "ada", "Ada Lovelace"),
    Person("U0SANDBOX3", "grace", "Grace Hopper"),
    Person("U0SANDBOX4", "alan", "Alan Turing"),
)
ON_CALL = PEOPLE[:3]  # take turns in the rotation, a day each
SECOND_LEVEL = PEOPLE[3]  # paged when the first level does not acknowledge


def add_people(emulator: SlackEmulator) -> None:
    """Make sure every sandbox person is a member (a workspace saved earlier may lack some)."""
    for person in PEOPLE:
        if person.id not in emulator.state.users:
            emulator.add_user(person.id, person.handle, real_name=person.real_name)


def configures_paging(settings: Settings) -> bool:
    """True when tocsin.yml names anyone to page: on-call people, a rotation or a policy."""
    oncall, escalation = settings.oncall, settings.escalation
    return bool(
        oncall.users or oncall.usergroup or oncall.rotations or escalation.policies
    ) or bool(escalation.default)


def with_sandbox_paging(settings: Settings) -> Settings:
    """The settings with the sandbox's people, rotation and policy, unless they page already."""
    if configures_paging(settings):
        return settings
    rotation = RotationConfig(
        name=SANDBOX_ROTATION,
        layers=[
            LayerConfig(
                members=[p.id for p in ON_CALL],
                handoff="09:00",
                period_days=1,
                start=date(2026, 1, 5),
            )
        ],
    )
    policy = PolicyConfig(
        name=SANDBOX_POLICY,
        levels=[
            LevelConfig(targets=[f"rotation:{SANDBOX_ROTATION}"], timeout=LEVEL_TIMEOUT),
            LevelConfig(targets=[f"user:{SECOND_LEVEL.id}"], timeout=LEVEL_TIMEOUT),
        ],
    )
    oncall = settings.oncall.model_copy(update={"users": [SANDBOX_USER], "rotations": [rotation]})
    escalation = EscalationConfig(default=SANDBOX_POLICY, policies=[policy])
    return settings.model_copy(update={"oncall": oncall, "escalation": escalation})
