"""``HOSTSIM_TRACE=1``: one line per hook call and result, safe to paste into a bug report.

pluggy's own tracing prints every argument and result in full: live access tokens and every
ActionSpec on each call. Here secret-bearing results are masked, secret-looking text is masked
wherever it appears, containers show a count and a few ids, and long text is cut short.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

from hostsim.runtime.variables import MASK, SECRET_NAME_RE

#: hooks whose text results are secrets (robomail_get_access_token returns a bearer token)
SECRET_RESULT_HOOKS = frozenset({"robomail_get_access_token"})
MAX_TEXT = 200  # characters of one text value shown
MAX_LINE = 400  # characters of one rendered argument or result
MAX_ITEMS = 3  # items of a list shown before "+N more"
ID_ATTRIBUTES = ("id", "key", "record_type", "record_name", "name")

_TOKEN_RUN_RE = re.compile(r"[A-Za-z0-9._~+/=-]{24,}")
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+\S+")


def _looks_secret(run: str) -> bool:
    """A long run of token characters mixing upper case, lower case and digits, or long hex."""
    has_upper = any(c.isupper() for c in run)
    has_lower = any(c.islower() for c in run)
    has_digit = any(c.isdigit() for c in run)
    is_hex = len(run) >= 32 and all(c in "0123456789abcdefABCDEF" for c in run)
    return (has_upper and has_lower and has_digit) or is_hex


def mask_text(text: str) -> str:
    """Masks bearer credentials and token-shaped runs, then cuts the text to MAX_TEXT."""
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _TOKEN_RUN_RE.sub(lambda m: MASK if _looks_secret(m.group(0)) else m.group(0), text)
    if len(text) > MAX_TEXT:
        text = f"{text[:MAX_TEXT]}... ({len(text)} chars)"
    return text


def render(value: Any, *, secret: bool = False, depth: int = 0) -> str:
    """A short, masked description of an argument or result; never its repr()."""
    if secret and isinstance(value, str):
        return MASK
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        return repr(mask_text(value))
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        keys = [mask_text(str(k)) for k in list(value)[:MAX_ITEMS]]
        more = f", +{len(value) - MAX_ITEMS} more" if len(value) > MAX_ITEMS else ""
        return f"{{{len(value)} keys: {', '.join(keys)}{more}}}"
    if isinstance(value, Sequence | set | frozenset):
        return _render_items(list(value), secret=secret, depth=depth)
    return _render_object(value)


def _render_items(items: list[Any], *, secret: bool, depth: int) -> str:
    if depth >= 2 or not items:
        return f"[{_count(len(items))}]"
    kinds = {type(item) for item in items}
    shown = items[:MAX_ITEMS]
    more = f", +{len(items) - MAX_ITEMS} more" if len(items) > MAX_ITEMS else ""
    if len(kinds) == 1 and _identity(items[0]) is not None:  # e.g. [38 ActionSpec: ids...]
        ids = ", ".join(str(_identity(item)) for item in shown)
        return f"[{len(items)} {type(items[0]).__name__}: {ids}{more}]"
    parts = ", ".join(render(item, secret=secret, depth=depth + 1) for item in shown)
    return f"[{_count(len(items))}: {parts}{more}]"


def _count(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def _identity(value: Any) -> str | None:
    for attribute in ID_ATTRIBUTES:
        found = getattr(value, attribute, None)
        if isinstance(found, str):
            return mask_text(found)
    return None


def _render_object(value: Any) -> str:
    identity = _identity(value)
    name = type(value).__name__
    return f"<{name} {identity}>" if identity is not None else f"<{name}>"


def _argument(name: str, value: Any) -> str:
    return f"{name}={render(value, secret=bool(SECRET_NAME_RE.search(name)))}"[:MAX_LINE]


def trace_hook_calls(pm: pluggy.PluginManager, write: Callable[[str], object]) -> None:
    """Writes each hook call and its outcome to ``write``, nested calls indented."""
    depth = 0

    def before(hook_name: str, methods: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        nonlocal depth
        arguments = ", ".join(_argument(k, v) for k, v in kwargs.items())
        write(f"{'  ' * depth}{hook_name}({arguments}) [{len(methods)} implementation(s)]\n")
        depth += 1

    def after(
        outcome: pluggy.Result[Any],
        hook_name: str,
        methods: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> None:
        nonlocal depth
        depth = max(depth - 1, 0)
        if outcome.exception is not None:
            shown = f"raised {type(outcome.exception).__name__}"
        else:
            result = outcome.get_result()
            shown = render(result, secret=hook_name in SECRET_RESULT_HOOKS)[:MAX_LINE]
        write(f"{'  ' * depth}{hook_name} --> {shown}\n")

    pm.add_hookcall_monitoring(before, after)
