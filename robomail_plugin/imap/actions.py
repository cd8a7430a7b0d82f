"""The IMAP actions of the catalogue (ACTIONS.md, "IMAP"): their declarations.

Imported at start-up, so it imports no mail code: each action's ``run`` imports ``imap`` (which
does the work) the first time one of them runs.
"""

from __future__ import annotations

import re
from typing import Any

from robomail_plugin.lazy import lazy_run
from robomail_plugin.schema import ActionSpec, ErrorCode, Param, ParamType
from robomail_plugin.shared_params import (
    IF_EXISTS,
    MESSAGES_CHOICES,
    conditions_params,
    connection_params,
)

IMAP = "robomail_plugin.imap.commands"
CATEGORY = "Email/IMAP"
DEFAULT_CONNECTION = "IMAP"

# --- error codes and shared params ---------------------------------------------------------------

E_CONNECT = ErrorCode(code="connect_failed", meaning="the server cannot be reached or TLS failed")
E_LOGIN = ErrorCode(code="login_failed", meaning="user name/password or OAuth token rejected")
E_LOGIN_TEMP = ErrorCode(
    code="login_temporary", meaning="the server could not check the login now; try again later"
)
E_RECORD = ErrorCode(code="record_not_found", meaning="no OAuth record has that Record Name")
E_TOKEN = ErrorCode(code="token_refused", meaning="the provider refused the refresh token")
E_TOKEN_TEMP = ErrorCode(code="token_temporary", meaning="the token endpoint is unreachable")
E_SERVER = ErrorCode(code="server_error", meaning="the server refused a command (reply attached)")
E_FOLDER = ErrorCode(code="folder_not_found", meaning="the IMAP folder does not exist")
E_PARAM = ErrorCode(code="invalid_parameter", meaning="a parameter value is wrong")
E_NOT_OPEN = ErrorCode(code="connection_not_open", meaning="no connection has that name")
E_KIND = ErrorCode(code="wrong_connection_kind", meaning="the connection is not IMAP")
E_IN_USE = ErrorCode(code="connection_in_use", meaning="a connection with that name is open")
E_NOT_FOUND = ErrorCode(code="message_not_found", meaning="no message has that UID")
E_FILE = ErrorCode(code="file_error", meaning="a file could not be written")

LOGIN_ERRORS = (E_CONNECT, E_LOGIN, E_LOGIN_TEMP, E_RECORD, E_TOKEN, E_TOKEN_TEMP)
SESSION_ERRORS = (E_NOT_OPEN, E_KIND, E_SERVER, E_CONNECT, E_PARAM)


def _connection_param() -> Param:
    return Param(
        name="connection",
        default=DEFAULT_CONNECTION,
        help="Name of the IMAP connection (as given to IMAP Open).",
    )


def _uid_param(name: str = "uid", *, ranges: bool = False) -> Param:
    if ranges:
        return Param(
            name=name,
            type=ParamType.LIST,
            required=True,
            help="One UID, a list (1,3,5, or a loop's save_uids_to) or a range (1:5, 10:*) in "
            "the selected folder; a list is one command, and an empty list does nothing.",
        )
    return Param(name=name, required=True, help="The message's UID in the selected folder.")


# --- specs ---------------------------------------------------------------------------------------


def _id(title: str) -> str:
    return "robomail." + re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def _spec(
    title: str, run: Any, params: list[Param], errs: tuple[ErrorCode, ...], **kw: Any
) -> ActionSpec:
    return ActionSpec(
        id=_id(title),
        title=title,
        category=CATEGORY,
        run=run,
        params=tuple(params),
        errors=errs,
        **kw,
    )


def _download_params() -> list[Param]:
    return [
        Param(
            name="save_to_file", type=ParamType.PATH, help="Full path of the .eml file to write."
        ),
        Param(
            name="folder",
            type=ParamType.PATH,
            help="Local folder to save into (with file_name), when save_to_file is empty.",
        ),
        Param(
            name="file_name",
            default="{uid}.eml",
            help="File name in folder; {uid}, {subject}, {from}, {date}, {message_id} are "
            "filled from the message.",
        ),
        Param(
            name="if_exists",
            type=ParamType.CHOICE,
            choices=IF_EXISTS,
            default="unique",
            help="When the file exists: overwrite, unique (name (1).eml) or error.",
        ),
        Param(
            name="attachments_folder",
            type=ParamType.PATH,
            help="Also save the attachments here (names made safe).",
        ),
        Param(
            name="save_path_to",
            sets_variable=True,
            help="Variable that receives the path of the .eml file.",
        ),
    ]


def action_specs(services: Any) -> list[ActionSpec]:
    """Every IMAP action, for ``robomail_register_actions``."""
    conn = _connection_param()
    return [
        _spec(
            "IMAP Open",
            lazy_run(IMAP, "_open", services),
            [
                *connection_params("imap"),
                conn,
                Param(
                    name="folder",
                    default="INBOX",
                    help="Folder to select (plain Unicode name); empty = none.",
                ),
                Param(
                    name="read_only",
                    type=ParamType.BOOL,
                    default=False,
                    help="Select with EXAMINE: nothing can be changed, \\Recent is kept.",
                ),
            ],
            (*LOGIN_ERRORS, E_FOLDER, E_SERVER, E_PARAM, E_IN_USE),
            description="Connects and logs in to an IMAP server and registers the connection.",
        ),
        _spec(
            "IMAP Close",
            lazy_run(IMAP, "_close"),
            [
                conn,
                Param(
                    name="expunge",
                    type=ParamType.BOOL,
                    default=False,
                    help="Expunge messages marked \\Deleted first; false = LOGOUT only.",
                ),
            ],
            SESSION_ERRORS,
            description="Logs out (LOGOUT: nothing is expunged unless expunge is true).",
        ),
        _spec(
            "IMAP Select Mail Folder",
            lazy_run(IMAP, "_select"),
            [
                conn,
                Param(name="folder", required=True, help="Folder to select (plain Unicode)."),
                Param(
                    name="read_only",
                    type=ParamType.BOOL,
                    default=False,
                    help="EXAMINE instead of SELECT.",
                ),
                Param(
                    name="create_if_missing",
                    type=ParamType.BOOL,
                    default=False,
                    help="Create the folder when it does not exist.",
                ),
                Param(
                    name="save_info_to",
                    sets_variable=True,
                    help="Variable for JSON {folder,total,recent,uidnext,uidvalidity,...}.",
                ),
            ],
            (*SESSION_ERRORS, E_FOLDER),
        ),
        _spec(
            "IMAP Mail Loop",
            lazy_run(IMAP, "_mail_loop"),
            [
                conn,
                Param(
                    name="folder",
                    default="",
                    help="Folder to loop over (selected for the body); empty = selected.",
                ),
                Param(
                    name="messages",
                    type=ParamType.CHOICE,
                    choices=MESSAGES_CHOICES,
                    default="all",
                    help="Which messages by flag.",
                ),
                *conditions_params(),
                Param(
                    name="raw_search",
                    help="Extra IMAP SEARCH criteria as written (e.g. 'HEADER X-Spam yes').",
                ),
                Param(
                    name="order",
                    type=ParamType.CHOICE,
                    choices=("oldest", "newest"),
                    default="oldest",
                    help="oldest first or newest first (by UID).",
                ),
                Param(
                    name="max_messages",
                    type=ParamType.INT,
                    default=0,
                    help="Stop after this many messages; 0 = no limit.",
                ),
                Param(
                    name="mark_seen",
                    type=ParamType.BOOL,
                    default=False,
                    help="Set \\Seen on each message processed (false: peek).",
                ),
                Param(
                    name="include_body",
                    type=ParamType.BOOL,
                    default=False,
                    help="Fetch bodies: body_text/body_html and attachment details.",
                ),
                Param(
                    name="save_to",
                    default="Msg",
                    sets_variable=True,
                    help="Variable that receives each message's info (JSON).",
                ),
                Param(
                    name="save_uids_to",
                    sets_variable=True,
                    help="Variable for the list of UIDs the loop went through (set when it "
                    "ends): give it to Move Message, Set Message Flags or Delete Marked "
                    "Messages to act on all of them in one command.",
                ),
                Param(
                    name="uids_only",
                    type=ParamType.BOOL,
                    default=False,
                    help="Only put the matching UIDs into save_uids_to: the body does not run "
                    "and nothing is fetched unless a condition needs it (the bulk form).",
                ),
            ],
            (*SESSION_ERRORS, E_FOLDER),
            loop=True,
            description="Runs the body once per matching message over a snapshot of UIDs.",
        ),
        _spec(
            "IMAP Download Message",
            lazy_run(IMAP, "_download"),
            [
                conn,
                _uid_param(),
                *_download_params(),
                Param(
                    name="mark_seen",
                    type=ParamType.BOOL,
                    default=False,
                    help="Set \\Seen on the message after saving it.",
                ),
            ],
            (*SESSION_ERRORS, E_NOT_FOUND, E_FILE),
        ),
        _spec(
            "IMAP Get Message Flags",
            lazy_run(IMAP, "_get_flags"),
            [
                conn,
                _uid_param(),
                Param(
                    name="save_to",
                    default="Flags",
                    sets_variable=True,
                    help="Variable for the flags (space-separated).",
                ),
                Param(
                    name="as_json",
                    type=ParamType.BOOL,
                    default=False,
                    help="Save a JSON list instead of space-separated text.",
                ),
            ],
            (*SESSION_ERRORS, E_NOT_FOUND),
        ),
        _spec(
            "IMAP Set Message Flags",
            lazy_run(IMAP, "_set_flags"),
            [
                conn,
                _uid_param(ranges=True),
                Param(
                    name="operation",
                    type=ParamType.CHOICE,
                    choices=("add", "remove", "replace"),
                    default="add",
                    help="add, remove, or replace all flags.",
                ),
                Param(
                    name="flags",
                    default="",
                    help="Space-separated: \\Seen \\Answered \\Flagged \\Deleted \\Draft and "
                    "keywords (e.g. $Label1).",
                ),
            ],
            (*SESSION_ERRORS, E_NOT_FOUND),
        ),
        _spec(
            "IMAP Delete Marked Messages",
            lazy_run(IMAP, "_delete_marked"),
            [
                conn,
                Param(
                    name="uids",
                    type=ParamType.LIST,
                    help="Only these UIDs (list or range; UID EXPUNGE, needs UIDPLUS); an "
                    "empty list expunges none; not given = every message marked \\Deleted.",
                ),
                Param(
                    name="save_count_to",
                    sets_variable=True,
                    help="Variable for the number of messages expunged.",
                ),
            ],
            SESSION_ERRORS,
        ),
        _spec(
            "IMAP Move Message",
            lazy_run(IMAP, "_move"),
            [
                conn,
                _uid_param(ranges=True),
                Param(name="destination", required=True, help="Folder to move to."),
                Param(
                    name="create_if_missing",
                    type=ParamType.BOOL,
                    default=False,
                    help="Create the destination when it does not exist.",
                ),
                Param(
                    name="save_new_uid_to",
                    sets_variable=True,
                    help="Variable for the new UID (one message) or JSON {old: new}.",
                ),
            ],
            (*SESSION_ERRORS, E_FOLDER, E_NOT_FOUND),
        ),
        _spec(
            "IMAP Folder Info",
            lazy_run(IMAP, "_folder_info"),
            [
                conn,
                Param(name="folder", default="", help="Folder; empty = the selected one."),
                Param(
                    name="save_to",
                    default="FolderInfo",
                    sets_variable=True,
                    help="Variable for JSON {folder,total,unseen,recent,uidnext,uidvalidity}.",
                ),
            ],
            (*SESSION_ERRORS, E_FOLDER),
        ),
    ]
