"""The IMAP actions of the catalogue (ACTIONS.md, "IMAP"): their parameters and their runs.

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
    flag,
    group,
    integer,
    items,
    path,
    text,
    variable,
)
from robomail_plugin.lazy import deferred_module
from robomail_plugin.shared_params import (
    LOGIN_ERRORS,
    ConditionParams,
    IfExists,
    ImapLogin,
    Messages,
    Order,
)

if TYPE_CHECKING:
    from robomail_plugin.imap import commands
else:
    commands = deferred_module("robomail_plugin.imap.commands")

CATEGORY = "Email/IMAP"
DEFAULT_CONNECTION = "IMAP"

# --- errors --------------------------------------------------------------------------------------

SESSION_ERRORS = (
    schema.ConnectionNotOpen,
    schema.WrongConnectionKind,
    errors.MailProtocolError,
    errors.ConnectFailed,
    errors.InvalidParameter,
)


# --- the choices only these actions take ---------------------------------------------------------


class FlagOperation(enum.StrEnum):
    """IMAP Set Message Flags' ``operation``."""

    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"


# --- shared fields -------------------------------------------------------------------------------


def _connection() -> Any:
    return text(
        DEFAULT_CONNECTION,
        help="Name of the IMAP connection (as given to IMAP Open).",
        empty_is_default=True,
    )


def _uid() -> Any:
    return text(required=True, help="The message's UID in the selected folder.")


def _uids() -> Any:
    return items(
        required=True,
        help="One UID, a list (1,3,5, or a loop's save_uids_to) or a range (1:5, 10:*) in the "
        "selected folder; a list is one command, and an empty list does nothing.",
    )


# --- the parameter classes -----------------------------------------------------------------------


class ImapOpen(Parameters):
    login: ImapLogin = group(ImapLogin)
    connection: str = _connection()
    folder: str | None = text("INBOX", help="Folder to select (plain Unicode name); empty = none.")
    read_only: bool = flag(
        False, help="Select with EXAMINE: nothing can be changed, \\Recent is kept."
    )


class ImapClose(Parameters):
    connection: str = _connection()
    expunge: bool = flag(
        False, help="Expunge messages marked \\Deleted first; false = LOGOUT only."
    )


class ImapSelect(Parameters):
    connection: str = _connection()
    folder: str = text(required=True, help="Folder to select (plain Unicode).")
    read_only: bool = flag(False, help="EXAMINE instead of SELECT.")
    create_if_missing: bool = flag(False, help="Create the folder when it does not exist.")
    save_info_to: str | None = variable(
        help="Variable for JSON {folder,total,recent,uidnext,uidvalidity,...}."
    )


class ImapMailLoop(Parameters):
    connection: str = _connection()
    folder: str | None = text(
        "", help="Folder to loop over (selected for the body); empty = selected."
    )
    messages: Messages = choice(Messages, Messages.ALL, help="Which messages by flag.")
    filters: ConditionParams = group(ConditionParams)
    raw_search: str | None = text(
        help="Extra IMAP SEARCH criteria as written (e.g. 'HEADER X-Spam yes')."
    )
    order: Order = choice(Order, Order.OLDEST, help="oldest first or newest first (by UID).")
    max_messages: int = integer(0, help="Stop after this many messages; 0 = no limit.")
    mark_seen: bool = flag(False, help="Set \\Seen on each message processed (false: peek).")
    include_body: bool = flag(
        False, help="Fetch bodies: body_text/body_html and attachment details."
    )
    save_to: str = variable(
        "Msg", help="Variable that receives each message's info (JSON).", empty_is_default=True
    )
    save_uids_to: str | None = variable(
        help="Variable for the list of UIDs the loop went through (set when it ends): give it "
        "to Move Message, Set Message Flags or Delete Marked Messages to act on all of them in "
        "one command."
    )
    uids_only: bool = flag(
        False,
        help="Only put the matching UIDs into save_uids_to: the body does not run and nothing "
        "is fetched unless a condition needs it (the bulk form).",
    )


class ImapDownload(Parameters):
    connection: str = _connection()
    uid: str = _uid()
    save_to_file: str | None = path(help="Full path of the .eml file to write.")
    folder: str | None = path(
        help="Local folder to save into (with file_name), when save_to_file is empty."
    )
    file_name: str = text(
        "{uid}.eml",
        empty_is_default=True,
        help="File name in folder; {uid}, {subject}, {from}, {date}, {message_id} are filled "
        "from the message.",
    )
    if_exists: IfExists = choice(
        IfExists,
        IfExists.UNIQUE,
        help="When the file exists: overwrite, unique (name (1).eml) or error.",
    )
    attachments_folder: str | None = path(help="Also save the attachments here (names made safe).")
    save_path_to: str | None = variable(help="Variable that receives the path of the .eml file.")
    mark_seen: bool = flag(False, help="Set \\Seen on the message after saving it.")


class ImapGetFlags(Parameters):
    connection: str = _connection()
    uid: str = _uid()
    save_to: str = variable(
        "Flags", help="Variable for the flags (space-separated).", empty_is_default=True
    )
    as_json: bool = flag(False, help="Save a JSON list instead of space-separated text.")


class ImapSetFlags(Parameters):
    connection: str = _connection()
    uid: list[Any] = _uids()
    operation: FlagOperation = choice(
        FlagOperation, FlagOperation.ADD, help="add, remove, or replace all flags."
    )
    flags: str | None = text(
        "",
        help="Space-separated: \\Seen \\Answered \\Flagged \\Deleted \\Draft and keywords "
        "(e.g. $Label1).",
    )


class ImapDeleteMarked(Parameters):
    connection: str = _connection()
    uids: list[Any] | None = items(
        help="Only these UIDs (list or range; UID EXPUNGE, needs UIDPLUS); an empty list "
        "expunges none; not given = every message marked \\Deleted."
    )
    save_count_to: str | None = variable(help="Variable for the number of messages expunged.")


class ImapMove(Parameters):
    connection: str = _connection()
    uid: list[Any] = _uids()
    destination: str = text(required=True, help="Folder to move to.")
    create_if_missing: bool = flag(False, help="Create the destination when it does not exist.")
    save_new_uid_to: str | None = variable(
        help="Variable for the new UID (one message) or JSON {old: new}."
    )


class ImapFolderInfo(Parameters):
    connection: str = _connection()
    folder: str | None = text("", help="Folder; empty = the selected one.")
    save_to: str = variable(
        "FolderInfo",
        help="Variable for JSON {folder,total,unseen,recent,uidnext,uidvalidity}.",
        empty_is_default=True,
    )


# --- the actions ---------------------------------------------------------------------------------

ACTIONS: list[Action[Any]] = [
    Action(
        title="IMAP Open",
        category=CATEGORY,
        params=ImapOpen,
        run=commands.run_open,
        errors=(
            *LOGIN_ERRORS,
            errors.FolderNotFound,
            errors.MailProtocolError,
            errors.InvalidParameter,
            schema.ConnectionInUse,
        ),
        description="Connects and logs in to an IMAP server and registers the connection.",
        uses_services=True,
    ),
    Action(
        title="IMAP Close",
        category=CATEGORY,
        params=ImapClose,
        run=commands.run_close,
        errors=SESSION_ERRORS,
        description="Logs out (LOGOUT: nothing is expunged unless expunge is true).",
    ),
    Action(
        title="IMAP Select Mail Folder",
        category=CATEGORY,
        params=ImapSelect,
        run=commands.run_select,
        errors=(*SESSION_ERRORS, errors.FolderNotFound),
    ),
    Action(
        title="IMAP Mail Loop",
        category=CATEGORY,
        params=ImapMailLoop,
        run=commands.run_mail_loop,
        errors=(*SESSION_ERRORS, errors.FolderNotFound),
        loop=True,
        description="Runs the body once per matching message over a snapshot of UIDs.",
    ),
    Action(
        title="IMAP Download Message",
        category=CATEGORY,
        params=ImapDownload,
        run=commands.run_download,
        errors=(*SESSION_ERRORS, errors.MessageNotFound, errors.FileError),
    ),
    Action(
        title="IMAP Get Message Flags",
        category=CATEGORY,
        params=ImapGetFlags,
        run=commands.run_get_flags,
        errors=(*SESSION_ERRORS, errors.MessageNotFound),
    ),
    Action(
        title="IMAP Set Message Flags",
        category=CATEGORY,
        params=ImapSetFlags,
        run=commands.run_set_flags,
        errors=(*SESSION_ERRORS, errors.MessageNotFound),
    ),
    Action(
        title="IMAP Delete Marked Messages",
        category=CATEGORY,
        params=ImapDeleteMarked,
        run=commands.run_delete_marked,
        errors=SESSION_ERRORS,
    ),
    Action(
        title="IMAP Move Message",
        category=CATEGORY,
        params=ImapMove,
        run=commands.run_move,
        errors=(*SESSION_ERRORS, errors.FolderNotFound, errors.MessageNotFound),
    ),
    Action(
        title="IMAP Folder Info",
        category=CATEGORY,
        params=ImapFolderInfo,
        run=commands.run_folder_info,
        errors=(*SESSION_ERRORS, errors.FolderNotFound),
    ),
]
