"""Check for Email: its declaration.

Imported at start-up, so it imports no mail code: ``run`` imports ``check`` (which does the work)
the first time the action runs.
"""

from __future__ import annotations

from typing import Any

from robomail_plugin.imap.actions import E_FILE, E_FOLDER, E_PARAM, E_SERVER, LOGIN_ERRORS
from robomail_plugin.lazy import lazy_run
from robomail_plugin.schema import ActionSpec, Param, ParamType
from robomail_plugin.shared_params import MESSAGES_CHOICES, conditions_params, connection_params


def _params() -> list[Param]:
    # The IMAP connection params, with the help texts that name both protocols.
    both_protocols = {
        "server": Param(name="server", required=True, help="Server host name or address."),
        "port": Param(
            name="port",
            type=ParamType.INT,
            help="TCP port; empty = the standard one (IMAP 993/143, POP3 995/110).",
        ),
    }
    conn = [both_protocols.get(p.name, p) for p in connection_params("imap")]
    return [
        Param(
            name="protocol",
            type=ParamType.CHOICE,
            choices=("imap", "pop3"),
            default="imap",
            help="imap or pop3.",
        ),
        *conn,
        Param(name="folder", default="INBOX", help="IMAP folder to check."),
        Param(
            name="messages",
            type=ParamType.CHOICE,
            choices=MESSAGES_CHOICES,
            default="unseen",
            help="IMAP: which messages by flag (default unseen).",
        ),
        *conditions_params(),
        Param(
            name="only_new",
            type=ParamType.BOOL,
            default=False,
            help="Report only messages that arrived since this task's previous check "
            "(remembered across runs; on POP3 the only way to get 'new').",
        ),
        Param(
            name="mark_seen",
            type=ParamType.BOOL,
            default=False,
            help="Set \\Seen on the messages found.",
        ),
        Param(
            name="save_count_to",
            sets_variable=True,
            help="Variable for the number of messages found.",
        ),
        Param(
            name="save_to",
            sets_variable=True,
            help="Variable for a JSON list of the messages' info.",
        ),
        Param(
            name="save_uids_to",
            sets_variable=True,
            help="Variable for the list of the UIDs found (IMAP UIDs, POP3 UIDLs): IMAP Move "
            "Message, Set Message Flags and Delete Marked Messages take it whole.",
        ),
        Param(
            name="download_to",
            type=ParamType.PATH,
            help="Folder to save each message found as <uid>.eml.",
        ),
    ]


def action_specs(services: Any) -> list[ActionSpec]:
    """Check for Email, for ``robomail_register_actions``."""
    return [
        ActionSpec(
            id="robomail.check_for_email",
            title="Check for Email",
            category="Email",
            run=lazy_run("robomail_plugin.check.commands", "run_check", services),
            params=tuple(_params()),
            errors=(*LOGIN_ERRORS, E_FOLDER, E_SERVER, E_PARAM, E_FILE),
            description="Opens a connection, finds matching (or new) messages, records them and "
            "closes. Finding none is not an error.",
        )
    ]
