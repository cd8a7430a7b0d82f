"""POP3's steps of ``opener.open_with``, over poplib (``pop3_lib``'s classes, which add AUTH)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from robomail_plugin.message.wire_text import wire_text
from robomail_plugin.shared_params import Security
from robomail_plugin.transport import failures, sasl
from robomail_plugin.transport.opener import Adapter, Refused
from robomail_plugin.transport.pop3_lib import POP3, POP3_SSL, poplib
from robomail_plugin.transport.replies import pop3_eof, pop3_reply

if TYPE_CHECKING:
    import socket
    import ssl


class Pop3Adapter(Adapter[POP3]):
    # poplib reads the greeting and the STLS reply as -ERR/EOF with error_proto
    connect_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError, poplib.error_proto)
    starttls_name: ClassVar[str] = "STLS"

    def connect(self, ctx: ssl.SSLContext | None) -> POP3:
        s = self.settings
        if s.security == Security.SSL:
            return POP3_SSL(s.server, s.port, timeout=s.timeout, context=ctx)
        return POP3(s.server, s.port, timeout=s.timeout)

    def socket_of(self, conn: POP3) -> socket.socket | None:
        return conn.sock

    def offers_starttls(self, conn: POP3) -> bool:
        try:
            return "STLS" in conn.capa()
        except poplib.error_proto:
            return False

    def starttls(self, conn: POP3, ctx: ssl.SSLContext | None) -> None:
        conn.stls(context=ctx)

    def close(self, conn: POP3) -> None:
        conn.close()

    def password_allowed(self, conn: POP3) -> None:
        """Without TLS, a server whose CAPA lists no USER takes no password here (RFC 2449):
        sending it would put it on the wire in clear, and the refusal read like a wrong
        password. A server without CAPA (RFC 1939 only) says nothing either way, so it gets
        USER as before."""
        settings = self.settings
        if settings.security != Security.NONE:
            return
        try:
            caps = {name.upper() for name in conn.capa()}
        except poplib.error_proto as exc:
            if pop3_eof(exc):
                raise failures.pop3_closed(settings, "POP3 CAPA") from None
            return
        if "USER" not in caps:
            raise failures.password_in_clear(
                settings,
                "offers no USER in its capabilities (CAPA): it takes no password on a "
                "connection without TLS",
                "STLS" in caps,
            )

    def password_login(self, conn: POP3) -> None:
        try:
            conn.user(self.settings.username)
            conn.pass_(self.settings.password)
        except poplib.error_proto as exc:
            raise Refused(self._login_reply(exc)) from None

    def require_mechanism(self, conn: POP3) -> None:
        """Refuses before fetching a token when CAPA lists SASL mechanisms without the task's:
        the error can then name the one to use. A server without CAPA gets AUTH anyway."""
        try:
            offered = [m.upper() for m in conn.capa().get("SASL", [])]
        except poplib.error_proto:
            return  # no CAPA: try AUTH anyway
        if offered and self.settings.sasl.upper() not in offered:
            raise failures.mech_missing(self.settings, offered)

    def sasl_login(self, conn: POP3, initial: bytes, mech: sasl.OAuthMechanism) -> None:
        """Two steps (RFC 5034): AUTH, the server's "+", then the response on a line of its
        own (Outlook refuses it on the AUTH line). A "+ <challenge>" after the response is the
        error challenge: answered with an empty line, the server then says -ERR."""
        try:
            conn.send_line(f"AUTH {self.settings.sasl.upper()}".encode("ascii"))
            reply = conn.send_line(sasl.b64(initial).encode("ascii"))
            if not reply.upper().startswith(b"+OK"):
                mech.error = sasl.decode_error_challenge(reply[1:].strip())
                raise Refused(wire_text(conn.send_line(b"")))
        except poplib.error_proto as exc:
            raise Refused(self._login_reply(exc)) from None

    def _login_reply(self, exc: poplib.error_proto) -> str:
        """The server's reply to a refused login. Raises instead when the refusal is not about
        the credentials (the server closed the connection, the mailbox is locked, a server
        fault): neither another password nor a fresh token would help then."""
        if pop3_eof(exc):
            raise failures.pop3_closed(self.settings, "POP3 login") from None
        reply = pop3_reply(exc)
        refusal = failures.pop3_refusal(self.settings, reply)
        if refusal is not None:
            raise refusal from None
        return reply
