"""YAML as people write it: a key given twice in one mapping is refused, with both lines.

PyYAML keeps the last of two equal keys and drops the first without a word: two README
snippets that both start with `oncall:`, pasted into one tocsin.yml, would lose the first
one's settings. Merge keys (`<<`) keep their meaning: a key written beside them overrides.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node


class _UniqueKeys(yaml.SafeLoader):
    """The safe loader, refusing a mapping that names a key twice."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, Node] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: the constructor says so below
            if earlier is not key_node:
                raise ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first on line {earlier.start_mark.line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML safely; a duplicate key raises a MarkedYAMLError at its second line."""
    return yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader subclass


def line_of(node: Node | None, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the key or list item at a pydantic error location (the key's line,
    not its value's: `diagnostics:` opens a block that starts below it). A location that is not
    in the file (a missing field) falls back to its nearest parent."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        found = _child(node, part)
        if found is None:
            break
        key, node = found
        line = key.start_mark.line + 1
    return line


def _child(node: Node | None, part: int | str) -> tuple[Node, Node] | None:
    """The key and value of a mapping entry (a list item is its own key), or None."""
    if isinstance(node, MappingNode):
        return next(((k, v) for k, v in node.value if k.value == part), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part], node.value[part]
    return None


def yaml_problem(error: yaml.YAMLError) -> tuple[int, str]:
    """(line, reason) of a YAML error, for a one-line message (line 1 when it has none)."""
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else 1
    return line, str(getattr(error, "problem", None) or error)
