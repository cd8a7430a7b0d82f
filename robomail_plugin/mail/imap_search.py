"""Turning what a task asks for into IMAP SEARCH criteria, and UID lists from task values.

Conditions SEARCH can express exactly go to the server; the rest get a server-side pre-filter
where one exists (``equals x`` implies ``contains x``) and are checked again on the client by
``Conditions.matches``. With ``match: any`` everything goes in one OR tree when every condition is
exact, otherwise the server sends all candidates and the client decides.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import attrs

from robomail_plugin import errors
from robomail_plugin.mail.conditions import Condition, Conditions
from robomail_plugin.mail.params import MESSAGES_CHOICES

_MESSAGES_KEYS: dict[str, list[Any]] = {
    "all": [],
    "unseen": ["UNSEEN"],
    "seen": ["SEEN"],
    "flagged": ["FLAGGED"],
    "unflagged": ["UNFLAGGED"],
    "answered": ["ANSWERED"],
    "unanswered": ["UNANSWERED"],
    "deleted": ["DELETED"],
    "undeleted": ["UNDELETED"],
    "new": ["NEW"],
}
_TEXT_KEYS = {
    "from": "FROM",
    "to": "TO",
    "cc": "CC",
    "subject": "SUBJECT",
    "body": "BODY",
    "text": "TEXT",
}


@attrs.frozen
class SearchPlan:
    """The SEARCH criteria and what the client must still check."""

    criteria: list[Any]
    client: Conditions  # conditions evaluated on the client (empty: none)

    @property
    def needs_body(self) -> bool:
        return self.client.needs_body


def messages_keys(messages: str) -> list[Any]:
    key = (messages or "all").strip().lower()
    if key not in _MESSAGES_KEYS:
        raise errors.InvalidParameter(
            f"messages {messages!r} is not one of {', '.join(MESSAGES_CHOICES)}."
        )
    return list(_MESSAGES_KEYS[key])


def _value(text: str) -> bytes:
    # Bytes pass through imapclient untouched (8-bit ones as literals, with CHARSET UTF-8).
    return text.encode("utf-8")


def _exact(c: Condition) -> list[Any] | None:
    """SEARCH keys matching exactly the messages ``c`` matches, or None when SEARCH can't.

    Keys are flat (prefix notation: ``NOT k``, ``OR k1 k2`` need no parentheses), which also
    keeps 8-bit values as clean literals.
    """
    if c.field in _TEXT_KEYS and c.op in ("contains", "not_contains"):
        keys = [_TEXT_KEYS[c.field], _value(c.raw_value)]
        return keys if c.op == "contains" else ["NOT", *keys]
    if c.field == "size":
        return ["LARGER" if c.op == "larger" else "SMALLER", int(c.value)]
    if c.field == "date":
        day: dt.date = c.value
        if c.op == "before":
            return ["SENTBEFORE", day]
        if c.op == "on":
            return ["SENTON", day]
        return ["SENTSINCE", day + dt.timedelta(days=1)]  # after = strictly later days
    return None


def _prefilter(c: Condition) -> list[Any] | None:
    """Looser SEARCH keys every message matching ``c`` also matches (a superset), or None."""
    if c.field in _TEXT_KEYS and c.op in ("equals", "starts_with", "ends_with") and c.raw_value:
        return [_TEXT_KEYS[c.field], _value(c.raw_value)]
    return None


def _or_tree(parts: list[list[Any]]) -> list[Any]:
    if len(parts) == 1:
        return parts[0]
    return ["OR", *parts[0], *_or_tree(parts[1:])]


def plan_search(messages: str, conditions: Conditions) -> SearchPlan:
    """Criteria for ``messages`` + ``conditions``; what SEARCH cannot do is left to the client."""
    criteria: list[Any] = messages_keys(messages)
    client: list[Condition] = []
    if conditions.match == "any" and conditions.items:
        exact = [_exact(c) for c in conditions.items]
        if all(e is not None for e in exact):
            criteria.extend(_or_tree([e for e in exact if e is not None]))
        else:
            client = list(conditions.items)
    else:
        for c in conditions.items:
            exact_keys = _exact(c)
            if exact_keys is not None:
                criteria.extend(exact_keys)
                continue
            pre = _prefilter(c)
            if pre is not None:
                criteria.extend(pre)
            client.append(c)
    return SearchPlan(
        criteria=criteria or ["ALL"],
        client=Conditions(items=tuple(client), match=conditions.match),
    )


def needs_utf8(criteria: Iterable[Any]) -> bool:
    for item in criteria:
        if isinstance(item, bytes) and any(b > 127 for b in item):
            return True
        if isinstance(item, list | tuple) and needs_utf8(item):
            return True
    return False


_UID_PART_RE = re.compile(r"^\s*(\d+)\s*(?:[:\-]\s*(\d+|\*)\s*)?$")


def parse_uids(value: Any, *, what: str = "uid") -> list[int | str]:
    """UIDs from a task value: ``7``, ``"7"``, ``"1,3,5"``, ``"1:5"``, ``[1, 2]``, ``"10:*"``.

    Ranges stay as IMAP ranges (``"1:5"``) so a large range is one short command.
    """
    if value is None or value == "" or value == []:
        raise errors.InvalidParameter(
            f"{what} is empty: give a UID, a list (1,3,5) or a range (1:5)."
        )
    items: list[Any]
    if isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        text = str(value).strip().strip("[]")
        items = [p for p in re.split(r"[,;\s]+", text) if p]
    out: list[int | str] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            if item <= 0:
                raise errors.InvalidParameter(f"{what}: {item} is not a UID (UIDs start at 1).")
            out.append(item)
            continue
        m = _UID_PART_RE.match(str(item).strip().strip("\"'"))
        if not m:
            raise errors.InvalidParameter(
                f"{what}: {item!r} is not a UID; give numbers (7), a list (1,3,5) or a range (1:5)."
            )
        lo = int(m.group(1))
        if lo <= 0:
            raise errors.InvalidParameter(f"{what}: {lo} is not a UID (UIDs start at 1).")
        if m.group(2) is None:
            out.append(lo)
        else:
            out.append(f"{lo}:{m.group(2)}")
    return out
