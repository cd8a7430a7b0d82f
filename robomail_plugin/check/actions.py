"""Check for Email: its parameters and its run.

Imported at start-up, so it imports no mail code: ``commands`` (which does the work) is imported
the first time the action runs.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar

from robomail_plugin import errors
from robomail_plugin.declare import (
    Action,
    Parameters,
    choice,
    flag,
    group,
    path,
    tailored,
    text,
    variable,
)
from robomail_plugin.lazy import deferred_module
from robomail_plugin.shared_params import LOGIN_ERRORS, ConditionParams, Login, Messages

if TYPE_CHECKING:
    from robomail_plugin.check import commands
else:
    commands = deferred_module("robomail_plugin.check.commands")


class Protocol(enum.StrEnum):
    """Which protocol Check for Email speaks (not ``typing.Protocol``)."""

    IMAP = "imap"
    POP3 = "pop3"


class CheckLogin(
    Login,
    tailor=tailored(
        server={"help": "Server host name or address."},
        port={"help": "TCP port; empty = the standard one (IMAP 993/143, POP3 995/110)."},
    ),
):
    """The IMAP login, with help texts naming both protocols; the action's ``protocol`` says
    which one it is (``ConnectionSettings.from_login(login, protocol=...)``)."""

    protocol: ClassVar[str] = "imap"


class CheckForEmail(Parameters):
    protocol: Protocol = choice(Protocol, Protocol.IMAP, help="imap or pop3.")
    login: CheckLogin = group(CheckLogin)
    folder: str = text("INBOX", help="IMAP folder to check.", empty_is_default=True)
    messages: Messages = choice(
        Messages, Messages.UNSEEN, help="IMAP: which messages by flag (default unseen)."
    )
    filters: ConditionParams = group(ConditionParams)
    only_new: bool = flag(
        False,
        help="Report only messages that arrived since this task's previous check "
        "(remembered across runs; on POP3 the only way to get 'new').",
    )
    mark_seen: bool = flag(False, help="Set \\Seen on the messages found.")
    save_count_to: str | None = variable(help="Variable for the number of messages found.")
    save_to: str | None = variable(help="Variable for a JSON list of the messages' info.")
    save_uids_to: str | None = variable(
        help="Variable for the list of the UIDs found (IMAP UIDs, POP3 UIDLs): IMAP Move "
        "Message, Set Message Flags and Delete Marked Messages take it whole."
    )
    download_to: str | None = path(help="Folder to save each message found as <uid>.eml.")


ACTIONS: list[Action[Any]] = [
    Action(
        title="Check for Email",
        category="Email",
        params=CheckForEmail,
        run=commands.run_check,
        uses_services=True,
        description="Opens a connection, finds matching (or new) messages, records them and "
        "closes. Finding none is not an error.",
        errors=(
            *LOGIN_ERRORS,
            errors.FolderNotFound,
            errors.MailProtocolError,
            errors.InvalidParameter,
            errors.FileError,
        ),
    )
]
