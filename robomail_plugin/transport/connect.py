"""The one place that opens IMAP, POP3 and SMTP connections and logs in.

Every mail action declares its connection parameters with a login class
(``shared_params.ImapLogin``...) and opens its connection through ``open_imap`` /
``open_pop3`` / ``open_smtp``, so TLS checks, timeouts, the OAuth retry on a rejected token
and the wording of login errors are the same everywhere.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from robomail_plugin import errors
from robomail_plugin.declare import bind
from robomail_plugin.message.wire_text import wire_text
from robomail_plugin.shared_params import (
    DEFAULT_PORTS,
    LOGINS,
    PROTOCOLS,
    Auth,
    Login,
    Sasl,
    Security,
)
from robomail_plugin.transport import sasl

# The mail, TLS and socket libraries are loaded on first use, inside the functions that open a
# connection: an action that fails its parameter checks never loads them.
if TYPE_CHECKING:
    import poplib
    import smtplib
    import socket
    import ssl

    from imapclient import IMAPClient

LogFn = Callable[..., None]
SecretFn = Callable[[str], None]


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


# --- TLS and errors ------------------------------------------------------------------------------


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


def _connect_error(settings: ConnectionSettings, exc: BaseException) -> errors.ConnectFailed:
    import socket
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        advice = (
            "the server's certificate is not trusted or does not match the server name; give "
            "the CA with ca_file, or check the server name"
        )
    elif isinstance(exc, ssl.SSLError):
        advice = "TLS failed; check that security matches the port (ssl: 993/995/465)"
    elif isinstance(exc, TimeoutError | socket.timeout):
        advice = "no answer in time; check server, port and firewall, or raise timeout"
    elif isinstance(exc, ConnectionRefusedError):
        advice = "nothing listens there; check server and port"
    elif isinstance(exc, socket.gaierror):
        advice = "the server name cannot be resolved; check the server name"
    else:
        advice = "check server, port and security"
    return errors.ConnectFailed(
        f"Cannot connect to {settings.describe()}: {exc.__class__.__name__}: {exc}. {advice}."
    )


def _no_delay(sock: socket.socket | None) -> None:
    # Auth continuations go out in two writes; without this each costs a Nagle delay (~45 ms).
    if sock is None:
        return
    import socket

    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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


def _clean_imap_reply(message: str) -> str:
    """The server's own words from an imaplib/imapclient error: ``b'[X] Y'`` (a refused LOGIN:
    Dovecot, Cyrus, Mailutils) -> ``[X] Y``; ``AUTHENTICATE command error: BAD [b'Y']`` ->
    ``BAD Y``; ``authenticate failed: Y`` -> ``Y``.

    For login refusals only. Commands after login go through ``imap_session.server_reply``,
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


_TEMP_MARKERS = ("[UNAVAILABLE]", "[SYS/TEMP]", "TEMPORARY")


def _is_temporary(reply: str) -> bool:
    upper = reply.upper()
    return any(m in upper for m in _TEMP_MARKERS) or upper.startswith("454")


def _oauth_advice(settings: ConnectionSettings) -> str:
    advice = (
        f"Check the OAuth record {settings.oauth_record!r} (run `hostsim oauth test "
        f"{settings.oauth_record}` or Get Refresh Token again) and that its Client Account and "
        "Scope allow mail access"
    )
    if settings.protocol == "smtp":
        advice += "; Microsoft 365 also needs SMTP AUTH enabled for the mailbox"
    return advice + "."


def _mech_advice(mech_name: str, offered: list[str]) -> str:
    """What to set when the server lacks the task's SASL mechanism but has the other one."""
    other = "XOAUTH2" if mech_name == "OAUTHBEARER" else "OAUTHBEARER"
    if other in offered:
        why = " (Microsoft's servers take XOAUTH2 only)" if other == "XOAUTH2" else ""
        return f"It offers {other}: set sasl: {other.lower()} in the step{why}."
    return "Try the other sasl mechanism (xoauth2 / oauthbearer) or check that the server " \
        "supports OAuth."


_SMTP_AUTH_OFF = re.compile(r"5\.7\.139.*SmtpClientAuthentication is disabled", re.IGNORECASE)


def _smtp_auth_disabled(settings: ConnectionSettings, user: str, reply: str) -> errors.LoginFailed:
    """Microsoft's 535 5.7.139: SMTP AUTH is off for the mailbox or tenant; no token helps."""
    return errors.LoginFailed(
        f"{settings.describe()} refused the login of {user!r}: SMTP AUTH is turned off for "
        f"this mailbox or the whole tenant (server said: {reply}). A new token cannot help. An "
        "admin turns on 'Authenticated SMTP' for the mailbox (Microsoft 365 admin center > Users "
        "> Active users > the user > Mail > Manage email apps) and, if the tenant blocks it, "
        "unticks 'Turn off SMTP AUTH protocol for your organization' (Exchange admin center > "
        "Settings > Mail flow); in PowerShell: Set-CASMailbox -Identity <user> "
        "-SmtpClientAuthenticationDisabled $false. It can take an hour to apply.",
        server_reply=reply,
    )


def _provider_advice(settings: ConnectionSettings, services: Any,
                     challenge: sasl.ErrorChallenge | None) -> str:
    """What the record's provider rules say about a refused token (a Scope without the mail
    scope, Graph scopes for Outlook); "" when they say nothing."""
    try:
        from robomail_plugin.credentials.presets import login_advice

        record = services.store.get(settings.oauth_record)
        wanted = str(challenge.fields.get("scope", "")) if challenge is not None else ""
        return login_advice(services.providers(), record, settings.protocol, wanted)
    except Exception:  # advice is a bonus: never hide the login error behind another
        return ""


def _journal(settings: ConnectionSettings, services: Any, error: errors.RobomailError,
             reply: str, advice: str = "") -> None:
    """Keeps a refused login for ``hostsim oauth doctor``."""
    note = getattr(getattr(services, "tokens", None), "note_login_failure", None)
    if note is not None:
        with contextlib.suppress(Exception):
            note(settings.oauth_record, f"{settings.protocol} login", reply, str(error), advice)


def _temporary(settings: ConnectionSettings, reply: str) -> errors.LoginTemporaryFailure:
    return errors.LoginTemporaryFailure(
        f"{settings.describe()} could not check the login right now (server said: {reply}). "
        "This is usually the provider's token check being down; try again later.",
        server_reply=reply,
    )


def _password_failed(settings: ConnectionSettings, reply: str) -> errors.LoginFailed:
    return errors.LoginFailed(
        f"{settings.describe()} rejected the login of user {settings.username!r} (server said: "
        f"{reply}). Check the user name and password; some providers need an app password or "
        "OAuth.",
        server_reply=reply,
    )


class _Rejected(Exception):
    """One OAuth attempt was refused; carries the server reply and the decoded challenge."""

    def __init__(self, reply: str, challenge: sasl.ErrorChallenge | None) -> None:
        super().__init__(reply)
        self.reply = reply
        self.challenge = challenge


def _oauth_account(settings: ConnectionSettings, services: Any, account: str | None) -> str | None:
    """Reads the OAuth record before connecting, so a wrong Record Name or an unusable store is
    reported as such, not as a connection or login failure."""
    if settings.auth != "oauth" or account is not None:
        return account
    return str(services.store.get(settings.oauth_record).client_account)


def _oauth_login(
    settings: ConnectionSettings,
    services: Any,
    attempt: Callable[[bytes, sasl.OAuthMechanism], None],
    add_secret: SecretFn | None = None,
    account: str | None = None,
) -> str:
    """Logs in with a cached token; on rejection drops it and retries once with a fresh one.

    Returns the record's Client Account (the user logged in as): the record is read once, here
    or by the caller, who then gives it as ``account``.
    """
    user = account if account is not None else str(
        services.store.get(settings.oauth_record).client_account
    )
    last: _Rejected | None = None
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
            attempt(initial, mech)
            return user
        except _Rejected as exc:
            if _is_temporary(exc.reply):
                raise _temporary(settings, exc.reply) from None
            if _SMTP_AUTH_OFF.search(exc.reply):
                failed = _smtp_auth_disabled(settings, user, exc.reply)
                _journal(settings, services, failed, exc.reply, str(failed).split(". ", 2)[-1])
                raise failed from None
            last = exc
            services.tokens.invalidate(settings.oauth_record)
    assert last is not None
    status = f"; decoded challenge: {last.challenge.describe()}" if last.challenge else ""
    advice = _provider_advice(settings, services, last.challenge)
    failed = errors.LoginFailed(
        f"{settings.describe()} rejected the OAuth token of {user!r} via "
        f"{settings.sasl.upper()} (server said: {last.reply}{status}), also after fetching a "
        f"fresh token. {advice + ' ' if advice else ''}{_oauth_advice(settings)}",
        server_reply=last.reply,
    )
    _journal(settings, services, failed, last.reply, advice)
    raise failed


# --- IMAP ----------------------------------------------------------------------------------------


def open_imap(
    settings: ConnectionSettings,
    services: Any,
    *,
    log: LogFn | None = None,
    add_secret: SecretFn | None = None,
) -> IMAPClient:
    """Connects, secures and logs in; returns a logged-in ``IMAPClient`` (UIDs on)."""
    return open_imap_as(settings, services, log=log, add_secret=add_secret)[0]


def open_imap_as(
    settings: ConnectionSettings,
    services: Any,
    *,
    log: LogFn | None = None,
    add_secret: SecretFn | None = None,
) -> tuple[IMAPClient, str]:
    """``open_imap``, also returning the account logged in as (the user name, or the OAuth
    record's Client Account, read from the store once per login)."""
    from imapclient import IMAPClient
    from imapclient import exceptions as imap_exc

    account = _oauth_account(settings, services, None)
    ctx = tls_context(settings, log) if settings.security != "none" else None
    try:
        client = IMAPClient(
            settings.server,
            port=settings.port,
            ssl=settings.security == "ssl",
            ssl_context=ctx,
            timeout=settings.timeout,
        )
    except (OSError, imap_exc.IMAPClientError) as exc:
        raise _connect_error(settings, exc) from None
    try:
        _no_delay(client.socket())
        if settings.security == "starttls":
            if not client.has_capability("STARTTLS"):
                raise errors.ConnectFailed(
                    f"{settings.describe()} does not offer STARTTLS, and security: starttls "
                    "requires it. Use security: ssl (port 993) or check the server."
                )
            try:
                client.starttls(ctx)
            except (OSError, imap_exc.IMAPClientError) as exc:
                raise _connect_error(settings, exc) from None
            _no_delay(client.socket())
        account = _imap_login(client, settings, services, add_secret, account)
    except BaseException:
        _imap_drop(client)
        raise
    return client, account


def _imap_drop(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):  # best effort on an already failed connection
        client.shutdown()


def _imap_login_allowed(client: IMAPClient, settings: ConnectionSettings) -> None:
    """RFC 3501: after LOGINDISABLED a client must not send LOGIN. Without TLS that means the
    password would go in clear to a server that refuses it anyway, and the refusal read like a
    wrong password."""
    from imapclient import exceptions as imap_exc

    try:
        disabled = client.has_capability("LOGINDISABLED")
        starttls = settings.security == "none" and client.has_capability("STARTTLS")
    except (OSError, imap_exc.IMAPClientError) as exc:
        raise _connect_error(settings, exc) from None
    if not disabled:
        return
    if settings.security == "none":
        this_port = " (on this port)" if starttls else ""
        raise errors.ConnectFailed(
            f"{settings.describe()} says LOGINDISABLED: it takes no password on a connection "
            "without TLS, and robomail does not send a password in clear. Use "
            f"security: starttls{this_port} or ssl (port 993)."
        )
    raise errors.LoginFailed(
        f"{settings.describe()} says LOGINDISABLED even over TLS: it takes no user name and "
        "password at all. Use auth: oauth if the server offers it, or ask its administrator."
    )


def _imap_login(
    client: IMAPClient,
    settings: ConnectionSettings,
    services: Any,
    add_secret: SecretFn | None,
    account: str | None,
) -> str:
    """Logs in; returns the account (the user name, or the OAuth record's Client Account)."""
    from imapclient import exceptions as imap_exc

    if settings.auth == "password":
        _imap_login_allowed(client, settings)
        try:
            client.login(settings.username, settings.password)
        except imap_exc.IMAPClientError as exc:
            reply = _clean_imap_reply(str(exc))
            if _is_temporary(reply):
                raise _temporary(settings, reply) from None
            raise _password_failed(settings, reply) from None
        except OSError as exc:
            raise _connect_error(settings, exc) from None
        return settings.username

    mech_name = settings.sasl.upper()
    if not client.has_capability(f"AUTH={mech_name}"):
        offered = [c.split("=", 1)[1] for c in map(wire_text, client.capabilities())
                   if c.upper().startswith("AUTH=")]
        raise errors.LoginFailed(
            f"{settings.describe()} does not offer AUTH={mech_name}. "
            + _mech_advice(mech_name, [o.upper() for o in offered])
        )

    def attempt(_initial: bytes, mech: sasl.OAuthMechanism) -> None:
        try:
            # imaplib calls back once with the "+" and again with any error challenge.
            client.sasl_login(mech_name, mech)
        except imap_exc.IMAPClientError as exc:
            raise _Rejected(_clean_imap_reply(str(exc)), mech.error) from None
        except OSError as exc:
            raise _connect_error(settings, exc) from None

    return _oauth_login(settings, services, attempt, add_secret, account)


# --- POP3 ----------------------------------------------------------------------------------------

# An RFC 2449 response code opening an -ERR reply: "-ERR [IN-USE] ...", "-ERR [SYS/TEMP] ...".
_POP3_CODE_RE = re.compile(r"-ERR\s+\[([A-Za-z0-9/-]+)\]", re.IGNORECASE)


def pop3_eof(exc: BaseException) -> bool:
    """Whether a ``poplib.error_proto`` is poplib's own "-ERR EOF": the server closed the
    connection (a reply from the server arrives as bytes, this one is a str)."""
    return bool(exc.args) and exc.args[0] == "-ERR EOF"


def pop3_reply(exc: BaseException) -> str:
    """The server's reply a ``poplib.error_proto`` carries (its first argument), as text."""
    return wire_text(exc.args[0] if exc.args else exc)


def pop3_closed(
    settings: ConnectionSettings, what: str, last_reply: str | None = None
) -> errors.ConnectFailed:
    """The error for a POP3 connection the server has closed (its last words, if any)."""
    said = f" after saying: {last_reply}" if last_reply else ""
    return errors.ConnectFailed(
        f"{what}: the server {settings.describe()} closed the connection{said}. Open it again; "
        "if it keeps happening the server may be restarting or ending idle sessions.",
        server_reply=last_reply,
    )


def _pop3_refusal(settings: ConnectionSettings, reply: str) -> errors.RobomailError | None:
    """The error for a login refused for another reason than the credentials, by its RFC 2449
    response code; None when the reply does not say so (the credentials are to blame)."""
    m = _POP3_CODE_RE.match(reply.strip())
    code = m.group(1).upper() if m else ""
    who = (
        repr(settings.username)
        if settings.auth == "password"
        else f"the account of OAuth record {settings.oauth_record!r}"
    )
    where = f"{settings.describe()} did not log in {who}"
    if code == "IN-USE":
        return errors.LoginTemporaryFailure(
            f"{where}: the mailbox is in use by another POP3 session, which holds its lock "
            f"(server said: {reply}). The login itself was not the problem: close the other "
            "session (another mail program, or an earlier POP3 Open) or try again later.",
            server_reply=reply,
        )
    if code == "LOGIN-DELAY":
        return errors.LoginTemporaryFailure(
            f"{where}: this login came too soon after the previous login, and the server allows "
            f"one only every so often (server said: {reply}). Try again later, or check less "
            "often.",
            server_reply=reply,
        )
    if code == "SYS/TEMP" and settings.auth == "password":
        return errors.LoginTemporaryFailure(
            f"{where}: a temporary problem on the server (server said: {reply}). Try again "
            "later.",
            server_reply=reply,
        )
    if code == "SYS/PERM":
        return errors.MailProtocolError(
            f"{where}: a lasting problem on the server, not with the user name or password "
            f"(server said: {reply}). Ask the mail server's administrator.",
            server_reply=reply,
        )
    return None


def open_pop3(
    settings: ConnectionSettings,
    services: Any,
    *,
    log: LogFn | None = None,
    add_secret: SecretFn | None = None,
) -> poplib.POP3:
    """Connects, secures (STLS) and logs in (USER/PASS or AUTH with an initial response)."""
    from robomail_plugin.transport.pop3_lib import (
        poplib,  # with its line limit raised for real mail
    )

    account = _oauth_account(settings, services, None)
    ctx = tls_context(settings, log) if settings.security != "none" else None
    try:
        if settings.security == "ssl":
            pop: poplib.POP3 = poplib.POP3_SSL(
                settings.server, settings.port, timeout=settings.timeout, context=ctx
            )
        else:
            pop = poplib.POP3(settings.server, settings.port, timeout=settings.timeout)
    except OSError as exc:
        raise _connect_error(settings, exc) from None
    try:
        _no_delay(pop.sock)
        if settings.security == "starttls":
            try:
                caps = pop.capa()
            except poplib.error_proto:
                caps = {}
            if "STLS" not in caps:
                raise errors.ConnectFailed(
                    f"{settings.describe()} does not offer STLS, and security: starttls "
                    "requires it. Use security: ssl (port 995) or check the server."
                )
            try:
                pop.stls(context=ctx)
            except (OSError, poplib.error_proto) as exc:
                raise _connect_error(settings, exc) from None
        _pop3_login(pop, settings, services, add_secret, account)
    except BaseException:
        with contextlib.suppress(Exception):
            pop.close()
        raise
    return pop


def _pop3_user_allowed(pop: poplib.POP3, settings: ConnectionSettings) -> None:
    """Without TLS, a server whose CAPA lists no USER takes no password here (RFC 2449): sending
    it would put it on the wire in clear, and the refusal read like a wrong password. A server
    without CAPA (RFC 1939 only) says nothing either way, so it gets USER as before."""
    import poplib

    if settings.security != "none":
        return
    try:
        caps = {name.upper() for name in pop.capa()}
    except poplib.error_proto as exc:
        if pop3_eof(exc):
            raise pop3_closed(settings, "POP3 CAPA") from None
        return
    except OSError as exc:
        raise _connect_error(settings, exc) from None
    if "USER" in caps:
        return
    this_port = " (on this port)" if "STLS" in caps else ""
    raise errors.ConnectFailed(
        f"{settings.describe()} offers no USER in its capabilities (CAPA): it takes no password "
        "on a connection without TLS, and robomail does not send a password in clear. Use "
        f"security: starttls{this_port} or ssl (port 995)."
    )


def _pop3_login(
    pop: poplib.POP3,
    settings: ConnectionSettings,
    services: Any,
    add_secret: SecretFn | None,
    account: str | None,
) -> None:
    if settings.auth == "password":
        _pop3_password_login(pop, settings)
    else:
        _pop3_oauth_login(pop, settings, services, add_secret, account)


def _pop3_login_reply(settings: ConnectionSettings, exc: poplib.error_proto) -> str:
    """The server's reply to a refused login. Raises instead when the refusal is not about the
    credentials (the server closed the connection, the mailbox is locked, a server fault):
    neither another password nor a fresh token would help then."""
    if pop3_eof(exc):
        raise pop3_closed(settings, "POP3 login") from None
    reply = pop3_reply(exc)
    refusal = _pop3_refusal(settings, reply)
    if refusal is not None:
        raise refusal from None
    return reply


def _pop3_password_login(pop: poplib.POP3, settings: ConnectionSettings) -> None:
    """USER and PASS, once the server is known to take a password on this connection."""
    import poplib

    _pop3_user_allowed(pop, settings)
    try:
        pop.user(settings.username)
        pop.pass_(settings.password)
    except poplib.error_proto as exc:
        reply = _pop3_login_reply(settings, exc)
        if _is_temporary(reply):
            raise _temporary(settings, reply) from None
        raise _password_failed(settings, reply) from None
    except OSError as exc:
        raise _connect_error(settings, exc) from None


def _pop3_sasl_offered(pop: poplib.POP3, settings: ConnectionSettings) -> None:
    """Refuses before fetching a token when CAPA lists SASL mechanisms without the task's: the
    error can then name the one to use. A server without CAPA gets AUTH anyway."""
    import poplib

    mech_name = settings.sasl.upper()
    try:
        offered = [m.upper() for m in pop.capa().get("SASL", [])]
    except poplib.error_proto:
        offered = []  # no CAPA: try AUTH anyway
    if offered and mech_name not in offered:
        raise errors.LoginFailed(
            f"{settings.describe()} does not offer AUTH {mech_name} (offers: "
            f"{' '.join(offered)}). " + _mech_advice(mech_name, offered)
        )


def _pop3_oauth_login(
    pop: poplib.POP3,
    settings: ConnectionSettings,
    services: Any,
    add_secret: SecretFn | None,
    account: str | None,
) -> None:
    """AUTH with an OAuth token, retried once with a fresh token by ``_oauth_login``."""
    import poplib

    _pop3_sasl_offered(pop, settings)
    mech_name = settings.sasl.upper()

    def attempt(initial: bytes, mech: sasl.OAuthMechanism) -> None:
        try:
            # poplib has no AUTH command: its private line helpers speak the exchange. Two
            # steps (RFC 5034): AUTH, the server's "+", then the response on a line of its own;
            # Outlook refuses the response on the AUTH line.
            pop._shortcmd(f"AUTH {mech_name}")  # type: ignore[attr-defined]
            pop._putline(sasl.b64(initial).encode("ascii"))  # type: ignore[attr-defined]
            resp = pop._getresp()  # type: ignore[attr-defined]
            # poplib treats "+ <challenge>" as success: it is the error challenge.
            if not resp.upper().startswith(b"+OK"):
                mech.error = sasl.decode_error_challenge(resp[1:].strip())
                pop._putline(b"")  # type: ignore[attr-defined]
                resp = pop._getresp()  # type: ignore[attr-defined]
                raise _Rejected(wire_text(resp), mech.error)
        except poplib.error_proto as exc:
            raise _Rejected(_pop3_login_reply(settings, exc), mech.error) from None
        except OSError as exc:
            raise _connect_error(settings, exc) from None

    _oauth_login(settings, services, attempt, add_secret, account)


# --- SMTP ----------------------------------------------------------------------------------------


def open_smtp(
    settings: ConnectionSettings,
    services: Any,
    *,
    log: LogFn | None = None,
    add_secret: SecretFn | None = None,
    account: str | None = None,
) -> smtplib.SMTP:
    """Connects, says EHLO, secures (STARTTLS) and logs in unless ``auth`` is none.

    ``account``: the OAuth record's Client Account when the caller has read the record already
    (the login then does not read it again).
    """
    import smtplib

    account = _oauth_account(settings, services, account)
    ctx = tls_context(settings, log) if settings.security != "none" else None
    try:
        if settings.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.server, settings.port, timeout=settings.timeout, context=ctx
            )
        else:
            smtp = smtplib.SMTP(settings.server, settings.port, timeout=settings.timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise _connect_error(settings, exc) from None
    try:
        _no_delay(smtp.sock)
        smtp.ehlo()
        if settings.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise errors.ConnectFailed(
                    f"{settings.describe()} does not offer STARTTLS, and security: starttls "
                    "requires it. Use security: ssl (port 465) or check the server."
                )
            try:
                smtp.starttls(context=ctx)
            except (OSError, smtplib.SMTPException) as exc:
                raise _connect_error(settings, exc) from None
            smtp.ehlo()
        _smtp_login(smtp, settings, services, add_secret, account)
    except BaseException:
        with contextlib.suppress(Exception):
            smtp.close()
        raise
    return smtp


def smtp_reply(code: int, text: Any) -> str:
    """An SMTP reply as one line of text: its code, then its words (smtplib gives them as bytes)."""
    return f"{code} {wire_text(text)}"


def _smtp_login(
    smtp: smtplib.SMTP,
    settings: ConnectionSettings,
    services: Any,
    add_secret: SecretFn | None,
    account: str | None,
) -> None:
    if settings.auth == "password":
        _smtp_password_login(smtp, settings)
    elif settings.auth != "none":
        _smtp_oauth_login(smtp, settings, services, add_secret, account)


def _smtp_password_login(smtp: smtplib.SMTP, settings: ConnectionSettings) -> None:
    """AUTH with user name and password (smtplib picks the mechanism)."""
    import smtplib

    try:
        smtp.login(settings.username, settings.password)
    except smtplib.SMTPNotSupportedError:
        raise errors.LoginFailed(
            f"{settings.describe()} offers no login (no AUTH after EHLO). Use security: "
            "starttls or ssl, or auth: none if the server relays without login."
        ) from None
    except smtplib.SMTPResponseException as exc:
        reply = smtp_reply(exc.smtp_code, exc.smtp_error)
        if exc.smtp_code == 454 or _is_temporary(reply):
            raise _temporary(settings, reply) from None
        raise _password_failed(settings, reply) from None
    except smtplib.SMTPException as exc:
        raise errors.LoginFailed(
            f"{settings.describe()}: login not possible: {exc}. Check security and auth."
        ) from None
    except OSError as exc:
        raise _connect_error(settings, exc) from None


def _smtp_oauth_login(
    smtp: smtplib.SMTP,
    settings: ConnectionSettings,
    services: Any,
    add_secret: SecretFn | None,
    account: str | None,
) -> None:
    """AUTH with an OAuth token, retried once with a fresh token by ``_oauth_login``; refused
    before fetching a token when EHLO does not list the task's mechanism."""
    import smtplib

    mech_name = settings.sasl.upper()
    offered = (smtp.esmtp_features.get("auth") or "").upper().split()
    if mech_name not in offered:
        advice = (
            _mech_advice(mech_name, offered) if offered else "Try security: starttls; "
            "Microsoft 365 needs SMTP AUTH enabled for the mailbox."
        )
        raise errors.LoginFailed(
            f"{settings.describe()} does not offer AUTH {mech_name} (offers: "
            f"{' '.join(offered) or 'none'}). {advice}"
        )

    def attempt(_initial: bytes, mech: sasl.OAuthMechanism) -> None:
        def auth_object(challenge: bytes | None = None) -> str:
            # smtplib calls this again with the error challenge: answer it with "".
            return mech(challenge).decode("utf-8")

        try:
            smtp.auth(mech_name, auth_object, initial_response_ok=True)
        except smtplib.SMTPResponseException as exc:
            raise _Rejected(smtp_reply(exc.smtp_code, exc.smtp_error), mech.error) from None
        except OSError as exc:
            raise _connect_error(settings, exc) from None

    _oauth_login(settings, services, attempt, add_secret, account)
