"""A server's reply as text, from what each mail library hands over (bytes, a repr of bytes, an
exception's argument). Light to import: ``connect`` re-exports from here."""

from __future__ import annotations

import re
from typing import Any

from robomail_plugin.message.wire_text import wire_text


def smtp_reply(code: int, text: Any) -> str:
    """An SMTP reply as one line of text: its code, then its words (smtplib gives them as bytes)."""
    return f"{code} {wire_text(text)}"


def pop3_eof(exc: BaseException) -> bool:
    """Whether a ``poplib.error_proto`` is poplib's own "-ERR EOF": the server closed the
    connection (a reply from the server arrives as bytes, this one is a str)."""
    return bool(exc.args) and exc.args[0] == "-ERR EOF"


def pop3_reply(exc: BaseException) -> str:
    """The server's reply a ``poplib.error_proto`` carries (its first argument), as text."""
    return wire_text(exc.args[0] if exc.args else exc)


_BYTES_LITERAL_RE = re.compile(r"""\bb('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def _unwrap_bytes(text: str) -> str:
    """Each ``b'...'`` (a Python bytes repr, as imaplib's errors carry server replies) as the
    text the server sent: quotes, escapes and the ``b`` gone, UTF-8 decoded."""
    import ast  # only for a refused login

    def one(m: re.Match[str]) -> str:
        try:
            value = ast.literal_eval("b" + m.group(1))
        except (ValueError, SyntaxError):
            return m.group(0)
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else m.group(0)

    return _BYTES_LITERAL_RE.sub(one, text)


def clean_imap_reply(message: str) -> str:
    """The server's own words from an imaplib/imapclient error: ``b'[X] Y'`` (a refused LOGIN:
    Dovecot, Cyrus, Mailutils) -> ``[X] Y``; ``AUTHENTICATE command error: BAD [b'Y']`` ->
    ``BAD Y``; ``authenticate failed: Y`` -> ``Y``.

    For login refusals only. Commands after login go through ``imap.session.server_reply``,
    which is not the same: it drops imapclient's advice after a blank line and a ``...failed:``
    or ``...error:`` anywhere (``socket error: EOF`` -> ``EOF``), and leaves ``\\xNN`` escapes
    as Python wrote them. Here escapes are decoded and a ``failed:`` in the server's own words
    (``Login failed: ...``, ``Authentication failed: ...``) is kept."""
    whole = _BYTES_LITERAL_RE.fullmatch(message.strip())
    if whole:  # the reply itself: a "failed:" inside it is the server's, so keep it
        return _unwrap_bytes(whole.group(0))
    text = _unwrap_bytes(message)
    m = re.search(r"command error: (NO|BAD)\s*\[(.*)\]\s*$", text)
    if m:
        return f"{m.group(1)} {m.group(2)}"
    m = re.match(r"[a-z_]+ failed: (.*)$", text)  # imapclient's "<command> failed: <reply>"
    return m.group(1) if m else text
