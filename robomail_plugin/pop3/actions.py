"""The POP3 actions: their parameters and their runs.

Imported at start-up, so it imports no mail code: ``commands`` (which does the work) is imported
the first time one of them runs.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from robomail_plugin import errors, schema
from robomail_plugin.declare import (
    Action,
    Parameters,
    choice,
    data,
    flag,
    group,
    integer,
    path,
    text,
    variable,
)
from robomail_plugin.lazy import deferred_module
from robomail_plugin.shared_params import IfExists, Match, Order, Pop3Login

if TYPE_CHECKING:
    from robomail_plugin.pop3 import commands
else:
    commands = deferred_module("robomail_plugin.pop3.commands")

KIND = "pop3"
DEFAULT_CONNECTION = "POP3"
CATEGORY = "Email"


class OnClose(enum.StrEnum):
    COMMIT = "commit"
    DISCARD = "discard"


class Retrieve(enum.StrEnum):
    HEADERS = "headers"
    WHOLE = "whole"


def _connection() -> Any:
    return text(
        DEFAULT_CONNECTION,
        help="Name of the POP3 connection (as given to POP3 Open).",
        empty_is_default=True,
    )


def _number() -> Any:
    return integer(help="Message number in this POP3 session (e.g. {json:Msg.number}).")


def _uid() -> Any:
    return text(help="The message's UIDL (e.g. {json:Msg.uid}); use instead of number.")


class Pop3Open(Parameters):
    login: Pop3Login = group(Pop3Login)
    connection: str = _connection()
    save_count_to: str | None = variable(help="Variable for the number of messages in the mailbox.")


class Pop3Close(Parameters):
    connection: str = _connection()
    on_close: OnClose = choice(
        OnClose,
        OnClose.COMMIT,
        help="commit = delete what POP3 Delete Email marked; discard = keep everything.",
    )


class Pop3MessagesCount(Parameters):
    connection: str = _connection()
    save_count_to: str | None = variable("Count", help="Variable for the number of messages.")
    save_size_to: str | None = variable(help="Variable for the total size in bytes.")


class Pop3MailLoop(Parameters):
    connection: str = _connection()
    order: Order = choice(Order, Order.OLDEST, help="oldest first or newest first.")
    retrieve: Retrieve = choice(
        Retrieve,
        Retrieve.HEADERS,
        help="headers = only the headers (TOP n 0; fast, no body or attachment list); whole = "
        "the whole message. Conditions on body, text or has_attachment fetch whole messages "
        "anyway.",
    )
    max_messages: int = integer(0, help="Stop after this many matching messages; 0 = all.")
    conditions: Any = data(help="List of {field, op, value}; see Conditions.")
    match: Match = choice(
        Match, Match.ALL, help="all = every condition must hold; any = one is enough."
    )
    save_to: str = variable(
        "Msg", help="Variable for each message's Message info JSON.", empty_is_default=True
    )
    skip_seen: bool = flag(
        False,
        help="Skip messages this task already processed in earlier runs (remembered by UIDL, "
        "per mailbox).",
    )


class Pop3DownloadEmail(Parameters):
    connection: str = _connection()
    number: int | None = _number()
    uid: str | None = _uid()
    save_to_file: str | None = path(help="Full path of the .eml file to write.")
    folder: str | None = path(help="Folder to save into (created if missing), with file_name.")
    file_name: str = text(
        "{uid}.eml",
        empty_is_default=True,
        help="File name in folder; {uid}, {number}, {subject}, {from}, {from_address}, {date}, "
        "{message_id} are filled in.",
    )
    if_exists: IfExists = choice(
        IfExists,
        IfExists.UNIQUE,
        help="When the file exists: overwrite, unique (name (1).eml) or error.",
    )
    attachments_folder: str | None = path(
        help="Also save the attachments into this folder (safe names)."
    )
    save_path_to: str | None = variable(help="Variable for the path of the written .eml file.")


class Pop3DeleteEmail(Parameters):
    connection: str = _connection()
    number: int | None = _number()
    uid: str | None = _uid()


# --- errors ---------------------------------------------------------------------------------------

#: what logging in can raise (POP3 Open; Check for Email and the POP3 trigger log in too)
LOGIN_ERRORS = (
    errors.ConnectFailed.because(
        "Cannot reach the server, TLS failed, STLS was required and not offered, or the server "
        "closed the connection."
    ),
    errors.LoginFailed,
    errors.LoginTemporaryFailure.because(
        "The server could not log in now: the mailbox is in use by another session ([IN-USE]), "
        "too soon after the last login ([LOGIN-DELAY]), or a temporary fault; try again later."
    ),
    errors.MailProtocolError.because(
        "The server refused the login for a fault of its own ([SYS/PERM]), not the credentials."
    ),
    errors.InvalidParameter,
    schema.ConnectionInUse,
    errors.RecordNotFound,
    errors.TokenError,
    errors.TokenTemporaryError,
    errors.StoreError,
)
#: what an action on an open session can raise
SESSION_ERRORS = (
    schema.ConnectionNotOpen,
    schema.WrongConnectionKind,
    errors.MailProtocolError,
    errors.ConnectFailed.because("The connection was lost."),
)
#: naming one message by number or uid
MESSAGE_ERRORS = (
    errors.MessageNotFound.because("No message has that number or UIDL."),
    errors.InvalidParameter.because("Neither or both of number and uid given."),
)


ACTIONS: list[Action[Any]] = [
    Action(
        title="POP3 Open",
        category=CATEGORY,
        params=Pop3Open,
        run=commands.run_open,
        uses_services=True,
        description="Connects and logs in to a POP3 server and registers the session under a "
        "connection name for the other POP3 actions.",
        errors=LOGIN_ERRORS,
    ),
    Action(
        title="POP3 Close",
        category=CATEGORY,
        params=Pop3Close,
        run=commands.run_close,
        description="Ends the POP3 session: commit (QUIT: deletions take effect) or discard "
        "(RSET then QUIT: nothing is deleted).",
        errors=SESSION_ERRORS,
    ),
    Action(
        title="POP3 Messages Count",
        category=CATEGORY,
        params=Pop3MessagesCount,
        run=commands.run_count,
        description="Counts the messages in the mailbox and their total size (STAT).",
        errors=SESSION_ERRORS,
    ),
    Action(
        title="POP3 Mail Loop",
        category=CATEGORY,
        params=Pop3MailLoop,
        run=commands.run_loop,
        loop=True,
        description="Runs the loop body once per message (a snapshot taken when the loop "
        "starts), writing its Message info to a variable.",
        errors=(
            *SESSION_ERRORS,
            errors.InvalidParameter.because("A condition or max_messages is wrong."),
        ),
    ),
    Action(
        title="POP3 Download Email",
        category=CATEGORY,
        params=Pop3DownloadEmail,
        run=commands.run_download,
        description="Saves one message as a .eml file, optionally extracting its attachments.",
        errors=(
            *SESSION_ERRORS,
            *MESSAGE_ERRORS,
            errors.FileError.because("The file exists (if_exists: error) or cannot be written."),
        ),
    ),
    Action(
        title="POP3 Delete Email",
        category=CATEGORY,
        params=Pop3DeleteEmail,
        run=commands.run_delete,
        description="Marks one message for deletion (DELE); it is removed when the session "
        "closes with commit, kept with discard.",
        errors=(*SESSION_ERRORS, *MESSAGE_ERRORS),
    ),
]
