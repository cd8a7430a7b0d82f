"""``poplib`` as robomail uses it: import it from here to open a POP3 connection.

poplib refuses a line longer than its ``_MAXLINE`` (2 KB) with "line too long", and real mail has
longer ones (HTML without line breaks, long headers). The limit is a module global of poplib that
its line reader consults, with no public setting: raising it is process-wide, done once, here,
when this module is first imported (with the first POP3 connection; start-up loads neither this
module nor poplib).

poplib also has no command for AUTH (RFC 5034): ``POP3`` and ``POP3_SSL`` here are poplib's
classes with ``send_line``, which speaks one line of an exchange through the connection's own
socket and reply reader, the ones poplib itself swaps for TLS ones on STLS.
"""

from __future__ import annotations

import poplib
import sys

__all__ = ["POP3", "POP3_SSL", "poplib"]

poplib._MAXLINE = max(poplib._MAXLINE, 8 * 1024 * 1024)  # type: ignore[attr-defined]

# An AUTH exchange's replies are short ("+ <challenge>", "-ERR ..."); a longer line is no reply.
_REPLY_LIMIT = 64 * 1024


class POP3(poplib.POP3):
    """``poplib.POP3`` with ``send_line`` for the commands poplib does not know (AUTH)."""

    def send_line(self, line: bytes) -> bytes:
        """Sends ``line`` (CRLF added) and returns the server's one-line reply, CRLF stripped.

        A reply starting with "+" (+OK, or "+ " with a SASL challenge) is returned; any other
        raises ``poplib.error_proto`` with it, and a closed connection raises
        ``error_proto("-ERR EOF")``, as poplib's own commands do.

        Uses only the connection's ``sock`` (written) and ``file`` (read): poplib reads its own
        replies through ``file`` too, so nothing is read ahead of it, and STLS replaces both.
        """
        sys.audit("poplib.putline", self, line)  # the audit event poplib raises for a line
        self.sock.sendall(line + b"\r\n")
        reply = self.file.readline(_REPLY_LIMIT + 1)
        if len(reply) > _REPLY_LIMIT:
            raise poplib.error_proto("line too long")
        if not reply:
            raise poplib.error_proto("-ERR EOF")
        reply = reply.rstrip(b"\r\n")
        if not reply.startswith(b"+"):
            raise poplib.error_proto(reply)
        return reply


class POP3_SSL(poplib.POP3_SSL, POP3):
    """``poplib.POP3_SSL`` (TLS from the start) with ``send_line``."""
