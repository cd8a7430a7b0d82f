"""Where and how to connect and log in: an action's login, checked and completed (the port).

Every other transport module reads these settings; this one imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
            raise errors.InvalidParameter(
                f"{protocol.upper()}: the 'server' parameter is empty: give the mail server's "
                "host name or address (e.g. mail.example.com)."
            )
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
