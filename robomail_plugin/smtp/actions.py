"""SMTP Send Email: its parameters and its run.

Imported at start-up, so it imports no mail code: ``commands`` (which does the work) is imported
the first time the action runs.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from robomail_plugin import errors
from robomail_plugin.declare import (
    Action,
    Parameters,
    choice,
    data,
    flag,
    group,
    path,
    text,
    variable,
)
from robomail_plugin.lazy import deferred_module
from robomail_plugin.shared_params import SmtpLogin

if TYPE_CHECKING:
    from robomail_plugin.smtp import commands
else:
    commands = deferred_module("robomail_plugin.smtp.commands")


class BodyFormat(enum.StrEnum):
    TEXT = "text"
    HTML = "html"
    HTML_TEXT = "html+text"


class Priority(enum.StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class SendEmail(Parameters):
    login: SmtpLogin = group(SmtpLogin)
    sender: str | None = text(
        name="from",
        help="Sender, 'Name <address>' or an address; empty = the login's address.",
    )
    to: Any = data(help="Recipients, separated by ',' or ';' (or a list).")
    cc: Any = data(help="Copy recipients.")
    bcc: Any = data(help="Blind copy recipients: they get the message but appear in no header.")
    reply_to: Any = data(help="Reply-To address(es).")
    subject: str = text("", help="Subject (any language).")
    body: str = text("", help="The message text (or HTML).")
    body_format: BodyFormat = choice(
        BodyFormat,
        BodyFormat.TEXT,
        help="text; html; or html+text = HTML with a plain-text alternative derived from it.",
    )
    body_file: str | None = path(help="Read the body from this file (UTF-8; used instead of body).")
    charset: str = text("utf-8", help="Charset of the text parts.", empty_is_default=True)
    attachments: Any = data(
        help="Files to attach: paths separated by ';' (or a list); wildcards such as "
        "C:/out/*.pdf. A missing file stops the action before anything is sent."
    )
    priority: Priority = choice(
        Priority, Priority.NORMAL, help="Sets X-Priority and Importance."
    )
    read_receipt: bool = flag(
        False, help="Ask for a read receipt (Disposition-Notification-To: the sender)."
    )
    headers: Any = data(help="Extra headers as a mapping, e.g. {X-Ticket: '42'}.")
    save_copy_to: str | None = path(
        help="Also save the sent message as this .eml file (without Bcc)."
    )
    save_message_id_to: str | None = variable(
        help="Variable for the Message-ID of the sent message."
    )
    fail_on_any_refused: bool = flag(
        False, help="Fail when the server refuses any recipient (default: warn and go on)."
    )


ACTIONS: list[Action[Any]] = [
    Action(
        title="SMTP Send Email",
        category="Email",
        params=SendEmail,
        run=commands.run_send,
        uses_services=True,
        description="Builds and sends one message over SMTP (password, OAuth or no login; "
        "STARTTLS or implicit TLS). Everything is checked before connecting.",
        errors=(
            errors.InvalidParameter.because(
                "An address, header, charset or other parameter is wrong (e.g. a line break in "
                "a header value)."
            ),
            errors.FileError.because(
                "An attachment or body_file is missing, or the copy could not be saved."
            ),
            errors.ConnectFailed,
            errors.LoginFailed,
            errors.LoginTemporaryFailure,
            errors.SendFailed.because(
                "The server refused the sender, the message (e.g. as too big: 552) or every "
                "recipient (or any, with fail_on_any_refused)."
            ),
            errors.RecordNotFound,
            errors.TokenError,
            errors.TokenTemporaryError,
            errors.StoreError,
        ),
    )
]
