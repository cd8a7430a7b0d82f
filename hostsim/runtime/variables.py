"""Task variables: scopes, ``{Name}`` / ``{json:Var.path}`` expansion, and secret masking."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

MASK = "***"
SECRET_NAME_RE = re.compile(r"pass|secret|token|api_?key", re.IGNORECASE)  # masked by name
MAX_DEPTH = 10  # expansion passes: references to references, 10 levels deep at most
MAX_EXPANDED_CHARS = 16 << 20  # 16 MiB: room for a long mail body, not for doubling forever

_REF_RE = re.compile(r"\{(json:)?([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_PATH_RE = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")


def to_text(value: Any) -> str:
    """How a value reads inside a string: JSON for structures, ``True``/``False`` for booleans."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return ""
    return str(value)


class ExpansionError(ValueError):
    """A value cannot be expanded; the message names the variable, never its value."""


class _Structure:
    """A dict or list an action stored. Read as text it is JSON, written once and only when
    something reads it so; ``{json:Var.path}`` walks the structure itself. A mail loop stores
    one per message, and most bodies read a field or two, or nothing."""

    __slots__ = ("_text", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = json.dumps(self.value, ensure_ascii=False)
        return self._text


def _stored(value: Any) -> Any:
    """Variables hold text, numbers or booleans; a structure reads as its JSON text."""
    if isinstance(value, tuple):
        value = list(value)
    return _Structure(value) if isinstance(value, dict | list) else value


def _readable(value: Any) -> Any:
    return value.text if isinstance(value, _Structure) else value


def _walk_json(value: Any, path: str) -> tuple[bool, Any]:
    """Follows ``.key`` / ``[n]`` steps into a parsed JSON value."""
    for key, index in _PATH_RE.findall(path):
        try:
            if index:
                value = value[int(index)]
            elif isinstance(value, dict):
                value = value[key]
            elif isinstance(value, list) and key.isdigit():
                value = value[int(key)]
            else:
                return False, None
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, value


class Variables:
    """Global and task-run (local) variables; local shadows global.

    A dict or list given to ``set`` is kept as given (not copied): whoever stores one hands it
    over and does not change it afterwards.
    """

    def __init__(self, global_vars: dict[str, Any] | None = None) -> None:
        self._globals: dict[str, Any] = {k: _stored(v) for k, v in (global_vars or {}).items()}
        self._locals: dict[str, Any] = {}
        # name -> (JSON text, parsed): a loop body reading several {json:Var.x} fields of a
        # variable holding JSON text parses the text once, not once per reference
        self._parsed: dict[str, tuple[str, Any]] = {}

    def set(self, name: str, value: Any, scope: str = "local") -> None:
        if scope not in ("local", "global"):
            raise ValueError(f"scope must be 'local' or 'global', not {scope!r}")
        target = self._locals if scope == "local" else self._globals
        target[name] = _stored(value)

    def _raw(self, name: str, default: Any = None) -> Any:
        if name in self._locals:
            return self._locals[name]
        return self._globals.get(name, default)

    def get(self, name: str, default: Any = None) -> Any:
        return _readable(self._raw(name, default))

    def has(self, name: str) -> bool:
        return name in self._locals or name in self._globals

    @property
    def globals(self) -> dict[str, Any]:
        return {k: _readable(v) for k, v in self._globals.items()}

    def merged(self) -> dict[str, Any]:
        return {k: _readable(v) for k, v in {**self._globals, **self._locals}.items()}

    def _lookup(self, match: re.Match[str]) -> str:
        is_json, name, path = match.group(1), match.group(2), match.group(3)
        if not self.has(name):
            return match.group(0)
        value = self._raw(name)
        if is_json:
            if isinstance(value, _Structure):
                value = value.value
            elif isinstance(value, str):
                ok, value = self._json(name, value)
                if not ok:
                    return match.group(0)
            found, value = _walk_json(value, path)
            return to_text(value) if found else match.group(0)
        if path:  # "{Msg.subject}" is not a plain reference: leave it as written
            return match.group(0)
        return to_text(_readable(value))

    def _json(self, name: str, text: str) -> tuple[bool, Any]:
        """The parsed JSON of a variable's text; parsed again only when the text is another."""
        cached = self._parsed.get(name)
        if cached is not None and cached[0] is text:  # the same string object: same content
            return True, cached[1]
        try:
            parsed = json.loads(text)
        except ValueError:
            return False, None
        self._parsed[name] = (text, parsed)
        return True, parsed

    def expand(self, text: str) -> str:
        """Replaces references to full depth; unknown ones stay as written.

        Raises ExpansionError when a variable refers to itself, references nest deeper than
        MAX_DEPTH or the result would pass MAX_EXPANDED_CHARS.
        """
        for _ in range(MAX_DEPTH):
            if "{" not in text:  # most parameter values: nothing to look up
                return text
            expanded = self._expand_once(text)
            if expanded == text:
                return text
            text = expanded
        if "{" in text and self._expand_once(text) != text:
            raise ExpansionError(
                self._cycle_message(text)
                or f"variable references nest more than {MAX_DEPTH} levels deep"
            )
        return text

    def _expand_once(self, text: str) -> str:
        room = MAX_EXPANDED_CHARS - len(text)

        def replace(match: re.Match[str]) -> str:
            nonlocal room
            value = self._lookup(match)
            room -= len(value) - (match.end() - match.start())
            if room < 0:
                raise ExpansionError(
                    self._cycle_message(match.group(0))
                    or f"expanding variable {match.group(2)} makes a value longer than "
                    f"{MAX_EXPANDED_CHARS >> 20} MiB"
                )
            return value

        return _REF_RE.sub(replace, text)

    def _cycle_message(self, text: str) -> str | None:
        """Names a variable reached from ``text`` that refers to itself, with the path.

        Walked with a stack, not recursion: a chain of many variables must not end in a
        RecursionError.
        """
        done: set[str] = set()
        for start in self._references(text):
            path: list[str] = []
            stack: list[Iterator[str]] = [iter([start])]
            while stack:
                name = next(stack[-1], None)
                if name is None:
                    stack.pop()
                    if path:
                        done.add(path.pop())
                    continue
                if name in path:
                    cycle = [*path[path.index(name) :], name]
                    return f"variable {name} refers to itself ({' -> '.join(cycle)})"
                if name in done or not self.has(name):
                    continue
                path.append(name)
                value = _readable(self._raw(name))
                stack.append(self._references(value if isinstance(value, str) else ""))
        return None

    @staticmethod
    def _references(text: str) -> Iterator[str]:
        return (match.group(2) for match in _REF_RE.finditer(text))

    def expand_deep(self, value: Any) -> Any:
        """Expands every string inside lists and dicts (for JSON-typed parameters)."""
        if isinstance(value, str):
            return self.expand(value)
        if isinstance(value, list):
            return [self.expand_deep(v) for v in value]
        if isinstance(value, dict):
            return {k: self.expand_deep(v) for k, v in value.items()}
        return value


class Masker:
    """Replaces every known secret value with ``***`` in text shown to people."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, value: Any) -> None:
        if isinstance(value, str) and len(value) >= 3:
            self._secrets.add(value)

    def mask(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def mask_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, list):
            return [self.mask_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.mask_value(v) for k, v in value.items()}
        return value
