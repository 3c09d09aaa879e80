"""A small PromQL evaluator over the demo world: the query shapes the shipped playbooks and
KPIs use, and little more.

Selectors with label matchers (= != =~ !~) and ranges; rate, increase, avg/min/max_over_time,
histogram_quantile, abs; sum, avg, min, max and count with `by` or `without`; + - * / and
comparisons (with `bool`) between scalars and vectors matched one-to-one on their labels.
Anything else is refused with `Unsupported`, which the server answers as Prometheus answers a
query it cannot run (`bad_data`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Labels = dict[str, str]
Vector = list[tuple[Labels, float]]
Value = float | Vector

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?![\w])|(?P<duration>\d+[smhdw])"
    r"|(?P<name>[A-Za-z_:][\w:]*)|(?P<string>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?P<op>=~|!~|==|!=|>=|<=|[-+*/(){}\[\],=<>]))"
)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGGREGATIONS = {"sum", "avg", "min", "max", "count"}
RANGE_FUNCTIONS = {"rate", "increase", "avg_over_time", "min_over_time", "max_over_time"}
COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
SAMPLES = 12  # points read across a range


class Unsupported(ValueError):
    """A query the demo cannot parse or evaluate; the message says what."""


@dataclass(frozen=True)
class Selector:
    matchers: tuple[tuple[str, str, str], ...]
    window: float | None = None


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Aggregate:
    op: str
    grouping: tuple[str, ...] | None  # None: no clause
    without: bool
    body: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node
    keep_bool: bool = False


Node = float | Selector | Call | Aggregate | Binary


def tokens(query: str) -> list[str]:
    """The query's tokens; Unsupported on a character PromQL would not accept either."""
    found, at = [], 0
    text = query.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise Unsupported(f"unexpected character {text[at:].strip()[:1]!r} at {at}")
        found.append(match.group(match.lastgroup or "op"))
        at = match.end()
    return found


class _Parser:
    def __init__(self, query: str) -> None:
        self.items = tokens(query)
        self.at = 0

    def peek(self) -> str:
        return self.items[self.at] if self.at < len(self.items) else ""

    def take(self, expected: str | None = None) -> str:
        item = self.peek()
        if expected is not None and item != expected:
            raise Unsupported(f"expected {expected!r}, found {item or 'the end'!r}")
        if not item:
            raise Unsupported("unexpected end of the query")
        self.at += 1
        return item

    def expression(self) -> Node:
        node = self.sum()
        while self.peek() in COMPARISONS:
            op = self.take()
            keep = self.peek() == "bool" and bool(self.take())
            node = Binary(op, node, self.sum(), keep)
        return node

    def sum(self) -> Node:
        node = self.product()
        while self.peek() in ("+", "-"):
            node = Binary(self.take(), node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            node = Binary(self.take(), node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return Binary("*", -1.0, self.unary())
        return self.primary()

    def primary(self) -> Node:
        item = self.peek()
        if item == "(":
            self.take()
            node = self.expression()
            self.take(")")
            return node
        if re.fullmatch(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?", item):
            return float(self.take())
        if item == "{":
            return self.selector(None)
        if not re.fullmatch(r"[A-Za-z_:][\w:]*", item):
            raise Unsupported(f"unexpected {item or 'end of the query'!r}")
        name = self.take()
        if name in _AGGREGATIONS:
            return self.aggregate(name)
        if self.peek() == "(":
            return self.call(name)
        return self.selector(name)

    def aggregate(self, op: str) -> Node:
        grouping, without = self.grouping()
        self.take("(")
        body = self.expression()
        self.take(")")
        if grouping is None:
            grouping, without = self.grouping()
        return Aggregate(op, grouping, without, body)

    def grouping(self) -> tuple[tuple[str, ...] | None, bool]:
        if self.peek() not in ("by", "without"):
            return None, False
        without = self.take() == "without"
        self.take("(")
        names: list[str] = []
        while self.peek() != ")":
            names.append(self.take())
            if self.peek() == ",":
                self.take()
        self.take(")")
        return tuple(names), without

    def call(self, name: str) -> Node:
        self.take("(")
        args: list[Node] = []
        while self.peek() != ")":
            args.append(self.expression())
            if self.peek() == ",":
                self.take()
        self.take(")")
        return Call(name, tuple(args))

    def selector(self, name: str | None) -> Selector:
        matchers = [("__name__", "=", name)] if name else []
        if self.peek() == "{":
            self.take()
            while self.peek() != "}":
                label, op, raw = self.take(), self.take(), self.take()
                if op not in ("=", "!=", "=~", "!~") or raw[:1] not in ("'", '"'):
                    raise Unsupported(f"bad label matcher {label}{op}{raw}")
                matchers.append((label, op, raw[1:-1].encode().decode("unicode_escape")))
                if self.peek() == ",":
                    self.take()
            self.take("}")
        window = None
        if self.peek() == "[":
            self.take()
            raw = self.take()
            if not re.fullmatch(r"\d+[smhdw]", raw):
                raise Unsupported(f"bad range {raw!r}")
            window = float(int(raw[:-1]) * _SECONDS[raw[-1]])
            self.take("]")
        if not matchers:
            raise Unsupported("a selector needs a metric name or a label matcher")
        return Selector(tuple(matchers), window)


def parse(query: str) -> Node:
    """The query as a tree; Unsupported when it is not PromQL the demo understands."""
    parser = _Parser(query)
    node = parser.expression()
    if parser.peek():
        raise Unsupported(f"unexpected {parser.peek()!r} after the expression")
    return node
