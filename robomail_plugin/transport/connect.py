"""The one place that opens IMAP, POP3 and SMTP connections and logs in.

Every mail action declares its connection parameters with a login class
(``shared_params.ImapLogin``...) and opens its connection through ``open_imap`` /
``open_pop3`` / ``open_smtp``, so TLS checks, timeouts, the OAuth retry on a rejected token
and the wording of login errors are the same everywhere.

The package behind this front door: ``opener`` opens a connection the same way for every
protocol (connect, STARTTLS, login by password or OAuth, close on failure) through an adapter
per library (``imap_adapter``, ``pop3_adapter``, ``smtp_adapter``); ``failures`` words the
errors, ``replies`` reads server replies as text, ``sasl`` builds the OAuth responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from robomail_plugin import errors
from robomail_plugin.declare import bind
from robomail_plugin.shared_params import (
    DEFAULT_PORTS,
    LOGINS,
    PROTOCOLS,
    Auth,
    Login,
    Sasl,
    Security,
)
from robomail_plugin.transport.failures import pop3_closed
from robomail_plugin.transport.opener import LogFn, SecretFn, open_with, tls_context
from robomail_plugin.transport.replies import (  # noqa: F401 - tests read it from here
    clean_imap_reply as _clean_imap_reply,
)
from robomail_plugin.transport.replies import pop3_eof, pop3_reply, smtp_reply

# The mail, TLS and socket libraries are loaded on first use, by the adapter modules the open_*
# functions import: an action that fails its parameter checks never loads them.
if TYPE_CHECKING:
    import smtplib

    from imapclient import IMAPClient

    from robomail_plugin.services import Services
    from robomail_plugin.transport.pop3_lib import POP3

__all__ = [
    "ConnectionSettings",
    "LogFn",
    "SecretFn",
    "open_imap",
    "open_imap_as",
    "open_pop3",
    "open_smtp",
    "pop3_closed",
    "pop3_eof",
    "pop3_reply",
    "smtp_reply",
    "tls_context",
]


@attrs.frozen(kw_only=True)
class ConnectionSettings:
    """Where and how to connect and log in; the password never shows in its repr."""

    protocol: str = attrs.field(validator=attrs.validators.in_(PROTOCOLS))
    server: str
    port: int
    security: Security = attrs.field(converter=Security)
    auth: Auth = attrs.field(default=Auth.PASSWORD, converter=Auth)
    username: str = ""
    password: str = attrs.field(default="", repr=False)
    oauth_record: str = ""
    sasl: Sasl = attrs.field(default=Sasl.XOAUTH2, converter=Sasl)
    timeout: float = 60.0
    verify_tls: bool = True
    ca_file: str | None = None

    @classmethod
    def from_login(cls, login: Login, protocol: str = "") -> ConnectionSettings:
        """Settings from an action's bound login, checking what only makes sense together;
        ``protocol`` when the action chooses it (Check for Email), else the login's own."""
        protocol = protocol or login.protocol
        server = login.server.strip()
        if not server:
            raise errors.InvalidParameter(f"{protocol.upper()}: the 'server' parameter is empty.")
        oauth_record = (login.oauth_record or "").strip()
        _check_credentials(login.auth, login.username or "", oauth_record)
        if login.timeout <= 0:
            raise errors.InvalidParameter("timeout must be more than 0 seconds.")
        return cls(
            protocol=protocol,
            server=server,
            port=_port(login.port, protocol, login.security),
            security=login.security,
            auth=login.auth,
            username=login.username or "",
            password=login.password or "",
            oauth_record=oauth_record,
            sasl=login.sasl,
            timeout=float(login.timeout),
            verify_tls=login.verify_tls,
            ca_file=login.ca_file or None,
        )

    @classmethod
    def from_params(cls, protocol: str, params: Mapping[str, Any]) -> ConnectionSettings:
        """Settings from a mapping of connection parameters (a trigger's, a test's)."""
        return cls.from_login(bind(LOGINS[protocol], params))

    @property
    def address(self) -> str:
        return f"{self.server}:{self.port}"

    def describe(self) -> str:
        """``IMAP 127.0.0.1:993 (ssl)`` for messages."""
        return f"{self.protocol.upper()} {self.address} ({self.security})"


# --- Reading the connection parameters ---------------------------------------------------------


def _port(port: int | None, protocol: str, security: str) -> int:
    """The port given, or else the usual one for the protocol and security: 0 or nothing means
    the usual one, so a task switching security need not also change its port."""
    port = port or DEFAULT_PORTS[(protocol, security)]
    if not 0 < port < 65536:
        raise errors.InvalidParameter(f"port {port} is out of range (1-65535).")
    return port


def _check_credentials(auth: str, username: str, oauth_record: str) -> None:
    """Each way of logging in needs its own credential; a missing one is reported here, before
    connecting, not as a vague refusal from the server."""
    if auth == "password" and not username:
        raise errors.InvalidParameter(
            "auth is 'password' but 'username' is empty: give username and password, or "
            "use auth: oauth with an oauth_record."
        )
    if auth == "oauth" and not oauth_record:
        raise errors.InvalidParameter(
            "auth is 'oauth' but 'oauth_record' is empty: give the Record Name of an OAuth "
            "parameter set."
        )


# --- Opening -------------------------------------------------------------------------------------


def open_imap(
    settings: ConnectionSettings,
    services: Services,
    *,
    log: LogFn | None = None,
    add_secret: SecretFn | None = None,
) -> IMAPClient:
    """Connects, secures and logs in; returns a logged-in ``IMAPClient`` (UIDs on)."""
    return open_imap_as(settings, services, log=log, add_secret=add_secret)[0]


def open_imap_as(
    settings: ConnectionSettings,
    services: Services,
    *,
    log: LogFn | None = None,
    add_secret: SecretFn | None = None,
) -> tuple[IMAPClient, str]:
    """``open_imap``, also returning the account logged in as (the user name, or the OAuth
    record's Client Account, read from the store once per login)."""
    from robomail_plugin.transport.imap_adapter import ImapAdapter

    return open_with(ImapAdapter(settings), services, log=log, add_secret=add_secret)


def open_pop3(
    settings: ConnectionSettings,
    services: Services,
    *,
    log: LogFn | None = None,
    add_secret: SecretFn | None = None,
) -> POP3:
    """Connects, secures (STLS) and logs in (USER/PASS or AUTH with an initial response); the
    connection is a ``poplib.POP3`` (``pop3_lib.POP3``, which adds AUTH)."""
    from robomail_plugin.transport.pop3_adapter import Pop3Adapter

    return open_with(Pop3Adapter(settings), services, log=log, add_secret=add_secret)[0]


def open_smtp(
    settings: ConnectionSettings,
    services: Services,
    *,
    log: LogFn | None = None,
    add_secret: SecretFn | None = None,
    account: str | None = None,
) -> smtplib.SMTP:
    """Connects, says EHLO, secures (STARTTLS) and logs in unless ``auth`` is none.

    ``account``: the OAuth record's Client Account when the caller has read the record already
    (the login then does not read it again).
    """
    from robomail_plugin.transport.smtp_adapter import SmtpAdapter

    return open_with(
        SmtpAdapter(settings), services, log=log, add_secret=add_secret, account=account
    )[0]
