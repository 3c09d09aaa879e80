"""On-call rotations: who is on call at a given moment, as pure functions.

Definitions and decisions:

* All wall-clock times (handoffs, restriction windows) are local to the rotation's
  IANA time zone, so a Monday 09:00 handoff stays at 09:00 local across DST changes.
  Results are aware UTC datetimes.
* A local wall time is turned into an instant deterministically: an ambiguous time
  (DST fall-back) means its first occurrence (``fold=0``); a non-existent time (DST
  spring-forward gap) means the moment the gap ends (02:30 in a 02:00-03:00 gap is
  03:00 of the new offset). ``fold`` on the configured times is ignored.
* Handoffs: the first handoff of a layer is on ``start`` itself when ``period_days != 7``,
  and on the first ``handoff_weekday`` on or after ``start`` when ``period_days == 7``;
  in both cases at ``handoff_time``. Further handoffs follow every ``period_days`` local
  days at ``handoff_time``. ``members[k % len(members)]`` is on call from handoff ``k``
  (inclusive) to handoff ``k + 1`` (exclusive). Before the first handoff the layer has
  nobody.
* Restrictions: on each local day ``D`` the window is ``[D start, D end)``; when
  ``end <= start`` it ends on ``D + 1`` (overnight window; ``start == end`` is a full
  24 hours). ``restrict_weekdays`` filters on the day the window *starts*, so a Monday
  22:00-06:00 window covers Tuesday 02:00. Weekdays without hours means whole local days.
* Priority: an override of this rotation covering the moment wins (the last one in the
  sequence when several overlap, so pass them in creation order: the newest wins);
  otherwise the highest-index layer with somebody on call wins.
* Shifts are maximal intervals with the same user from the same source; an override's
  start and end always bound its shift. Searches go ``SEARCH_HORIZON`` back and forward
  from ``now``; a shift extending beyond that is cut at the horizon.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SEARCH_HORIZON = timedelta(days=60)
_DAY = timedelta(days=1)
_MIDNIGHT = time(0, 0)


@dataclass(frozen=True)
class Layer:
    """One layer of a rotation: members handing off at a local wall-clock time."""

    members: tuple[str, ...]
    handoff_weekday: int
    handoff_time: time
    start: date
    period_days: int = 7
    restrict_hours: tuple[time, time] | None = None
    restrict_weekdays: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        """Reject settings that cannot describe a rotation."""
        if not 0 <= self.handoff_weekday <= 6:
            raise ValueError(f"handoff_weekday must be 0..6, not {self.handoff_weekday}")
        if self.period_days < 1:
            raise ValueError(f"period_days must be at least 1, not {self.period_days}")
        times = (self.handoff_time, *(self.restrict_hours or ()))
        if any(t.tzinfo is not None for t in times):
            raise ValueError("layer times must be naive local wall-clock times")
        if self.restrict_weekdays is not None:
            if not self.restrict_weekdays:
                raise ValueError("restrict_weekdays must not be empty (use None for every day)")
            if any(not 0 <= day <= 6 for day in self.restrict_weekdays):
                raise ValueError(f"restrict_weekdays must be 0..6, not {self.restrict_weekdays}")


@dataclass(frozen=True)
class Rotation:
    """A named rotation; later layers take priority over earlier ones."""

    name: str
    timezone: str
    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        """Reject an unknown time zone early."""
        _zone(self.timezone)


@dataclass(frozen=True)
class Override:
    """Someone covering a rotation from `starts_at` (inclusive) to `ends_at` (exclusive)."""

    rotation: str
    user: str
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        """Require aware datetimes and a positive length."""
        _require_aware(self.starts_at, "starts_at")
        _require_aware(self.ends_at, "ends_at")
        if self.ends_at <= self.starts_at:
            raise ValueError("an override must end after it starts")


@dataclass(frozen=True)
class Shift:
    """A user on call from `starts_at` (inclusive) to `ends_at` (exclusive), in UTC."""

    user: str
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class _Run:
    """A maximal interval with one user from one source (override index or layers)."""

    user: str | None
    override: int | None
    start: datetime
    end: datetime


def on_call_at(rotation: Rotation, now: datetime, overrides: Sequence[Override] = ()) -> str | None:
    """Return who is on call for `rotation` at `now`, or None if nobody is."""
    at = _require_aware(now, "now").astimezone(UTC)
    user, _ = _resolve(rotation, _zone(rotation.timezone), at, _relevant(rotation, overrides))
    return user


def current_and_next(
    rotation: Rotation, now: datetime, overrides: Sequence[Override] = ()
) -> tuple[Shift | None, Shift | None]:
    """Return the shift in force at `now` and the next shift of a different user."""
    at = _require_aware(now, "now").astimezone(UTC)
    runs = _runs(rotation, _relevant(rotation, overrides), at - SEARCH_HORIZON, at + SEARCH_HORIZON)
    index = next(i for i, run in enumerate(runs) if run.start <= at < run.end)
    current = runs[index]
    following = next(
        (r for r in runs[index + 1 :] if r.user is not None and r.user != current.user), None
    )
    return _shift(current), _shift(following)


def _require_aware(value: datetime, name: str) -> datetime:
    """Return `value`, or raise ValueError if it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def _zone(name: str) -> ZoneInfo:
    """Return the IANA zone `name`, or raise ValueError if it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _relevant(rotation: Rotation, overrides: Sequence[Override]) -> tuple[Override, ...]:
    """Return the overrides of `rotation`, in their original order."""
    return tuple(o for o in overrides if o.rotation == rotation.name)


def _local_to_utc(day: date, at: time, tz: tzinfo) -> datetime:
    """Return the UTC instant of local wall time `day` `at` (fold=0; gaps map to their end)."""
    naive = datetime.combine(day, at.replace(tzinfo=None, fold=0))
    instant = naive.replace(tzinfo=tz).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == naive:
        return instant
    return _gap_end(naive, tz)


def _gap_end(naive: datetime, tz: tzinfo) -> datetime:
    """Return the UTC instant at which the DST gap containing `naive` ends."""
    after = naive.replace(tzinfo=tz, fold=1).utcoffset()
    low = int(naive.replace(tzinfo=tz, fold=1).timestamp())  # before the transition
    high = int(naive.replace(tzinfo=tz, fold=0).timestamp())  # at or after it
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _first_handoff_day(layer: Layer) -> date:
    """Return the local date of the layer's first handoff."""
    if layer.period_days != 7:
        return layer.start
    return layer.start + _DAY * ((layer.handoff_weekday - layer.start.weekday()) % 7)


def _handoff(layer: Layer, tz: tzinfo, index: int) -> datetime:
    """Return the UTC instant of handoff number `index` (0 = members[0] starts)."""
    day = _first_handoff_day(layer) + _DAY * (index * layer.period_days)
    return _local_to_utc(day, layer.handoff_time, tz)


def _handoff_index(layer: Layer, tz: tzinfo, at: datetime) -> int | None:
    """Return the number of the last handoff at or before `at`, or None before the first."""
    days = (at.astimezone(tz).date() - _first_handoff_day(layer)).days
    index = days // layer.period_days
    while _handoff(layer, tz, index) > at:
        index -= 1
    while _handoff(layer, tz, index + 1) <= at:
        index += 1
    return index if index >= 0 else None


def _is_restricted(layer: Layer) -> bool:
    """Return whether the layer only applies during some windows."""
    return layer.restrict_hours is not None or layer.restrict_weekdays is not None


def _window(layer: Layer, tz: tzinfo, day: date) -> tuple[datetime, datetime] | None:
    """Return the UTC window starting on local `day`, or None if the layer skips that day."""
    if layer.restrict_weekdays is not None and day.weekday() not in layer.restrict_weekdays:
        return None
    start, end = layer.restrict_hours or (_MIDNIGHT, _MIDNIGHT)
    end_day = day if end > start else day + _DAY
    return _local_to_utc(day, start, tz), _local_to_utc(end_day, end, tz)


def _applies(layer: Layer, tz: tzinfo, at: datetime) -> bool:
    """Return whether the layer's restrictions allow it to apply at `at`."""
    if not _is_restricted(layer):
        return True
    today = at.astimezone(tz).date()
    for day in (today - _DAY, today):
        window = _window(layer, tz, day)
        if window is not None and window[0] <= at < window[1]:
            return True
    return False


def _layer_user(layer: Layer, tz: tzinfo, at: datetime) -> str | None:
    """Return who the layer puts on call at `at`, or None."""
    if not layer.members or not _applies(layer, tz, at):
        return None
    index = _handoff_index(layer, tz, at)
    return None if index is None else layer.members[index % len(layer.members)]


def _resolve(
    rotation: Rotation, tz: tzinfo, at: datetime, overrides: Sequence[Override]
) -> tuple[str | None, int | None]:
    """Return who is on call at `at` and the index of the override responsible, if any."""
    for index in reversed(range(len(overrides))):
        override = overrides[index]
        if override.starts_at <= at < override.ends_at:
            return override.user, index
    for layer in reversed(rotation.layers):
        user = _layer_user(layer, tz, at)
        if user is not None:
            return user, None
    return None, None


def _handoff_edges(layer: Layer, tz: tzinfo, low: datetime, high: datetime) -> Iterator[datetime]:
    """Yield the layer's handoff instants strictly between `low` and `high`."""
    index = max(_handoff_index(layer, tz, low) or 0, 0)
    while (moment := _handoff(layer, tz, index)) < high:
        if moment > low:
            yield moment
        index += 1


def _restriction_edges(
    layer: Layer, tz: tzinfo, low: datetime, high: datetime
) -> Iterator[datetime]:
    """Yield the layer's window starts and ends strictly between `low` and `high`."""
    if not _is_restricted(layer):
        return
    day, last = low.astimezone(tz).date() - _DAY, high.astimezone(tz).date()
    while day <= last:
        window = _window(layer, tz, day)
        yield from (edge for edge in window or () if low < edge < high)
        day += _DAY


def _edges(
    rotation: Rotation, tz: tzinfo, overrides: Sequence[Override], low: datetime, high: datetime
) -> set[datetime]:
    """Return every instant in [low, high] at which who is on call may change."""
    edges = {low, high}
    for layer in rotation.layers:
        if layer.members:
            edges.update(_handoff_edges(layer, tz, low, high))
            edges.update(_restriction_edges(layer, tz, low, high))
    for override in overrides:
        edges.update(edge.astimezone(UTC) for edge in (override.starts_at, override.ends_at))
    return {edge for edge in edges if low <= edge <= high}


def _runs(
    rotation: Rotation, overrides: Sequence[Override], low: datetime, high: datetime
) -> list[_Run]:
    """Split [low, high) into maximal runs of one user from one source."""
    tz = _zone(rotation.timezone)
    runs: list[_Run] = []
    for start, end in pairwise(sorted(_edges(rotation, tz, overrides, low, high))):
        user, source = _resolve(rotation, tz, start, overrides)
        if runs and (runs[-1].user, runs[-1].override) == (user, source):
            runs[-1] = _Run(user, source, runs[-1].start, end)
        else:
            runs.append(_Run(user, source, start, end))
    return runs


def _shift(run: _Run | None) -> Shift | None:
    """Return the run as a shift, or None if it is missing or nobody is on call."""
    if run is None or run.user is None:
        return None
    return Shift(run.user, run.start, run.end)
