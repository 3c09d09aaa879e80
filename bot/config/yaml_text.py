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


def yaml_problem(error: yaml.YAMLError) -> tuple[int, str]:
    """(line, reason) of a YAML error, for a one-line message (line 1 when it has none)."""
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else 1
    return line, str(getattr(error, "problem", None) or error)
