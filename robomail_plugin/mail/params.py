"""Parameter declarations the mail actions share: connection, conditions, choices.

Light on purpose: the declaration modules (``*_actions``) are imported at start-up and build their
parameters from these; the implementations (``connect``, ``files``, ``imap_search``) import the
same constants from here on first use.
"""

from __future__ import annotations

from robomail_plugin.schema import Param, ParamType

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
SECURITY_CHOICES = ("ssl", "starttls", "none")
SASL_CHOICES = ("xoauth2", "oauthbearer")


def auth_choices(protocol: str) -> tuple[str, ...]:
    return ("password", "oauth", "none") if protocol == "smtp" else ("password", "oauth")


def default_security(protocol: str) -> str:
    return "starttls" if protocol == "smtp" else "ssl"


def connection_params(protocol: str) -> tuple[Param, ...]:
    """The connection parameters every action of ``protocol`` declares (ACTIONS.md table)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")
    p = protocol.upper()
    ports = "/".join(str(DEFAULT_PORTS[(protocol, s)]) for s in ("ssl", "starttls"))
    return (
        Param(name="server", required=True, help=f"{p} server host name or address."),
        Param(
            name="port",
            type=ParamType.INT,
            help=f"TCP port; empty or 0 = the standard port for the security ({ports}).",
        ),
        Param(
            name="security",
            type=ParamType.CHOICE,
            choices=SECURITY_CHOICES,
            default=default_security(protocol),
            help="ssl = implicit TLS; starttls = upgrade a plain connection (required: fails "
            "when the server does not offer it); none = no encryption.",
        ),
        Param(
            name="auth",
            type=ParamType.CHOICE,
            choices=auth_choices(protocol),
            default="password",
            help="password = user name and password; oauth = an OAuth record"
            + ("; none = no login." if protocol == "smtp" else "."),
        ),
        Param(name="username", help="User name for auth: password."),
        Param(name="password", secret=True, help="Password for auth: password (secret)."),
        Param(
            name="oauth_record",
            help="Record Name of the OAuth parameter set for auth: oauth; the user name is the "
            "record's Client Account.",
        ),
        Param(
            name="sasl",
            type=ParamType.CHOICE,
            choices=SASL_CHOICES,
            default="xoauth2",
            help="SASL mechanism for auth: oauth: xoauth2 or oauthbearer (RFC 7628).",
        ),
        Param(name="timeout", type=ParamType.INT, default=60, help="Network timeout in seconds."),
        Param(
            name="verify_tls",
            type=ParamType.BOOL,
            default=True,
            help="Check the server certificate; false is insecure and logs a warning.",
        ),
        Param(
            name="ca_file",
            type=ParamType.PATH,
            help="A CA certificate file (PEM) to trust instead of the system's CAs.",
        ),
    )


#: ``messages`` of the IMAP actions: which messages by flag (see ``imap_search``).
MESSAGES_CHOICES = (
    "all",
    "unseen",
    "seen",
    "flagged",
    "unflagged",
    "answered",
    "unanswered",
    "deleted",
    "undeleted",
    "new",
)

#: ``if_exists`` of the actions that write files (see ``files``).
IF_EXISTS = ("overwrite", "unique", "error")


def conditions_params() -> tuple[Param, ...]:
    """``conditions`` + ``match``, shared by IMAP Mail Loop and Check for Email."""
    return (
        Param(
            name="conditions",
            type=ParamType.JSON,
            default=None,
            help="List of {field, op, value}: fields from/to/cc/subject/body/text/date/size/"
            "has_attachment; ops contains/not_contains/equals/starts_with/ends_with/matches/"
            "before/after/on/larger/smaller. What SEARCH can express runs on the server.",
        ),
        Param(
            name="match",
            type=ParamType.CHOICE,
            choices=("all", "any"),
            default="all",
            help="all = every condition must hold; any = one is enough.",
        ),
    )
