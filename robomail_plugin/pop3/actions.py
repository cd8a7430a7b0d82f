"""The POP3 actions: their declarations.

Imported at start-up, so it imports no mail code: each action's ``run`` imports ``pop3`` (which
does the work) the first time one of them runs.
"""

from __future__ import annotations

from typing import Any

from robomail_plugin.lazy import lazy_run
from robomail_plugin.schema import ActionSpec, ErrorCode, Param, ParamType
from robomail_plugin.shared_params import IF_EXISTS, connection_params

POP3 = "robomail_plugin.pop3.commands"
KIND = "pop3"
DEFAULT_CONNECTION = "POP3"


def _connection_param() -> Param:
    return Param(name="connection", default=DEFAULT_CONNECTION,
                 help="Name of the POP3 connection (as given to POP3 Open).")


def _message_params() -> list[Param]:
    return [
        Param(name="number", type=ParamType.INT, default=None,
              help="Message number in this POP3 session (e.g. {json:Msg.number})."),
        Param(name="uid", default=None,
              help="The message's UIDL (e.g. {json:Msg.uid}); use instead of number."),
    ]


_COMMON_ERRORS = [
    ErrorCode(code="connection_not_open", meaning="No POP3 connection of that name is open."),
    ErrorCode(code="wrong_connection_kind", meaning="The connection is not a POP3 one."),
    ErrorCode(code="server_error", meaning="The server refused a command (reply in the log)."),
    ErrorCode(code="connect_failed", meaning="The connection was lost."),
]
_OPEN_ERRORS = [
    ErrorCode(code="connect_failed", meaning="Cannot reach the server, TLS failed, STLS "
              "was required and not offered, or the server closed the connection."),
    ErrorCode(code="login_failed", meaning="User name/password or OAuth token rejected."),
    ErrorCode(code="login_temporary", meaning="The server could not log in now: the mailbox is "
              "in use by another session ([IN-USE]), too soon after the last login "
              "([LOGIN-DELAY]), or a temporary fault; try again later."),
    ErrorCode(code="server_error", meaning="The server refused the login for a fault of its own "
              "([SYS/PERM]), not the credentials."),
    ErrorCode(code="invalid_parameter", meaning="A connection parameter is missing or wrong."),
    ErrorCode(code="connection_in_use", meaning="A connection of that name is already open."),
    ErrorCode(code="record_not_found", meaning="No OAuth record has that Record Name."),
    ErrorCode(code="token_refused", meaning="The token endpoint refused (run Get Refresh Token)."),
    ErrorCode(code="token_temporary", meaning="The token endpoint is unreachable for now."),
]
_MESSAGE_ERRORS = [
    ErrorCode(code="message_not_found", meaning="No message has that number or UIDL."),
    ErrorCode(code="invalid_parameter", meaning="Neither or both of number and uid given."),
]


def action_specs(services: Any) -> list[ActionSpec]:
    return [
        ActionSpec(
            id="robomail.pop3_open", title="POP3 Open", category="Email",
            run=lazy_run(POP3, "run_open", services),
            description="Connects and logs in to a POP3 server and registers the session under "
                        "a connection name for the other POP3 actions.",
            params=tuple([*connection_params(KIND), _connection_param(),
                    Param(name="save_count_to", default=None, sets_variable=True,
                          help="Variable for the number of messages in the mailbox.")]),
            errors=tuple(_OPEN_ERRORS),
        ),
        ActionSpec(
            id="robomail.pop3_close", title="POP3 Close", category="Email",
            run=lazy_run(POP3, "run_close"),
            description="Ends the POP3 session: commit (QUIT: deletions take effect) or "
                        "discard (RSET then QUIT: nothing is deleted).",
            params=tuple([_connection_param(),
                    Param(name="on_close", type=ParamType.CHOICE, choices=("commit", "discard"),
                          default="commit",
                          help="commit = delete what POP3 Delete Email marked; discard = keep "
                               "everything.")]),
            errors=tuple(_COMMON_ERRORS),
        ),
        ActionSpec(
            id="robomail.pop3_messages_count", title="POP3 Messages Count", category="Email",
            run=lazy_run(POP3, "run_count"),
            description="Counts the messages in the mailbox and their total size (STAT).",
            params=tuple([_connection_param(),
                    Param(name="save_count_to", default="Count", sets_variable=True,
                          help="Variable for the number of messages."),
                    Param(name="save_size_to", default=None, sets_variable=True,
                          help="Variable for the total size in bytes.")]),
            errors=tuple(_COMMON_ERRORS),
        ),
        ActionSpec(
            id="robomail.pop3_mail_loop", title="POP3 Mail Loop", category="Email",
            run=lazy_run(POP3, "run_loop"), loop=True,
            description="Runs the loop body once per message (a snapshot taken when the loop "
                        "starts), writing its Message info to a variable.",
            params=tuple([
                _connection_param(),
                Param(name="order", type=ParamType.CHOICE, choices=("oldest", "newest"),
                      default="oldest", help="oldest first or newest first."),
                Param(name="retrieve", type=ParamType.CHOICE, choices=("headers", "whole"),
                      default="headers",
                      help="headers = only the headers (TOP n 0; fast, no body or attachment "
                           "list); whole = the whole message. Conditions on body, text or "
                           "has_attachment fetch whole messages anyway."),
                Param(name="max_messages", type=ParamType.INT, default=0,
                      help="Stop after this many matching messages; 0 = all."),
                Param(name="conditions", type=ParamType.JSON, default=None,
                      help="List of {field, op, value}; see Conditions."),
                Param(name="match", type=ParamType.CHOICE, choices=("all", "any"),
                      default="all", help="all = every condition must hold; any = one is enough."),
                Param(name="save_to", default="Msg", sets_variable=True,
                      help="Variable for each message's Message info JSON."),
                Param(name="skip_seen", type=ParamType.BOOL, default=False,
                      help="Skip messages this task already processed in earlier runs "
                           "(remembered by UIDL, per mailbox)."),
            ]),
            errors=tuple([*_COMMON_ERRORS, ErrorCode(code="invalid_parameter",
                                               meaning="A condition or max_messages is wrong.")]),
        ),
        ActionSpec(
            id="robomail.pop3_download_email", title="POP3 Download Email", category="Email",
            run=lazy_run(POP3, "run_download"),
            description="Saves one message as a .eml file, optionally extracting its "
                        "attachments.",
            params=tuple([
                _connection_param(), *_message_params(),
                Param(name="save_to_file", type=ParamType.PATH, default=None,
                      help="Full path of the .eml file to write."),
                Param(name="folder", type=ParamType.PATH, default=None,
                      help="Folder to save into (created if missing), with file_name."),
                Param(name="file_name", default="{uid}.eml",
                      help="File name in folder; {uid}, {number}, {subject}, {from}, "
                           "{from_address}, {date}, {message_id} are filled in."),
                Param(name="if_exists", type=ParamType.CHOICE, choices=IF_EXISTS,
                      default="unique",
                      help="When the file exists: overwrite, unique (name (1).eml) or error."),
                Param(name="attachments_folder", type=ParamType.PATH, default=None,
                      help="Also save the attachments into this folder (safe names)."),
                Param(name="save_path_to", default=None, sets_variable=True,
                      help="Variable for the path of the written .eml file."),
            ]),
            errors=tuple([*_COMMON_ERRORS, *_MESSAGE_ERRORS,
                    ErrorCode(code="file_error", meaning="The file exists (if_exists: error) or "
                              "cannot be written.")]),
        ),
        ActionSpec(
            id="robomail.pop3_delete_email", title="POP3 Delete Email", category="Email",
            run=lazy_run(POP3, "run_delete"),
            description="Marks one message for deletion (DELE); it is removed when the session "
                        "closes with commit, kept with discard.",
            params=tuple([_connection_param(), *_message_params()]),
            errors=tuple([*_COMMON_ERRORS, *_MESSAGE_ERRORS]),
        ),
    ]
