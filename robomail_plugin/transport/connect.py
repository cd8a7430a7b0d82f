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

from typing import TYPE_CHECKING

from robomail_plugin.transport.failures import pop3_closed
from robomail_plugin.transport.opener import LogFn, SecretFn, open_with, tls_context
from robomail_plugin.transport.replies import (  # noqa: F401 - tests read it from here
    clean_imap_reply as _clean_imap_reply,
)
from robomail_plugin.transport.replies import pop3_eof, pop3_reply, smtp_reply
from robomail_plugin.transport.settings import ConnectionSettings

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
