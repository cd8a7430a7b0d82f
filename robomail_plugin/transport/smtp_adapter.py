"""SMTP's steps of ``opener.open_with``, over smtplib (public API only)."""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING, ClassVar

from robomail_plugin import errors
from robomail_plugin.shared_params import Security
from robomail_plugin.transport import failures
from robomail_plugin.transport.opener import Adapter, Refused
from robomail_plugin.transport.replies import smtp_reply

if TYPE_CHECKING:
    import socket
    import ssl

    from robomail_plugin.transport import sasl


class SmtpAdapter(Adapter[smtplib.SMTP]):
    connect_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError, smtplib.SMTPException)

    def connect(self, ctx: ssl.SSLContext | None) -> smtplib.SMTP:
        s = self.settings
        if s.security == Security.SSL:
            return smtplib.SMTP_SSL(s.server, s.port, timeout=s.timeout, context=ctx)
        return smtplib.SMTP(s.server, s.port, timeout=s.timeout)

    def socket_of(self, conn: smtplib.SMTP) -> socket.socket | None:
        return conn.sock

    def greet(self, conn: smtplib.SMTP) -> None:
        conn.ehlo()  # again after STARTTLS: the extensions may differ over TLS (RFC 3207)

    def offers_starttls(self, conn: smtplib.SMTP) -> bool:
        return conn.has_extn("starttls")

    def starttls(self, conn: smtplib.SMTP, ctx: ssl.SSLContext | None) -> None:
        conn.starttls(context=ctx)

    def close(self, conn: smtplib.SMTP) -> None:
        conn.close()

    def password_login(self, conn: smtplib.SMTP) -> None:
        """AUTH with user name and password (smtplib picks the mechanism)."""
        settings = self.settings
        try:
            conn.login(settings.username, settings.password)
        except smtplib.SMTPNotSupportedError:
            raise errors.LoginFailed(
                f"{settings.describe()} offers no login (no AUTH after EHLO). Use security: "
                "starttls or ssl, or auth: none if the server relays without login."
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise Refused(smtp_reply(exc.smtp_code, exc.smtp_error)) from None
        except smtplib.SMTPException as exc:
            raise errors.LoginFailed(
                f"{settings.describe()}: login not possible: {exc}. Check security and auth."
            ) from None

    def require_mechanism(self, conn: smtplib.SMTP) -> None:
        """EHLO's AUTH line lists the mechanisms; without the task's no token is fetched."""
        offered = (conn.esmtp_features.get("auth") or "").upper().split()
        if self.settings.sasl.upper() not in offered:
            raise failures.mech_missing(self.settings, offered)

    def sasl_login(self, conn: smtplib.SMTP, initial: bytes, mech: sasl.OAuthMechanism) -> None:
        def auth_object(challenge: bytes | None = None) -> str:
            # smtplib calls this again with the error challenge: answer it with "".
            return mech(challenge).decode("utf-8")

        try:
            conn.auth(self.settings.sasl.upper(), auth_object, initial_response_ok=True)
        except smtplib.SMTPResponseException as exc:
            raise Refused(smtp_reply(exc.smtp_code, exc.smtp_error)) from None
