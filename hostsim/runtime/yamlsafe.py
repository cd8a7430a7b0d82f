"""Reading task-file YAML with limits, so a hostile or broken file fails fast and says where.

``yaml.safe_load`` follows aliases without bound (a few hundred bytes can stand for billions of
nodes), recurses once per nesting level (RecursionError) and quotes the offending source line in
its errors (a password included). This loader counts every node as if aliases were copies, caps
the nesting, and its errors give line, column and the problem, never the text.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_NESTING = 100  # mappings and lists inside each other
MAX_NODES = 100_000  # every value in the file, an alias counting as a copy of what it names
MAX_PROBLEM_CHARS = 200


class YamlLimitError(ComposerError):
    """The file is valid YAML but breaks one of the limits above."""


class LimitedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses deep nesting, recursive aliases and alias bombs."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._weights: dict[int, int] = {}  # id(node) -> nodes it stands for, aliases expanded

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            if id(node) not in self._weights:
                raise YamlLimitError(
                    None, None, "an alias refers to a value that contains it", mark
                )
            return node
        mark = self.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise YamlLimitError(
                None, None, f"values nest more than {MAX_NESTING} levels deep", mark
            )
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        weight = 1 + sum([self._weights[id(child)] for child in _children(node)])
        if weight > MAX_NODES:
            raise YamlLimitError(
                None,
                None,
                f"aliases expand this file to more than {MAX_NODES:,} values",
                mark,
            )
        self._weights[id(node)] = weight
        return node


def _children(node: Node | None) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(text: str) -> Any:
    """The one document in ``text``; raises ``yaml.YAMLError`` (see ``describe_error``)."""
    loader = LimitedSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def describe_error(exc: yaml.YAMLError) -> str:
    """One line: where and what, without the source text that ``str(exc)`` quotes."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return "not valid YAML"
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or exc.context or "not valid YAML")[:MAX_PROBLEM_CHARS]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if isinstance(exc, YamlLimitError):
        return f"{where}{problem}"
    context = ""
    if exc.problem and exc.context:
        context = f" ({exc.context[:MAX_PROBLEM_CHARS]}"
        if exc.context_mark is not None and exc.context_mark is not mark:
            context += f" at line {exc.context_mark.line + 1}"
        context += ")"
    return f"not valid YAML: {where}{problem}{context}"
