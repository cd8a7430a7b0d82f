"""The "Message info" JSON every mail action writes (loops, Parse Email, Check for Email).

One place turns message bytes (whole, or headers only) into the dict of ACTIONS.md, so POP3, IMAP
and Parse Email agree on every field. Hostile input never raises: a broken header is shown as
written, an unknown or wrong charset decodes with replacement characters.

The message is parsed with the ``compat32`` policy on purpose: it keeps raw header values and
never runs the structured header parser (which can raise on, or crawl through, hostile headers);
this module decodes RFC 2047 words, RFC 2231 parameters and 8-bit headers itself.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime as dt
import email.errors
import email.feedparser
import email.utils
import quopri
import re
from collections.abc import Callable
from email.message import Message
from typing import Any, TypeVar

from robomail_plugin.errors import ParseError

_FOLD_RE = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")
_SURROGATE_RE = re.compile("[\udc80-\udcff]")
# One address as most From headers carry it: `Display Name <local@domain>` or `local@domain`, the
# name made of atoms (RFC 5322 atext, dots, encoded words). Such a header is split here, as the
# stdlib's address parser would split it (tests/test_message_info.py checks the two agree);
# quotes, comments, groups, routes and lists go to the stdlib.
_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_ADDR = rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_ADDRESS_RE = re.compile(
    rf"[ \t]*(?:([{_ATEXT}.][{_ATEXT}. \t]*?)?[ \t]*<({_ADDR})>|({_ADDR}))[ \t]*"
)
_MAX_DEPTH = 40  # nested multiparts deeper than this are not looked into (hostile input)
_TEXT_TYPES = ("text/plain", "text/html")
#: Every header the Message info of a headers-only message is made from. IMAP loops fetch only
#: these (``BODY.PEEK[HEADER.FIELDS (...)]``): trace, DKIM and ARC headers are most of a real
#: header's bytes and none of its info.
INFO_HEADERS = (
    "Message-ID", "From", "To", "Cc", "Reply-To", "Subject", "Date",
    "Content-Type", "Content-Disposition",
)


def parse_message(data: bytes | str | Message, *, headers_only: bool = False) -> Message:
    """Parses message bytes (or text) into a ``Message``; raises only ``ParseError``."""
    if isinstance(data, Message):
        return data
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ParseError(f"cannot parse a message from {type(data).__name__}; give bytes or text")
    try:
        parser = _FeedParser(_Part)  # the documented default policy, compat32
        if headers_only:
            parser._set_headersonly()  # type: ignore[attr-defined]
        parser.feed(bytes(data).decode("ascii", "surrogateescape"))
        return parser.close()
    except Exception as exc:  # the stdlib parser is lenient; anything else is a parse failure
        raise ParseError(f"the message cannot be parsed: {type(exc).__name__}") from exc


class _Part(Message):
    """A parsed part. While the parser reads the body of a message/* part, the part calls itself
    application/octet-stream: the parser then keeps that body's bytes as they came, instead of
    parsing them into a tree that could only be saved re-serialised (refolded headers, other
    line ends: a broken DKIM signature) or, for reports (message/delivery-status), not at all."""

    _keep_raw = False

    def get_content_type(self) -> str:
        if self._keep_raw:
            return "application/octet-stream"
        return super().get_content_type()


class _FeedParser(email.feedparser.FeedParser):
    """The stdlib's parser, marking message/* parts (see ``_Part``) between their headers and
    the end of their body."""

    def _parse_headers(self, lines: list[str]) -> None:
        super()._parse_headers(lines)  # type: ignore[misc]
        cur = self._cur  # type: ignore[attr-defined]
        if isinstance(cur, _Part) and cur.get_content_maintype() == "message":
            cur._keep_raw = True

    def _pop_message(self) -> Message:
        msg: Message = super()._pop_message()  # type: ignore[misc]
        if isinstance(msg, _Part):
            msg.__dict__.pop("_keep_raw", None)
        return msg


# --- text decoding -------------------------------------------------------------------------------


def _codec(charset: str | None, fallback: str = "utf-8") -> str:
    """A Python codec name for a declared charset, or ``fallback`` when it is unknown."""
    if not charset:
        return fallback
    name = charset.strip().strip('"').lower()
    if name in ("unknown-8bit", "x-unknown", "8bit", "default", ""):
        return fallback
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return fallback


def decode_bytes(raw: bytes, charset: str | None) -> str:
    """Decodes body or header bytes with the declared charset, never raising.

    Text declared as ASCII (or not declared) that is not ASCII is tried as UTF-8 first, then
    Windows-1252, since that is what such mail almost always is. UTF-8 with a few bad bytes stays
    UTF-8 (each bad byte U+FFFD), rather than turning every character into 1252 mojibake.
    """
    codec = _codec(charset, fallback="ascii")
    if codec == "ascii":
        for guess in ("ascii", "utf-8"):
            try:
                return raw.decode(guess)
            except UnicodeDecodeError:
                continue
        return _mostly_utf8(raw) or raw.decode("cp1252", "replace")
    try:
        return raw.decode(codec, "replace")
    except Exception:  # a codec that cannot even decode with replacement (rare, exotic)
        return raw.decode("utf-8", "replace")


def _mostly_utf8(raw: bytes) -> str | None:
    """``raw`` as UTF-8 with replacement when it holds at least as many valid multi-byte
    characters as bad bytes; None otherwise. Windows-1252 text almost never holds a valid UTF-8
    sequence, so one is good evidence."""
    text = raw.decode("utf-8", "replace")
    bad = text.count("\ufffd") - raw.count(b"\xef\xbf\xbd")
    good = len(text) - len(text.encode("ascii", "ignore")) - text.count("\ufffd")
    return text if good and good >= bad else None


def _fix_8bit(value: str) -> str:
    """Raw 8-bit bytes in a header (kept as surrogates by the parser) decoded as UTF-8 or 1252."""
    if value.isascii() or not _SURROGATE_RE.search(value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    return decode_bytes(raw, None)


_ENCODED_WORD_RE = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(m: re.Match[str]) -> bytes | None:
    encoding, payload = m.group(2).lower(), m.group(3)
    try:
        if encoding == "b":
            return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=False)
        return quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"))
    except (binascii.Error, ValueError):
        return None


def _decode_words(text: str) -> str:
    """Decodes the encoded words of ``text``; adjacent words of one charset are joined as bytes
    first, so a character split across two words (common in real mail) survives."""
    out: list[str] = []
    pos = 0
    pending: bytearray | None = None
    pending_charset = ""

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            cs = None if pending_charset.lower() in ("us-ascii", "ascii") else pending_charset
            out.append(decode_bytes(bytes(pending), cs))
            pending = None

    for m in _ENCODED_WORD_RE.finditer(text):
        between = text[pos:m.start()]
        raw = _word_bytes(m)
        adjacent = pending is not None and not between.strip(" \t")
        if raw is None:
            flush()
            out.append(between + m.group(0))
        elif adjacent and m.group(1).lower() == pending_charset.lower():
            assert pending is not None
            pending += raw
        else:
            flush()
            if not adjacent:
                out.append(between)
            pending, pending_charset = bytearray(raw), m.group(1)
        pos = m.end()
    flush()
    out.append(text[pos:])
    return "".join(out)


def decode_header_value(value: Any) -> str:
    """Unfolds a raw header value and decodes RFC 2047 encoded words, never raising.

    Each encoded word is decoded on its own: a broken word stays as written, an unknown charset
    decodes as UTF-8 with replacement, and the others still decode.
    """
    if value is None:
        return ""
    text = _unfold(value)
    if "=?" not in text:
        return text
    return _decode_words(text).replace("\r", " ").replace("\n", " ")


def _unfold(value: Any) -> str:
    """A raw header value unfolded, 8-bit bytes decoded, stripped; not RFC 2047 decoded."""
    text = str(value)  # a Header object (set by a program, not parsed) reads as its text
    if "\n" in text or "\r" in text:
        text = _FOLD_RE.sub("", text)
    return _fix_8bit(text).strip()


def header(msg: Message, name: str) -> str:
    """The first header ``name``, decoded; empty when absent."""
    return decode_header_value(_first_values(msg).get(name.lower()))


def _first_values(msg: Message) -> dict[str, Any]:
    """The first raw value of every header by lower-case name, in one pass over the headers."""
    first: dict[str, Any] = {}
    for key, value in _raw_items(msg):
        first.setdefault(key.lower(), value)
    return first


def _raw_items(msg: Message) -> list[tuple[str, Any]]:
    try:
        return list(msg.raw_items())
    except Exception:
        return []


def header_list(msg: Message) -> list[list[str]]:
    """Every header in order as ``[name, decoded value]`` (repeated headers kept)."""
    return [[str(k), decode_header_value(v)] for k, v in _raw_items(msg)]


def addresses(raw: str) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs of an address header, names decoded."""
    if not raw:
        return []
    # the stdlib's parser costs a loop over 5,000 headers 0.1 s: the usual forms, one or a list
    # of them, are split here (no quotes or comments, so a comma always separates two)
    simple = [_SIMPLE_ADDRESS_RE.fullmatch(piece) for piece in raw.split(",")]
    if all(simple):
        pairs = [_simple_pair(m) for m in simple if m is not None]
    else:
        try:
            pairs = email.utils.getaddresses([raw])
        except Exception:
            return []
    return [(decode_header_value(n), a) for n, a in pairs if n or a]


def _simple_pair(match: re.Match[str]) -> tuple[str, str]:
    name, bracketed, bare = match.groups()
    return (" ".join(name.split()) if name else "", bracketed or bare)


def address_list(raw: Any) -> list[dict[str, str]]:
    """An address header as ``[{name, address}]``: split before the names are decoded, so a
    decoded comma (``=?utf-8?q?M=C3=BCller=2C_Anna?=``) stays inside its name."""
    if raw is None:
        return []
    return [{"name": n, "address": a} for n, a in addresses(_unfold(raw))]


# --- parts ---------------------------------------------------------------------------------------


_T = TypeVar("_T")
_D = TypeVar("_D")


def _safe(call: Callable[[], _T], default: _D) -> _T | _D:
    try:
        return call()
    except Exception:
        return default


def part_filename(part: Message) -> str | None:
    """The file name of a part (RFC 2231 and RFC 2047 decoded), or None."""
    source = _params_source(part)
    name: Any = _safe(lambda: source.get_filename(), None)
    if name is None:
        name = _safe(lambda: source.get_param("name"), None)
        if isinstance(name, tuple):  # an RFC 2231 triple
            triple = name
            name = _safe(lambda: email.utils.collapse_rfc2231_value(triple), None)
    if name is None:
        return None
    return decode_header_value(str(name))


def _params_source(part: Message) -> Message:
    """The part, or a stand-in whose Content-Type and Content-Disposition have their raw 8-bit
    bytes decoded (UTF-8, else Windows-1252): the stdlib's parameter reader would turn those
    bytes into U+FFFD before this module could repair them (``filename="Счёт.zip"``)."""
    items = [(k, v) for k, v in _raw_items(part)
             if k.lower() in ("content-type", "content-disposition")]
    if all(not isinstance(v, str) or v.isascii() for _k, v in items):
        return part
    stand_in = Message()
    for key, value in items:
        stand_in[key] = _fix_8bit(value) if isinstance(value, str) else value
    return stand_in


def _content_type(part: Message) -> str:
    return _safe(lambda: part.get_content_type(), "application/octet-stream")


def _disposition(part: Message) -> str | None:
    return _safe(lambda: part.get_content_disposition(), None)


def part_bytes(part: Message) -> bytes:
    """The decoded payload of a leaf part (transfer encoding undone); never raises."""
    payload = _safe(lambda: part.get_payload(decode=True), None)
    if isinstance(payload, bytes):
        return payload
    raw = _safe(lambda: part.get_payload(), "")
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def part_text(part: Message) -> str:
    """The decoded text of a text part, with plain newlines."""
    text = decode_bytes(part_bytes(part), _safe(lambda: part.get_content_charset(), None))
    return text.replace("\r\n", "\n").replace("\r", "\n")


class Attachment:
    """One attachment found in a message: its decoded name, type and content."""

    __slots__ = ("_data", "content_type", "name", "part")

    def __init__(self, name: str | None, content_type: str, part: Message):
        self.name = name
        self.content_type = content_type
        self.part = part
        self._data: bytes | None = None

    def payload(self) -> bytes:
        """The attachment's bytes (a forwarded message as the bytes it came as), decoded once."""
        if self._data is None:
            self._data = part_bytes(self.part)
        return self._data

    def info(self) -> dict[str, Any]:
        return {"name": self.name or "", "size": len(self.payload()),
                "content_type": self.content_type}


_MESSAGE_TYPES = ("message/rfc822", "message/global", "message/news")
_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")


def _message_attachment(part: Message, name: str | None, ctype: str) -> Attachment:
    """A message/* part as one attachment. Without a file name, an attached message is named
    after its subject (``.eml``), a report after its type (``delivery-status.txt``)."""
    found = Attachment(name, ctype, part)
    if not name:
        if ctype in _MESSAGE_TYPES:
            data = found.payload()
            end = _HEAD_END_RE.search(data)
            inner = _safe(lambda: parse_message(data[:end.end()] if end else data,
                                                headers_only=True), None)
            subject = header(inner, "subject") if inner is not None else ""
            found.name = (subject or "message") + ".eml"
        else:
            found.name = ctype.partition("/")[2] + ".txt"
    return found


class MessageParts:
    """The parts of a message as Message info reads them (see ``walk_message``)."""

    __slots__ = ("attachments", "html_parts", "text_parts", "warnings")

    def __init__(self) -> None:
        self.text_parts: list[Message] = []
        self.html_parts: list[Message] = []
        self.attachments: list[Attachment] = []
        self.warnings: list[str] = []

    def body(self) -> tuple[str, str]:
        """``(text, html)``: each kind's parts joined in message order; the text is derived from
        the HTML when there is no text part."""
        html = _joined(self.html_parts)
        return (_joined(self.text_parts) if self.text_parts else html_to_text(html)), html


def _joined(parts: list[Message]) -> str:
    out = ""
    for part in parts:
        text = part_text(part)
        if out and text and not out.endswith("\n"):
            out += "\n"
        out += text
    return out


def _warn(out: MessageParts, text: str) -> None:
    if text not in out.warnings:
        out.warnings.append(text)


def _recovered(part: Message, ctype: str, out: MessageParts) -> list[Message]:
    """Parts the parser left in a multipart's epilogue, after what it took for the closing
    boundary. A nested multipart that reuses its parent's boundary closes the parent early, and
    every later part (often the attachments) lands there; mail-parser recovers them too."""
    epilogue = getattr(part, "epilogue", None)
    boundary = _safe(lambda: part.get_boundary(), None) if epilogue else None
    if not epilogue or not boundary or "--" + boundary not in epilogue:
        return []
    lines = list(re.finditer(rf"^--{re.escape(boundary)}(--)?[ \t]*\r?$", epilogue, re.M))
    ends = [line.start() for line in lines[1:]] + [len(epilogue)]
    found: list[Message] = []
    for line, end in zip(lines, ends, strict=True):
        if line.group(1):  # a closing boundary: the rest is a real epilogue
            break
        chunk = epilogue[line.end():end]
        chunk = chunk.removeprefix("\n").removesuffix("\n").removesuffix("\r")
        found.append(parse_message(chunk.encode("ascii", "surrogateescape")))
    if found:
        _warn(out, f'{len(found)} part(s) came after the closing boundary "{boundary}" of a '
              f"{ctype} part (a nested multipart reuses that boundary); they were recovered")
    return found


def walk_message(msg: Message) -> MessageParts:
    """The body parts and attachments of a message, in message order.

    Every text/plain and text/html leaf not marked as an attachment belongs to the body (Apple
    Mail sends text, image, text; lists append a footer part), except a second one of a kind in
    one multipart/alternative. One with a file name is an attachment too, and the body only when
    the message has no other body part. Any other leaf is an attachment: marked so, named, or
    not text; a message/* part (an attached message, a delivery report) is one attachment, not
    looked into.
    """
    walk = _Walk()
    walk.visit(msg, 0, None)
    out = walk.out
    if not out.text_parts and not out.html_parts:  # the first named one of each kind is body
        for kind, parts in (("text/plain", out.text_parts), ("text/html", out.html_parts)):
            parts += [p for p in walk.named if _content_type(p) == kind][:1]
    return out


class _Walk:
    """One pass of ``walk_message`` over a message's tree. ``named`` keeps the body-like parts
    that have a file name: they are attachments, and the body too only when the message has no
    other body part, which is known only at the end."""

    __slots__ = ("named", "out")

    def __init__(self) -> None:
        self.out = MessageParts()
        self.named: list[Message] = []

    def visit(self, part: Message, depth: int, alternative: set[str] | None) -> None:
        """``alternative``: the body kinds already taken in the enclosing
        multipart/alternative (None outside one), where only the first of each kind is body."""
        ctype = _content_type(part)
        if ctype.startswith("multipart/"):
            self._multipart(part, ctype, depth)
        elif ctype.startswith("message/"):
            # an attached message or a delivery report: one attachment, not looked into
            self.out.attachments.append(_message_attachment(part, part_filename(part), ctype))
        else:
            self._leaf(part, ctype, depth, alternative)

    def _multipart(self, part: Message, ctype: str, depth: int) -> None:
        """Visits the parts in order, with those the parser left in the epilogue; stops at
        ``_MAX_DEPTH`` (hostile input) and warns of a missing closing boundary."""
        out = self.out
        payload = _safe(lambda: part.get_payload(), None)
        if depth >= _MAX_DEPTH:
            _warn(out, f"multiparts nested deeper than {_MAX_DEPTH} levels were not looked "
                  "into")
        elif isinstance(payload, list):
            seen: set[str] | None = set() if ctype == "multipart/alternative" else None
            for sub in payload + _recovered(part, ctype, out):
                if isinstance(sub, Message):
                    self.visit(sub, depth + 1, seen)
        if any(isinstance(d, email.errors.CloseBoundaryNotFoundDefect)
               for d in getattr(part, "defects", ())):
            _warn(out, f"a {ctype} part has no closing boundary: the message may be cut "
                  "short, and its last part incomplete")

    def _leaf(self, part: Message, ctype: str, depth: int, alternative: set[str] | None) -> None:
        """A body part, a named body-like part (kept in ``named``, and an attachment), or an
        attachment."""
        out = self.out
        inline = _disposition(part) != "attachment"
        name = part_filename(part)
        if inline and ctype in _TEXT_TYPES and (alternative is None or ctype not in alternative):
            if alternative is not None:
                alternative.add(ctype)
            if not name:
                (out.text_parts if ctype == "text/plain" else out.html_parts).append(part)
                return
            self.named.append(part)
        elif inline and depth == 0 and not name and ctype.startswith("text/"):
            out.text_parts.append(part)  # a single-part text/* message of another subtype
            return
        out.attachments.append(Attachment(name, ctype, part))


def walk_parts(msg: Message) -> tuple[Message | None, Message | None, list[Attachment]]:
    """The first text/plain body part, the first text/html one, and the attachments (see
    ``walk_message``, which gives every body part)."""
    parts = walk_message(msg)
    text = parts.text_parts[0] if parts.text_parts else None
    return text, (parts.html_parts[0] if parts.html_parts else None), parts.attachments


# --- HTML to text --------------------------------------------------------------------------------


def html_to_text(html: str) -> str:
    """Readable plain text from HTML: tags dropped, entities decoded, blocks on their own lines."""
    from robomail_plugin.message import html_text  # loaded on first use: keeps start-up light

    return html_text.html_to_text(html)


# --- the info dict -------------------------------------------------------------------------------


_DATE_COMMENT_RE = re.compile(r"\(([^()]*)\)")
_MINUS_ZERO_RE = re.compile(r"(?<![\d:])-0000\b")


def _parse_date(text: str) -> dt.datetime | None:
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _date_iso(raw: str) -> str | None:
    """ISO 8601 with the sender's offset. Comments are dropped first (the stdlib reads
    ``(EDT) -0400`` as no zone) and tried as a zone name when no offset is left; ``-0000`` is
    UTC (RFC 5322: UTC, the sender's own zone unknown), not a time without an offset."""
    if not raw:
        return None
    text = _DATE_COMMENT_RE.sub(" ", raw) if "(" in raw else raw
    parsed = _parse_date(text)
    if parsed is not None and parsed.tzinfo is None:
        if _MINUS_ZERO_RE.search(text):
            parsed = parsed.replace(tzinfo=dt.UTC)
        else:
            for zone in _DATE_COMMENT_RE.findall(raw):
                zoned = _parse_date(f"{text} {zone.strip()}") if zone.strip().isalpha() else None
                if zoned is not None and zoned.tzinfo is not None:
                    parsed = zoned
                    break
    return parsed.isoformat() if parsed is not None else None


def _headers_only_has_attachments(msg: Message) -> bool:
    ctype = _content_type(msg)
    return ctype in ("multipart/mixed", "multipart/report") or (
        not ctype.startswith(("multipart/", "text/")) or _disposition(msg) == "attachment"
    )


def message_info(
    source: bytes | str | Message,
    *,
    number: int | None = None,
    uid: int | str | None = None,
    size: int | None = None,
    flags: list[str] | tuple[str, ...] | None = None,
    folder: str | None = None,
    include_body: bool = True,
    headers_only: bool = False,
) -> dict[str, Any]:
    """The Message info dict of ACTIONS.md for one message.

    ``source`` is the message (bytes, text or a parsed ``Message``), or only its headers when
    ``headers_only`` is true: then ``has_attachments`` is a guess from the top Content-Type
    (multipart/mixed), ``attachments`` is empty and there is no body. ``size`` defaults to the
    length of the bytes given. ``flags`` (IMAP) also sets ``seen``; without flags both are None.
    ``body_text``/``body_html`` are present when ``include_body`` and the body was given;
    ``body_text`` is derived from the HTML when there is no text part.
    """
    msg = parse_message(source, headers_only=headers_only)
    if size is None and isinstance(source, bytes | bytearray):
        size = len(source)
    elif size is None and isinstance(source, str):
        size = len(source.encode("utf-8", "surrogateescape"))
    first = _first_values(msg)  # one pass over the headers for every field below
    raw_from = first.get("from")
    from_list = address_list(raw_from)
    from_name, from_address = (from_list[0]["name"], from_list[0]["address"]) if from_list else (
        "", "")
    date_raw = decode_header_value(first.get("date"))
    flag_list = [str(f) for f in flags] if flags is not None else None
    info: dict[str, Any] = {
        "number": number,
        "uid": uid,
        "message_id": decode_header_value(first.get("message-id")),
        "from": decode_header_value(raw_from),
        "from_address": from_address,
        "from_name": from_name,
        "to": decode_header_value(first.get("to")),
        "cc": decode_header_value(first.get("cc")),
        "reply_to": decode_header_value(first.get("reply-to")),
        "from_list": from_list,
        "to_list": address_list(first.get("to")),
        "cc_list": address_list(first.get("cc")),
        "reply_to_list": address_list(first.get("reply-to")),
        "subject": decode_header_value(first.get("subject")),
        "date": date_raw,
        "date_iso": _date_iso(date_raw),
        "size": size,
        "flags": flag_list,
        "seen": ("\\Seen" in flag_list) if flag_list is not None else None,
        "folder": folder,
    }
    if headers_only:
        info["has_attachments"] = _headers_only_has_attachments(msg)
        info["attachments"] = []
        info["warnings"] = []
        return info
    parts = walk_message(msg)
    info["has_attachments"] = bool(parts.attachments)
    info["attachments"] = [a.info() for a in parts.attachments]
    info["warnings"] = parts.warnings
    if include_body:
        info["body_text"], info["body_html"] = parts.body()
    return info
