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
from typing import TYPE_CHECKING, Any

import attrs

from robomail_plugin import errors
from robomail_plugin.message.conditions import Condition, Conditions
from robomail_plugin.shared_params import Messages

if TYPE_CHECKING:
    from imapclient import IMAPClient

_MESSAGES_KEYS: dict[Messages, list[Any]] = {
    Messages.ALL: [],
    Messages.UNSEEN: ["UNSEEN"],
    Messages.SEEN: ["SEEN"],
    Messages.FLAGGED: ["FLAGGED"],
    Messages.UNFLAGGED: ["UNFLAGGED"],
    Messages.ANSWERED: ["ANSWERED"],
    Messages.UNANSWERED: ["UNANSWERED"],
    Messages.DELETED: ["DELETED"],
    Messages.UNDELETED: ["UNDELETED"],
    Messages.NEW: ["NEW"],
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


def messages_keys(messages: Messages | str | None) -> list[Any]:
    """The SEARCH keys of a ``messages`` choice (a member, or its value as text)."""
    try:
        member = Messages(str(messages or Messages.ALL).strip().lower())
    except ValueError:
        raise errors.InvalidParameter(
            f"messages {messages!r} is not one of {', '.join(Messages)}."
        ) from None
    return list(_MESSAGES_KEYS[member])


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


def plan_search(messages: Messages | str | None, conditions: Conditions) -> SearchPlan:
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


class Literal(bytes):
    """A search value sent as an IMAP literal (``{n}`` CRLF, then the bytes): 8-bit text may not
    go in a quoted string (RFC 3501 9, TEXT-CHAR is 7-bit)."""


_RAW_ATOM_RE = re.compile(r'[^\s()"]+')


def raw_search_parts(raw: str) -> list[bytes]:
    """The wire form of a task's ``raw_search``: ASCII text, and a ``Literal`` for each value
    with non-ASCII characters, in order, with ``CHARSET UTF-8`` first when there is one.

    Keys, parentheses and ASCII values keep their own words; only the 8-bit values become
    literals, each where the value stood (the whole text as one literal is a single string, not
    search keys, and every server refuses it). Line breaks and other control characters are
    refused: they would end the command and start another.
    """
    _refuse_control_characters(raw)
    parts: list[bytes] = []
    text: list[str] = []  # ASCII waiting to go out as one part
    words = 0
    charset_given = False
    at = 0
    while at < len(raw):
        ch = raw[at]
        if ch.isspace():
            if text and text[-1] != " ":
                text.append(" ")
            at += 1
        elif ch in "()":
            text.append(ch)
            at += 1
        elif ch == '"':
            value, at = _quoted(raw, at)
            _add_value(parts, text, value, quoted=True)
            words += 1
        else:
            word, at = _raw_atom(raw, at)
            if words == 0 and word.upper() == "CHARSET":
                charset_given = True
            _add_value(parts, text, word, quoted=False)
            words += 1
    parts.append("".join(text).rstrip().encode("ascii"))
    return _finish_parts(parts, charset_given)


def _refuse_control_characters(raw: str) -> None:
    """A line break would end the command and start another; other control characters have no
    place in a search either."""
    bad = sorted({f"U+{ord(c):04X}" for c in raw if ord(c) < 0x20 or ord(c) == 0x7F})
    if bad:
        raise errors.InvalidParameter(
            f"raw_search contains control characters ({', '.join(bad)}); write it on one line."
        )


def _raw_atom(raw: str, at: int) -> tuple[str, int]:
    """The unquoted word starting at ``raw[at]`` and the index after it. A ``{`` looks like the
    start of an IMAP literal, which a task cannot write here: its values go in double quotes."""
    m = _RAW_ATOM_RE.match(raw, at)
    assert m is not None  # raw[at] is none of the characters that end an atom
    word = m.group(0)
    if "{" in word:
        raise errors.InvalidParameter(
            f"raw_search: {word!r} looks like an IMAP literal; write values in double "
            'quotes instead, e.g. SUBJECT "Grüße".'
        )
    return word, m.end()


def _add_value(parts: list[bytes], text: list[str], value: str, *, quoted: bool) -> None:
    """One search value: an ASCII one joins the pending text (quoted again if it was); an 8-bit
    one ends that text and becomes a ``Literal`` where it stood."""
    if value.isascii():
        if quoted:
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        text.append(value)
        return
    parts.append("".join(text).encode("ascii"))
    text.clear()
    parts.append(Literal(value.encode("utf-8")))


def _finish_parts(parts: list[bytes], charset_given: bool) -> list[bytes]:
    """Drops empty parts and the leading space, and puts ``CHARSET UTF-8`` first when there is a
    literal and the task named no charset itself (without one a search is US-ASCII)."""
    parts = [p for p in parts if p]
    if parts and isinstance(parts[0], bytes) and not isinstance(parts[0], Literal):
        parts[0] = parts[0].lstrip()
    if any(isinstance(p, Literal) for p in parts) and not charset_given:
        parts.insert(0, b"CHARSET UTF-8 ")
    return parts


def _quoted(raw: str, at: int) -> tuple[str, int]:
    """The value of the quoted string starting at ``raw[at]`` and the index after it."""
    out: list[str] = []
    i = at + 1
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise errors.InvalidParameter(
        f"raw_search: the quote opened at character {at + 1} is not closed."
    )


def search_raw(client: IMAPClient, raw: str) -> list[int]:
    """``UID SEARCH`` with a task's raw criteria, 8-bit values as literals (see
    ``raw_search_parts``); the matching UIDs.

    imapclient joins arguments with spaces and puts one after each literal, which cannot put a
    literal right before ")"; so the command is written here, over imapclient's imaplib object.
    """
    from imapclient.response_parser import parse_message_list

    parts = raw_search_parts(raw)
    if not parts:
        raise errors.InvalidParameter("raw_search is empty.")
    from robomail_plugin.imap.session import wire

    imap = wire(client)
    tag = imap._new_tag()
    line = tag + (b" UID SEARCH " if client.use_uid else b" SEARCH ")
    for part in parts:
        if not isinstance(part, Literal):
            line += part
            continue
        # Synchronising literals even with LITERAL+: one round trip per value, and a server that
        # refuses the command before a literal never reads the literal as a command.
        imap.send(line + b"{%d}\r\n" % len(part))
        line = b""
        if not _continued(imap, tag):
            break  # refused before the literal: its answer is waiting, the literal is not sent
        imap.send(part)
    else:
        imap.send(line + b"\r\n")
    typ, data = imap._command_complete("SEARCH", tag)
    typ, data = imap._untagged_response(typ, data, "SEARCH")
    client._checkok("search", typ, data)
    return list(parse_message_list(data))


def _continued(imap: Any, tag: bytes) -> bool:
    """Waits for the server's "+" before a literal; False when it answered the command instead."""
    while imap._get_response():  # None: the continuation came
        if imap.tagged_commands.get(tag):
            return False
    return True


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
