"""Silence an incident's alerts in Alertmanager for a while, and lift the silence."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from bot.domain.incidents import TimelineEvent
from bot.domain.outbox import card_update_job, note_job
from bot.domain.silences import SILENCE_CHECK, Watch, check_timer
from bot.domain.text import phrase, who
from bot.errors import IntegrationError, UserError
from bot.ports import IncidentStore, IncidentTransaction, Silencer
from bot.services.incidents import Outcome, in_transaction


def silence_matchers(group: Mapping[str, str], common: Mapping[str, str]) -> dict[str, str]:
    """What a silence of an incident matches: the labels every one of its alerts has (its
    group's labels among them). The group's labels alone (often just `alertname`) would
    silence the same alert of every other service too."""
    return {**group, **common}


class SilenceService:
    """The Silence 1h and Unsilence buttons."""

    def __init__(
        self,
        *,
        store: IncidentStore,
        silencer: Silencer | None,
        now: Callable[[], datetime],
        duration: timedelta,
        check_every: timedelta | None = None,
        on_scheduled: Callable[[], None] = lambda: None,
        while_flapping: timedelta | None = None,
    ) -> None:
        self.store = store
        self.silencer = silencer
        self.now = now
        self.duration = duration
        # How long "Silence while flapping" silences: past the resolves and re-fires between.
        self.while_flapping = while_flapping or 2 * duration
        # How often Alertmanager is asked which silenced alerts still fire (None: never).
        self.check_every = check_every
        self.on_scheduled = on_scheduled

    def _require(self) -> Silencer:
        if self.silencer is None:
            raise UserError("Silencing is not configured: set ALERTMANAGER_URL.")
        return self.silencer

    async def silence(
        self,
        incident_id: int,
        *,
        actor: str,
        actor_name: str | None = None,
        flapping: bool = False,
    ) -> Outcome:
        """Create a silence of exactly the incident's alerts (every label they share, not only
        the route's grouping) and remember its id; Alertmanager shows `actor_name` as its
        author. `flapping`: for as long as "Silence while flapping" says, which outlasts the
        resolves in between (Alertmanager keeps a silence until its end, whatever resolves)."""
        silencer = self._require()
        incident = await in_transaction(self.store, lambda tx: tx.get_incident(incident_id))
        if incident is None:
            raise UserError(f"Incident #{incident_id} does not exist.")
        if incident.silence_id and incident.silenced_until and incident.silenced_until > self.now():
            raise UserError(f"Already silenced until {incident.silenced_until:%H:%M} UTC.")
        group, common = await in_transaction(self.store, lambda tx: tx.incident_labels(incident_id))
        matchers = silence_matchers(group, common)
        if not matchers:
            raise UserError("This incident has no alerts to silence.")
        now = self.now()
        until = now + (self.while_flapping if flapping else self.duration)
        try:
            silence_id = await silencer.create(
                matchers,
                starts_at=now,
                ends_at=until,
                created_by=actor_name or actor,
                comment=f"Tocsin incident #{incident_id}: {incident.title}"[:500],
            )
        except IntegrationError as exc:
            raise UserError(f"Could not silence: {exc}") from None
        how = "Silenced while flapping by " if flapping else "Silenced by "
        text = phrase(how, who(actor), f" until {until:%H:%M} UTC (silence {silence_id})")

        async def save(tx: IncidentTransaction) -> Outcome:
            current = await tx.get_incident(incident_id)
            assert current is not None
            saved = await tx.save_incident(
                replace(current, silence_id=silence_id, silenced_until=until, silenced_by=actor),
                at=now,
            )
            await tx.add_events(
                incident_id,
                [TimelineEvent("silenced", actor, now, text, {"silence_id": silence_id})],
            )
            await tx.enqueue(
                [
                    card_update_job(incident_id),
                    note_job(incident_id, f"silence:{silence_id}", text),
                ],
                at=now,
            )
            if self.check_every is not None:
                watch = Watch(incident_id, silence_id, matchers)
                await tx.schedule(check_timer(watch, due=now + self.check_every), at=now)
            return Outcome(saved, text)

        outcome = await in_transaction(self.store, save)
        self.on_scheduled()
        return outcome

    async def unsilence(self, incident_id: int, *, actor: str) -> Outcome:
        """Expire the incident's silence."""
        silencer = self._require()
        incident = await in_transaction(self.store, lambda tx: tx.get_incident(incident_id))
        if incident is None or not incident.silence_id:
            raise UserError("This incident is not silenced.")
        try:
            await silencer.expire(incident.silence_id)
        except IntegrationError as exc:
            raise UserError(f"Could not lift the silence: {exc}") from None
        now = self.now()
        text = phrase("Silence lifted by ", who(actor))

        async def save(tx: IncidentTransaction) -> Outcome:
            current = await tx.get_incident(incident_id)
            assert current is not None
            saved = await tx.save_incident(
                replace(current, silence_id=None, silenced_until=None, silenced_by=None), at=now
            )
            await tx.add_events(incident_id, [TimelineEvent("unsilenced", actor, now, text)])
            await tx.cancel_timers(incident_id, SILENCE_CHECK)
            await tx.enqueue(
                [
                    card_update_job(incident_id),
                    note_job(incident_id, f"unsilence:{saved.version}", text),
                ],
                at=now,
            )
            return Outcome(saved, text)

        return await in_transaction(self.store, save)
