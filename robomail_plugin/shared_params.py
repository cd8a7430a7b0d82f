"""Parameters several actions share: the login, the choices, the conditions.

Light on purpose: the action modules are imported at start-up and build their parameter classes
from these; the implementations (``transport.connect``, ``message.files``, ``imap.search``) read
the same Enums and classes on first use.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

from robomail_plugin import errors
from robomail_plugin.declare import Parameters, choice, data, flag, integer, path, tailored, text


class Security(enum.StrEnum):
    SSL = "ssl"
    STARTTLS = "starttls"
    NONE = "none"


class Auth(enum.StrEnum):
    PASSWORD = "password"  # noqa: S105 - a way of logging in, not a password
    OAUTH = "oauth"
    NONE = "none"


class Sasl(enum.StrEnum):
    XOAUTH2 = "xoauth2"
    OAUTHBEARER = "oauthbearer"


class Messages(enum.StrEnum):
    """``messages`` of the IMAP actions: which messages by flag (see ``imap.search``)."""

    ALL = "all"
    UNSEEN = "unseen"
    SEEN = "seen"
    FLAGGED = "flagged"
    UNFLAGGED = "unflagged"
    ANSWERED = "answered"
    UNANSWERED = "unanswered"
    DELETED = "deleted"
    UNDELETED = "undeleted"
    NEW = "new"


class IfExists(enum.StrEnum):
    """``if_exists`` of the actions that write files (see ``message.files``)."""

    OVERWRITE = "overwrite"
    UNIQUE = "unique"
    ERROR = "error"


class Source(enum.StrEnum):
    """Where Parse Email's message comes from."""

    FILE = "file"
    TEXT = "text"


class Order(enum.StrEnum):
    """The mail loops' ``order``: oldest or newest first."""

    OLDEST = "oldest"
    NEWEST = "newest"


class Match(enum.StrEnum):
    ALL = "all"
    ANY = "any"


PROTOCOLS = ("imap", "pop3", "smtp")
DEFAULT_PORTS = {
    ("imap", "ssl"): 993,
    ("imap", "starttls"): 143,
    ("imap", "none"): 143,
    ("pop3", "ssl"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "none"): 110,
    ("smtp", "ssl"): 465,
    ("smtp", "starttls"): 587,
    ("smtp", "none"): 587,
}


class Login(Parameters):
    """Where to connect and how to log in: the parameters every Open action starts with.

    Use a protocol's own class (``ImapLogin``...): each says its server, ports and defaults.
    """

    protocol: ClassVar[str] = ""  # each subclass's
    server: str = text(required=True, help="Server host name or address.")
    port: int | None = integer(help="TCP port; empty or 0 = the standard port for the security.")
    security: Security = choice(
        Security,
        Security.SSL,
        help="ssl = implicit TLS; starttls = upgrade a plain connection (required: fails "
        "when the server does not offer it); none = no encryption.",
    )
    auth: Auth = choice(
        Auth,
        Auth.PASSWORD,
        only=(Auth.PASSWORD, Auth.OAUTH),
        help="password = user name and password; oauth = an OAuth record.",
    )
    username: str | None = text(help="User name for auth: password.")
    password: str | None = text(secret=True, help="Password for auth: password (secret).")
    oauth_record: str | None = text(
        help="Record Name of the OAuth parameter set for auth: oauth; the user name is the "
        "record's Client Account."
    )
    sasl: Sasl = choice(
        Sasl,
        Sasl.XOAUTH2,
        help="SASL mechanism for auth: oauth: xoauth2 or oauthbearer (RFC 7628).",
    )
    timeout: int = integer(60, help="Network timeout in seconds.")
    verify_tls: bool = flag(
        True, help="Check the server certificate; false is insecure and logs a warning."
    )
    ca_file: str | None = path(
        help="A CA certificate file (PEM) to trust instead of the system's CAs."
    )


def _protocol_facts(protocol: str, security: Security, **more: Any) -> Any:
    """The changes that make ``Login`` one protocol's: names, ports, default security."""
    name = protocol.upper()
    ports = "/".join(str(DEFAULT_PORTS[(protocol, s)]) for s in ("ssl", "starttls"))
    facts: dict[str, Any] = {
        "server": {"help": f"{name} server host name or address."},
        "port": {
            "help": f"TCP port; empty or 0 = the standard port for the security ({ports})."
        },
        "security": {"default": security},
    }
    return tailored(**{**facts, **more})


class ImapLogin(Login, tailor=_protocol_facts("imap", Security.SSL)):
    protocol: ClassVar[str] = "imap"


class Pop3Login(Login, tailor=_protocol_facts("pop3", Security.SSL)):
    protocol: ClassVar[str] = "pop3"


class SmtpLogin(
    Login,
    tailor=_protocol_facts(
        "smtp",
        Security.STARTTLS,
        auth={
            "only": tuple(Auth),
            "help": "password = user name and password; oauth = an OAuth record; none = no "
            "login.",
        },
    ),
):
    protocol: ClassVar[str] = "smtp"


#: What logging in can raise, OAuth included.
LOGIN_ERRORS = (
    errors.ConnectFailed,
    errors.LoginFailed,
    errors.LoginTemporaryFailure,
    errors.RecordNotFound,
    errors.TokenError,
    errors.TokenTemporaryError,
    errors.StoreError,
)


LOGINS: dict[str, type[Login]] = {"imap": ImapLogin, "pop3": Pop3Login, "smtp": SmtpLogin}


class ConditionParams(Parameters):
    """``conditions`` + ``match``, shared by IMAP Mail Loop, Check for Email and the triggers."""

    conditions: Any = data(
        help="List of {field, op, value}: fields from/to/cc/subject/body/text/date/size/"
        "has_attachment; ops contains/not_contains/equals/starts_with/ends_with/matches/"
        "before/after/on/larger/smaller. What SEARCH can express runs on the server."
    )
    match: Match = choice(
        Match, Match.ALL, help="all = every condition must hold; any = one is enough."
    )

