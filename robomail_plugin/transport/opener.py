"""Opening a mail connection, the same for IMAP, POP3 and SMTP: connect (TLS from the start,
STARTTLS or none), check that the login may be sent, log in by password or OAuth (one retry
with a fresh token on a rejected one), and close the connection when any step fails.

``open_with`` is that sequence; an ``Adapter`` supplies the few steps each protocol's library
does its own way (``imap_adapter``, ``pop3_adapter``, ``smtp_adapter``).

Light to import (the TLS and socket libraries are loaded when a connection is opened):
``connect`` re-exports ``tls_context`` from here.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from robomail_plugin import errors
from robomail_plugin.shared_params import Auth, Security
from robomail_plugin.transport import failures, sasl

if TYPE_CHECKING:
    import socket
    import ssl

    from robomail_plugin.services import Services
    from robomail_plugin.transport.settings import ConnectionSettings

LogFn = Callable[..., None]
SecretFn = Callable[[str], None]
ConnT = TypeVar("ConnT")


class Refused(Exception):
    """The server refused a login attempt; ``reply`` is what it said, as text."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class Adapter(abc.ABC, Generic[ConnT]):
    """What one protocol's library does its own way; everything else is ``open_with``'s.

    Methods may let ``OSError`` out: ``open_with`` reports it as ``ConnectFailed``. A refused
    login is raised as ``Refused``; anything the adapter knows better (a server that takes no
    password here, a closed connection) as the ``errors`` class that says so.
    """

    #: The library's errors for a failed connect or TLS upgrade: reported as ``ConnectFailed``.
    connect_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError,)
    #: The capability that offers the TLS upgrade (POP3 calls it STLS).
    starttls_name: ClassVar[str] = "STARTTLS"

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings

    @abc.abstractmethod
    def connect(self, ctx: ssl.SSLContext | None) -> ConnT:
        """Connects (with TLS from the start when ``ctx`` is given and security is ssl) and
        reads the greeting."""

    @abc.abstractmethod
    def socket_of(self, conn: ConnT) -> socket.socket | None:
        """The connection's socket, now (an upgrade replaces it)."""

    def greet(self, conn: ConnT) -> None:
        """Says hello once connected and again after the upgrade, where the protocol wants it."""

    @abc.abstractmethod
    def offers_starttls(self, conn: ConnT) -> bool:
        """Whether the server lists ``starttls_name``."""

    @abc.abstractmethod
    def starttls(self, conn: ConnT, ctx: ssl.SSLContext | None) -> None:
        """Upgrades the connection to TLS."""

    @abc.abstractmethod
    def close(self, conn: ConnT) -> None:
        """Drops a connection that failed to open (errors are ignored by the caller)."""

    def password_allowed(self, conn: ConnT) -> None:
        """Raises when the server says it takes no password on this connection."""

    @abc.abstractmethod
    def password_login(self, conn: ConnT) -> None:
        """Logs in with user name and password; raises ``Refused`` with the server's reply."""

    @abc.abstractmethod
    def require_mechanism(self, conn: ConnT) -> None:
        """Raises ``LoginFailed`` when the server does not offer the task's SASL mechanism (so
        no token is fetched for nothing)."""

    @abc.abstractmethod
    def sasl_login(self, conn: ConnT, initial: bytes, mech: sasl.OAuthMechanism) -> None:
        """Authenticates with the (raw) initial response; ``mech`` answers the server's
        challenges and keeps its error challenge. Raises ``Refused`` with the server's reply."""


def open_with(
    adapter: Adapter[ConnT],
    services: Services,
    *,
    log: LogFn | None = None,
    add_secret: SecretFn | None = None,
    account: str | None = None,
) -> tuple[ConnT, str]:
    """Connects, secures and logs in; returns the connection and the account logged in as (the
    user name, the OAuth record's Client Account, or "" for no login).

    ``account``: the OAuth record's Client Account when the caller has read the record already.
    """
    settings = adapter.settings
    account = _oauth_account(settings, services, account)
    ctx = tls_context(settings, log) if settings.security != Security.NONE else None
    try:
        conn = adapter.connect(ctx)
    except adapter.connect_errors as exc:
        raise failures.connect_error(settings, exc) from None
    try:
        _secure(adapter, conn, ctx)
        account = _login(adapter, conn, services, add_secret, account)
    except BaseException:
        with contextlib.suppress(Exception):  # best effort on an already failed connection
            adapter.close(conn)
        raise
    return conn, account


def tls_context(settings: ConnectionSettings, log: LogFn | None = None) -> ssl.SSLContext:
    """A verifying context (optionally trusting ``ca_file``); unverified only when asked."""
    import ssl

    try:
        ctx = ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise errors.ConnectFailed(
            f"Cannot read the CA file {settings.ca_file!r}: {exc}. Give a PEM file with the CA "
            "certificate."
        ) from exc
    if not settings.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if log is not None:
            log(
                f"TLS certificate checks are OFF for {settings.describe()}: the connection can "
                "be intercepted. Use verify_tls: true (with ca_file if needed).",
                "warning",
            )
    return ctx


def _no_delay(sock: socket.socket | None) -> None:
    # Auth continuations go out in two writes; without this each costs a Nagle delay (~45 ms).
    if sock is None:
        return
    import socket

    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _secure(adapter: Adapter[ConnT], conn: ConnT, ctx: ssl.SSLContext | None) -> None:
    """The greeting, then STARTTLS when security asks for it (refused when not offered)."""
    settings = adapter.settings
    _no_delay(adapter.socket_of(conn))
    adapter.greet(conn)
    if settings.security != Security.STARTTLS:
        return
    if not adapter.offers_starttls(conn):
        raise failures.starttls_missing(settings, adapter.starttls_name)
    try:
        adapter.starttls(conn, ctx)
    except adapter.connect_errors as exc:
        raise failures.connect_error(settings, exc) from None
    _no_delay(adapter.socket_of(conn))
    adapter.greet(conn)


def _oauth_account(
    settings: ConnectionSettings, services: Services, account: str | None
) -> str | None:
    """Reads the OAuth record before connecting, so a wrong Record Name or an unusable store is
    reported as such, not as a connection or login failure."""
    if settings.auth != Auth.OAUTH or account is not None:
        return account
    return _client_account(settings, services)


def _client_account(settings: ConnectionSettings, services: Services) -> str:
    """The OAuth record's Client Account: the user the token logs in as."""
    return str(services.store.get(settings.oauth_record).client_account)


def _login(
    adapter: Adapter[ConnT],
    conn: ConnT,
    services: Services,
    add_secret: SecretFn | None,
    account: str | None,
) -> str:
    settings = adapter.settings
    if settings.auth == Auth.PASSWORD:
        _password_login(adapter, conn)
        return settings.username
    if settings.auth == Auth.NONE:  # SMTP only: a relay that takes mail without a login
        return ""
    user = account if account is not None else _client_account(settings, services)
    return _oauth_login(adapter, conn, services, add_secret, user)


def _password_login(adapter: Adapter[ConnT], conn: ConnT) -> None:
    settings = adapter.settings
    try:
        adapter.password_allowed(conn)
        adapter.password_login(conn)
    except Refused as exc:
        if failures.is_temporary(exc.reply):
            raise failures.temporary(settings, exc.reply) from None
        raise failures.password_failed(settings, exc.reply) from None
    except OSError as exc:
        raise failures.connect_error(settings, exc) from None


def _oauth_login(
    adapter: Adapter[ConnT],
    conn: ConnT,
    services: Services,
    add_secret: SecretFn | None,
    user: str,
) -> str:
    """Logs in as ``user`` (the OAuth record's Client Account) with a cached token; on
    rejection drops it and retries once with a fresh one. Returns ``user``."""
    settings = adapter.settings
    try:
        adapter.require_mechanism(conn)
    except OSError as exc:
        raise failures.connect_error(settings, exc) from None
    last: tuple[str, sasl.ErrorChallenge | None] = ("", None)
    for force in (False, True):
        token = services.tokens.get_access_token(
            settings.oauth_record, force_refresh=force, timeout=settings.timeout
        )
        if add_secret is not None:
            add_secret(token.value)
        initial = sasl.initial_response(
            settings.sasl, user, token.value, settings.server, settings.port
        )
        mech = sasl.OAuthMechanism(initial)
        try:
            adapter.sasl_login(conn, initial, mech)
            return user
        except Refused as exc:
            _not_the_token(settings, services, user, exc.reply)
            last = (exc.reply, mech.error)
            services.tokens.invalidate(settings.oauth_record)
        except OSError as exc:
            raise failures.connect_error(settings, exc) from None
    raise failures.token_rejected(settings, services, user, *last)


def _not_the_token(settings: ConnectionSettings, services: Services, user: str, reply: str) -> None:
    """Raises for a refusal a fresh token cannot help: the token check is down, or the server
    takes no OAuth login for this mailbox."""
    if failures.is_temporary(reply):
        raise failures.temporary(settings, reply) from None
    disabled = failures.smtp_auth_disabled(settings, user, reply)
    if disabled is not None:
        failures.journal(settings, services, disabled, reply, str(disabled).split(". ", 2)[-1])
        raise disabled from None
