"""The errors a failed connection or login ends in, worded once for IMAP, POP3 and SMTP.

Light to import (no mail, TLS or socket library): ``connect`` re-exports from here, and the
libraries are loaded only when a connection is opened.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

from robomail_plugin import errors
from robomail_plugin.shared_params import DEFAULT_PORTS, Auth, Security

if TYPE_CHECKING:
    from robomail_plugin.services import Services
    from robomail_plugin.transport.sasl import ErrorChallenge
    from robomail_plugin.transport.settings import ConnectionSettings


def connect_error(settings: ConnectionSettings, exc: BaseException) -> errors.ConnectFailed:
    """A failed connect or TLS upgrade, with what to check for the kind of failure."""
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


def starttls_missing(settings: ConnectionSettings, name: str) -> errors.ConnectFailed:
    """``security: starttls`` and the server does not list ``name`` (STARTTLS, POP3's STLS)."""
    ssl_port = DEFAULT_PORTS[(settings.protocol, Security.SSL)]
    return errors.ConnectFailed(
        f"{settings.describe()} does not offer {name}, and security: starttls requires it. "
        f"Use security: ssl (port {ssl_port}) or check the server."
    )


def password_in_clear(
    settings: ConnectionSettings, why: str, starttls: bool
) -> errors.ConnectFailed:
    """A server that takes no password without TLS (``why``: what it said, what that means)."""
    this_port = " (on this port)" if starttls else ""
    ssl_port = DEFAULT_PORTS[(settings.protocol, Security.SSL)]
    return errors.ConnectFailed(
        f"{settings.describe()} {why}, and robomail does not send a password in clear. Use "
        f"security: starttls{this_port} or ssl (port {ssl_port})."
    )


# --- Refused logins ------------------------------------------------------------------------------

_TEMP_MARKERS = ("[UNAVAILABLE]", "[SYS/TEMP]", "TEMPORARY")


def is_temporary(reply: str) -> bool:
    """Whether a refusal says the server could not check the login now (IMAP/POP3 response
    codes, SMTP 454)."""
    upper = reply.upper()
    return any(m in upper for m in _TEMP_MARKERS) or upper.startswith("454")


def temporary(settings: ConnectionSettings, reply: str) -> errors.LoginTemporaryFailure:
    return errors.LoginTemporaryFailure(
        f"{settings.describe()} could not check the login right now (server said: {reply}). "
        "This is usually the provider's token check being down; try again later.",
        server_reply=reply,
    )


def password_failed(settings: ConnectionSettings, reply: str) -> errors.LoginFailed:
    return errors.LoginFailed(
        f"{settings.describe()} rejected the login of user {settings.username!r} (server said: "
        f"{reply}). Check the user name and password; some providers need an app password or "
        "OAuth.",
        server_reply=reply,
    )


def who(settings: ConnectionSettings) -> str:
    """Whom the login was for, in a message: the user name, or the OAuth record's account."""
    if settings.auth == Auth.PASSWORD:
        return repr(settings.username)
    return f"the account of OAuth record {settings.oauth_record!r}"


# --- Refused OAuth logins ------------------------------------------------------------------------


def mech_advice(mech_name: str, offered: list[str]) -> str:
    """What to set when the server lacks the task's SASL mechanism but has the other one."""
    other = "XOAUTH2" if mech_name == "OAUTHBEARER" else "OAUTHBEARER"
    if other in offered:
        why = " (Microsoft's servers take XOAUTH2 only)" if other == "XOAUTH2" else ""
        return f"It offers {other}: set sasl: {other.lower()} in the step{why}."
    return (
        "Try the other sasl mechanism (xoauth2 / oauthbearer) or check that the server "
        "supports OAuth."
    )


def mech_missing(settings: ConnectionSettings, offered: list[str]) -> errors.LoginFailed:
    """The server lists SASL mechanisms, not the task's (POP3 CAPA, SMTP EHLO)."""
    mech_name = settings.sasl.upper()
    advice = (
        mech_advice(mech_name, offered)
        if offered
        else "Try security: starttls; Microsoft 365 needs SMTP AUTH enabled for the mailbox."
    )
    return errors.LoginFailed(
        f"{settings.describe()} does not offer AUTH {mech_name} (offers: "
        f"{' '.join(offered) or 'none'}). {advice}"
    )


_SMTP_AUTH_OFF = re.compile(r"5\.7\.139.*SmtpClientAuthentication is disabled", re.IGNORECASE)


def smtp_auth_disabled(
    settings: ConnectionSettings, user: str, reply: str
) -> errors.LoginFailed | None:
    """Microsoft's 535 5.7.139: SMTP AUTH is off for the mailbox or tenant; no token helps.
    None for any other reply."""
    if not _SMTP_AUTH_OFF.search(reply):
        return None
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


def token_rejected(
    settings: ConnectionSettings,
    services: Services,
    user: str,
    reply: str,
    challenge: ErrorChallenge | None,
) -> errors.LoginFailed:
    """The server refused the cached token and the fresh one; the refusal is journalled for
    ``hostsim oauth doctor``."""
    status = f"; decoded challenge: {challenge.describe()}" if challenge else ""
    advice = _provider_advice(settings, services, challenge)
    failed = errors.LoginFailed(
        f"{settings.describe()} rejected the OAuth token of {user!r} via "
        f"{settings.sasl.upper()} (server said: {reply}{status}), also after fetching a "
        f"fresh token. {advice + ' ' if advice else ''}{_oauth_advice(settings)}",
        server_reply=reply,
    )
    journal(settings, services, failed, reply, advice)
    return failed


def _oauth_advice(settings: ConnectionSettings) -> str:
    advice = (
        f"Check the OAuth record {settings.oauth_record!r} (run `hostsim oauth test "
        f"{settings.oauth_record}` or Get Refresh Token again) and that its Client Account and "
        "Scope allow mail access"
    )
    if settings.protocol == "smtp":
        advice += "; Microsoft 365 also needs SMTP AUTH enabled for the mailbox"
    return advice + "."


def _provider_advice(
    settings: ConnectionSettings, services: Services, challenge: ErrorChallenge | None
) -> str:
    """What the record's provider rules say about a refused token (a Scope without the mail
    scope, Graph scopes for Outlook); "" when they say nothing."""
    try:
        from robomail_plugin.credentials.presets import login_advice

        record = services.store.get(settings.oauth_record)
        wanted = str(challenge.fields.get("scope", "")) if challenge is not None else ""
        return login_advice(services.providers(), record, settings.protocol, wanted)
    except Exception:  # advice is a bonus: never hide the login error behind another
        return ""


def journal(
    settings: ConnectionSettings,
    services: Services,
    error: errors.RobomailError,
    reply: str,
    advice: str = "",
) -> None:
    """Keeps a refused login for ``hostsim oauth doctor``."""
    note = getattr(getattr(services, "tokens", None), "note_login_failure", None)
    if note is not None:
        with contextlib.suppress(Exception):
            note(settings.oauth_record, f"{settings.protocol} login", reply, str(error), advice)


# --- POP3 ----------------------------------------------------------------------------------------

# An RFC 2449 response code opening an -ERR reply: "-ERR [IN-USE] ...", "-ERR [SYS/TEMP] ...".
_POP3_CODE_RE = re.compile(r"-ERR\s+\[([A-Za-z0-9/-]+)\]", re.IGNORECASE)


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


def pop3_refusal(settings: ConnectionSettings, reply: str) -> errors.RobomailError | None:
    """The error for a login refused for another reason than the credentials, by its RFC 2449
    response code; None when the reply does not say so (the credentials are to blame)."""
    m = _POP3_CODE_RE.match(reply.strip())
    code = m.group(1).upper() if m else ""
    where = f"{settings.describe()} did not log in {who(settings)}"
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
    if code == "SYS/TEMP" and settings.auth == Auth.PASSWORD:
        return errors.LoginTemporaryFailure(
            f"{where}: a temporary problem on the server (server said: {reply}). Try again later.",
            server_reply=reply,
        )
    if code == "SYS/PERM":
        return errors.MailProtocolError(
            f"{where}: a lasting problem on the server, not with the user name or password "
            f"(server said: {reply}). Ask the mail server's administrator.",
            server_reply=reply,
        )
    return None
