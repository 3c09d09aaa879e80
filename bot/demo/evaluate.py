"""The demo PromQL's evaluation: a parsed query's value at a moment, over the demo world."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence

from bot.demo.promql import (
    COMPARISONS,
    RANGE_FUNCTIONS,
    SAMPLES,
    Aggregate,
    Binary,
    Call,
    Labels,
    Node,
    Selector,
    Unsupported,
    Value,
    Vector,
)
from bot.demo.world import Series


def evaluate(node: Node, t: float, world: Sequence[Series]) -> Value:
    """The node's value at `t`: a scalar or an instant vector."""
    if isinstance(node, float):
        return node
    if isinstance(node, Selector):
        if node.window is not None:
            raise Unsupported("a range vector must be the argument of a function such as rate")
        return [
            (dict(s.labels), v) for s in _select(node, world) if not math.isnan(v := s.value(t))
        ]
    if isinstance(node, Call):
        return _call(node, t, world)
    if isinstance(node, Aggregate):
        return _aggregate(node, _vector(evaluate(node.body, t, world)))
    return _binary(node, evaluate(node.left, t, world), evaluate(node.right, t, world))


def _select(selector: Selector, world: Sequence[Series]) -> list[Series]:
    def matches(series: Series) -> bool:
        for label, op, wanted in selector.matchers:
            have = series.labels.get(label, "")
            hit = re.fullmatch(wanted, have) is not None if "~" in op else have == wanted
            if hit != (op in ("=", "=~")):
                return False
        return True

    return [s for s in world if matches(s)]


def _call(node: Call, t: float, world: Sequence[Series]) -> Value:
    if node.name in RANGE_FUNCTIONS:
        (arg,) = node.args if len(node.args) == 1 else (None,)
        if not isinstance(arg, Selector) or arg.window is None:
            raise Unsupported(f"{node.name}() takes one range selector, e.g. x[5m]")
        return [
            (_drop_name(s.labels), _over_range(node.name, s, t, arg.window))
            for s in _select(arg, world)
        ]
    if node.name == "abs" and len(node.args) == 1:
        return [(labels, abs(v)) for labels, v in _vector(evaluate(node.args[0], t, world))]
    if node.name == "histogram_quantile" and len(node.args) == 2:
        q = evaluate(node.args[0], t, world)
        if not isinstance(q, float):
            raise Unsupported("histogram_quantile() takes a number first")
        return _quantiles(q, _vector(evaluate(node.args[1], t, world)))
    raise Unsupported(f"the demo Prometheus does not evaluate {node.name}()")


def _over_range(name: str, series: Series, t: float, window: float) -> float:
    moments = [t - window + window * (i + 0.5) / SAMPLES for i in range(SAMPLES)]
    if series.counter and name in ("rate", "increase"):
        per_second = sum(series.shape(m) for m in moments) / SAMPLES
        return per_second * (window if name == "increase" else 1.0)
    values = [series.value(m) for m in moments]
    if name == "rate":
        return (values[-1] - values[0]) / window
    if name == "increase":
        return values[-1] - values[0]
    pick: Callable[[list[float]], float] = {"min_over_time": min, "max_over_time": max}.get(
        name, lambda vs: sum(vs) / len(vs)
    )
    return pick(values)


def _quantiles(q: float, buckets: Vector) -> Vector:
    groups: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for labels, count in buckets:
        key = tuple(sorted((k, v) for k, v in labels.items() if k not in ("le", "__name__")))
        groups.setdefault(key, []).append((float(labels.get("le", "nan")), count))
    found: Vector = []
    for key, points in groups.items():
        points.sort()
        total = points[-1][1]
        if not math.isinf(points[-1][0]) or total <= 0:
            continue
        rank, lower, below = q * total, 0.0, 0.0
        for bound, count in points:
            if count >= rank:
                if math.isinf(bound):
                    value = lower
                else:
                    value = lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
                found.append((dict(key), value))
                break
            lower, below = bound, count
    return found


def _aggregate(node: Aggregate, vector: Vector) -> Vector:
    groups: dict[tuple[tuple[str, str], ...], list[float]] = {}
    for labels, value in vector:
        if node.grouping is None:
            kept: dict[str, str] = {}
        elif node.without:
            kept = {k: v for k, v in labels.items() if k not in node.grouping and k != "__name__"}
        else:
            kept = {k: v for k, v in labels.items() if k in node.grouping}
        groups.setdefault(tuple(sorted(kept.items())), []).append(value)
    return [(dict(key), _combine_all(node.op, values)) for key, values in groups.items()]


def _combine_all(op: str, values: list[float]) -> float:
    if op == "sum":
        return sum(values)
    if op == "avg":
        return sum(values) / len(values)
    if op == "count":
        return float(len(values))
    return min(values) if op == "min" else max(values)


def _binary(node: Binary, left: Value, right: Value) -> Value:
    if isinstance(left, float) and isinstance(right, float):
        if node.op in COMPARISONS and not node.keep_bool:
            raise Unsupported("comparisons between scalars must use bool")
        return _apply(node.op, left, right)
    if isinstance(left, float) or isinstance(right, float):
        vector, scalar = (right, left) if isinstance(left, float) else (left, right)
        assert isinstance(vector, list) and isinstance(scalar, float)
        found: Vector = []
        for labels, value in vector:
            a, b = (scalar, value) if isinstance(left, float) else (value, scalar)
            found += _combine(node, labels, a, b, value)
        return found
    others = {_key(labels): value for labels, value in right}
    found = []
    for labels, value in left:
        if (other := others.get(_key(labels))) is not None:
            found += _combine(node, labels, value, other, value)
    return found


def _combine(node: Binary, labels: Labels, a: float, b: float, kept: float) -> Vector:
    result = _apply(node.op, a, b)
    if node.op in COMPARISONS and not node.keep_bool:
        return [(labels, kept)] if result else []
    return [(_drop_name(labels), result)]


def _apply(op: str, a: float, b: float) -> float:
    if op == "/":
        return a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a))
    results = {
        "+": a + b,
        "-": a - b,
        "*": a * b,
        "==": float(a == b),
        "!=": float(a != b),
        ">": float(a > b),
        "<": float(a < b),
        ">=": float(a >= b),
        "<=": float(a <= b),
    }
    return results[op]


def _key(labels: Labels) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


def _drop_name(labels: Mapping[str, str]) -> Labels:
    return {k: v for k, v in labels.items() if k != "__name__"}


def _vector(value: Value) -> Vector:
    if isinstance(value, float):
        raise Unsupported("expected an instant vector, got a number")
    return value
