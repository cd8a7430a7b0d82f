"""IMAP's steps of ``opener.open_with``, over imapclient (public API only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from imapclient import IMAPClient
from imapclient import exceptions as imap_exc

from robomail_plugin import errors
from robomail_plugin.message.wire_text import wire_text
from robomail_plugin.shared_params import Security
from robomail_plugin.transport import failures
from robomail_plugin.transport.opener import Adapter, Refused
from robomail_plugin.transport.replies import clean_imap_reply

if TYPE_CHECKING:
    import socket
    import ssl

    from robomail_plugin.transport import sasl


class ImapAdapter(Adapter[IMAPClient]):
    connect_errors: ClassVar[tuple[type[BaseException], ...]] = (
        OSError,
        imap_exc.IMAPClientError,
    )

    def connect(self, ctx: ssl.SSLContext | None) -> IMAPClient:
        s = self.settings
        return IMAPClient(
            s.server,
            port=s.port,
            ssl=s.security == Security.SSL,
            ssl_context=ctx,
            timeout=s.timeout,
        )

    def socket_of(self, conn: IMAPClient) -> socket.socket | None:
        sock: socket.socket | None = conn.socket()
        return sock

    def offers_starttls(self, conn: IMAPClient) -> bool:
        return bool(conn.has_capability("STARTTLS"))

    def starttls(self, conn: IMAPClient, ctx: ssl.SSLContext | None) -> None:
        conn.starttls(ctx)

    def close(self, conn: IMAPClient) -> None:
        conn.shutdown()

    def password_allowed(self, conn: IMAPClient) -> None:
        """RFC 3501: after LOGINDISABLED a client must not send LOGIN. Without TLS that means
        the password would go in clear to a server that refuses it anyway, and the refusal read
        like a wrong password."""
        settings = self.settings
        try:
            disabled = conn.has_capability("LOGINDISABLED")
            starttls = settings.security == Security.NONE and conn.has_capability("STARTTLS")
        except imap_exc.IMAPClientError as exc:
            raise failures.connect_error(settings, exc) from None
        if not disabled:
            return
        if settings.security == Security.NONE:
            raise failures.password_in_clear(
                settings,
                "says LOGINDISABLED: it takes no password on a connection without TLS",
                bool(starttls),
            )
        raise errors.LoginFailed(
            f"{settings.describe()} says LOGINDISABLED even over TLS: it takes no user name and "
            "password at all. Use auth: oauth if the server offers it, or ask its administrator."
        )

    def password_login(self, conn: IMAPClient) -> None:
        try:
            conn.login(self.settings.username, self.settings.password)
        except imap_exc.IMAPClientError as exc:
            raise Refused(clean_imap_reply(str(exc))) from None

    def require_mechanism(self, conn: IMAPClient) -> None:
        mech_name = self.settings.sasl.upper()
        if conn.has_capability(f"AUTH={mech_name}"):
            return
        offered = [
            c.split("=", 1)[1].upper()
            for c in map(wire_text, conn.capabilities())
            if c.upper().startswith("AUTH=")
        ]
        raise errors.LoginFailed(
            f"{self.settings.describe()} does not offer AUTH={mech_name}. "
            + failures.mech_advice(mech_name, offered)
        )

    def sasl_login(self, conn: IMAPClient, initial: bytes, mech: sasl.OAuthMechanism) -> None:
        try:
            # imaplib calls back once with the "+" and again with any error challenge.
            conn.sasl_login(self.settings.sasl.upper(), mech)
        except imap_exc.IMAPClientError as exc:
            raise Refused(clean_imap_reply(str(exc))) from None
