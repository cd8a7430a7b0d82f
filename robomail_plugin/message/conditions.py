"""Message conditions of mail loops and Check for Email: validated once, evaluated per message.

``parse_conditions`` checks the user's list (``{field, op, value}`` entries and ``match``) before
anything connects, naming the bad entry; ``Conditions.matches(info)`` evaluates a Message info
dict; ``Conditions.needs_body`` tells a loop whether it must fetch whole messages. The IMAP side
translates what SEARCH can express itself, from the parsed ``Condition`` records.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from robomail_plugin.errors import InvalidParameter

TEXT_FIELDS = ("from", "to", "cc", "subject", "body", "text")
ADDRESS_FIELDS = ("from", "to", "cc")
FIELDS = (*TEXT_FIELDS, "date", "size", "has_attachment")
TEXT_OPS = ("contains", "not_contains", "equals", "starts_with", "ends_with", "matches")
DATE_OPS = ("before", "after", "on")
SIZE_OPS = ("larger", "smaller")
BOOL_OPS = ("equals",)
OPS_BY_FIELD: dict[str, tuple[str, ...]] = {
    **{f: TEXT_OPS for f in TEXT_FIELDS},
    "date": DATE_OPS,
    "size": SIZE_OPS,
    "has_attachment": BOOL_OPS,
}
BODY_FIELDS = frozenset({"body", "text", "has_attachment"})
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)
_DAYS_AGO_RE = re.compile(r"^\s*(\d+)\s+days?\s+ago\s*$", re.IGNORECASE)
_IMAP_DATE_RE = re.compile(r"^\s*(\d{1,2})-([a-z]{3})-(\d{4})\s*$", re.IGNORECASE)


@attrs.frozen(kw_only=True)
class Condition:
    """One checked condition. ``value`` is typed by field: str, ``datetime.date``, int or bool."""

    index: int  # 1-based position in the user's list, for messages
    field: str
    op: str
    value: Any
    raw_value: str
    pattern: re.Pattern[str] | None = attrs.field(default=None, eq=False)

    @property
    def needs_body(self) -> bool:
        return self.field in BODY_FIELDS

    def matches(self, info: Mapping[str, Any]) -> bool:
        if self.field == "has_attachment":
            return bool(bool(info.get("has_attachments")) == self.value)
        if self.field == "size":
            size = info.get("size")
            if not isinstance(size, int):
                return False
            return bool(size > self.value if self.op == "larger" else size < self.value)
        if self.field == "date":
            day = message_day(info)
            if day is None:
                return False
            return bool({"before": day < self.value, "after": day > self.value,
                         "on": day == self.value}[self.op])
        return self._match_text(info)

    def _match_text(self, info: Mapping[str, Any]) -> bool:
        whole = _field_text(info, self.field)
        needle = self.value
        if self.op == "contains":
            return needle in whole.casefold()
        if self.op == "not_contains":
            return needle not in whole.casefold()
        if self.op == "matches":
            assert self.pattern is not None
            return self.pattern.search(whole) is not None
        candidates = [whole.casefold()]
        if self.field in ADDRESS_FIELDS:  # "equals alice@x" matches a single address or name too
            for name, addr in _address_pairs(info, self.field, whole):
                candidates += [name.casefold(), addr.casefold()]
        if self.op == "equals":
            return any(c == needle for c in candidates)
        if self.op == "starts_with":
            return any(c.startswith(needle) for c in candidates)
        return any(c.endswith(needle) for c in candidates)


@attrs.frozen(kw_only=True)
class Conditions:
    """The checked list and how to combine it; empty matches every message."""

    items: tuple[Condition, ...] = ()
    match: str = "all"

    @property
    def needs_body(self) -> bool:
        """True when some condition reads the body (body, text, has_attachment)."""
        return any(c.needs_body for c in self.items)

    def matches(self, info: Mapping[str, Any]) -> bool:
        if not self.items:
            return True
        results = (c.matches(info) for c in self.items)
        return all(results) if self.match == "all" else any(results)

    def __bool__(self) -> bool:
        return bool(self.items)


def _address_pairs(info: Mapping[str, Any], field: str, whole: str) -> list[tuple[str, str]]:
    """The (name, address) pairs of an address field: from Message info's ``<field>_list``,
    split before the names were decoded (a decoded name may hold a comma); split here only for
    an info without the list."""
    entries = info.get(f"{field}_list")
    if isinstance(entries, list):
        return [(str(e.get("name") or ""), str(e.get("address") or ""))
                for e in entries if isinstance(e, Mapping)]
    return email.utils.getaddresses([whole])


def _field_text(info: Mapping[str, Any], field: str) -> str:
    if field == "body":
        return str(info.get("body_text") or "") or str(info.get("body_html") or "")
    if field == "text":
        headers = info.get("headers")
        if isinstance(headers, list):
            head = "\n".join(f"{h[0]}: {h[1]}" for h in headers if len(h) == 2)
        else:
            head = "\n".join(
                f"{k}: {info.get(k) or ''}" for k in ("from", "to", "cc", "reply_to", "subject"))
        return head + "\n" + (str(info.get("body_text") or "") or str(info.get("body_html") or ""))
    return str(info.get(field) or "")


def message_day(info: Mapping[str, Any]) -> dt.date | None:
    """The calendar date the message was sent on, in the sender's own time zone (as IMAP does)."""
    iso = info.get("date_iso")
    if iso:
        try:
            return dt.datetime.fromisoformat(str(iso)).date()
        except ValueError:
            pass
    raw = info.get("date")
    if raw:
        try:
            return email.utils.parsedate_to_datetime(str(raw)).date()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return None


def parse_date(value: Any, *, today: dt.date | None = None) -> dt.date:
    """A condition date: ``2024-01-31``, ``31-Jan-2024``, an ISO date-time, ``today``,
    ``yesterday`` or ``N days ago``. Raises ValueError otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    today = today or dt.date.today()
    low = text.lower()
    if low == "today":
        return today
    if low == "yesterday":
        return today - dt.timedelta(days=1)
    m = _DAYS_AGO_RE.match(text)
    if m:
        return today - dt.timedelta(days=int(m.group(1)))
    m = _IMAP_DATE_RE.match(text)
    if m and m.group(2).lower() in _MONTHS:
        return dt.date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return dt.datetime.fromisoformat(text).date()


def parse_size(value: Any) -> int:
    """Bytes from ``12345``, ``10K``, ``2MB`` or ``1G`` (binary multiples). Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("negative")
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError("not a size")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on", ""):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError("not true/false")


def parse_conditions(raw: Any, match: str | None = "all") -> Conditions:
    """Checks the ``conditions`` parameter (a list, one mapping, JSON text, or empty).

    Raises ``InvalidParameter`` naming the entry (``condition 2``) and saying what is allowed.
    """
    match = (match or "all").strip().lower()
    if match not in ("all", "any"):
        raise InvalidParameter(f"match must be 'all' or 'any', not {match!r}")
    if raw is None or raw == "" or raw == []:
        return Conditions(items=(), match=match)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise InvalidParameter(
                "conditions must be a list of {field, op, value} entries (YAML or JSON text); "
                f"the text given is not valid JSON: {exc}") from None
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        raise InvalidParameter("conditions must be a list of {field, op, value} entries")
    return Conditions(items=tuple(_parse_one(i, e) for i, e in enumerate(raw, 1)), match=match)


def _parse_one(index: int, entry: Any) -> Condition:
    where = f"condition {index}"
    if not isinstance(entry, Mapping):
        raise InvalidParameter(f"{where} must be a mapping with field, op and value, not {entry!r}")
    unknown = sorted(set(map(str, entry)) - {"field", "op", "value"})
    if unknown:
        raise InvalidParameter(f"{where}: unknown key(s) {', '.join(unknown)}; "
                               "use field, op and value")
    field = str(entry.get("field") or "").strip().lower()
    if field not in FIELDS:
        raise InvalidParameter(f"{where}: field {entry.get('field')!r} is not one of "
                               f"{', '.join(FIELDS)}")
    allowed = OPS_BY_FIELD[field]
    op = str(entry.get("op") or ("equals" if field == "has_attachment" else "")).strip().lower()
    if op not in allowed:
        raise InvalidParameter(f"{where}: op {entry.get('op')!r} does not apply to field "
                               f"{field!r}; use one of {', '.join(allowed)}")
    value = entry.get("value", True if field == "has_attachment" else None)
    if value is None:
        raise InvalidParameter(f"{where}: a value is required")
    raw_value = str(value)
    pattern = None
    try:
        if field == "date":
            typed: Any = parse_date(value)
        elif field == "size":
            typed = parse_size(value)
        elif field == "has_attachment":
            typed = _parse_bool(value)
        elif op == "matches":
            pattern = re.compile(raw_value, re.IGNORECASE)
            typed = raw_value
        else:
            typed = raw_value.casefold()
    except re.error as exc:
        raise InvalidParameter(f"{where}: {raw_value!r} is not a valid regular expression: {exc}"
                               ) from None
    except (ValueError, OverflowError):
        hint = {
            "date": "a date such as 2024-01-31, 31-Jan-2024, today, yesterday or '7 days ago'",
            "size": "a number of bytes such as 50000, 100K or 2M",
            "has_attachment": "true or false",
        }[field]
        raise InvalidParameter(f"{where}: value {raw_value!r} is not {hint}") from None
    return Condition(index=index, field=field, op=op, value=typed, raw_value=raw_value,
                     pattern=pattern)
