"""SMTP Send Email: its declaration.

Imported at start-up, so it imports no mail code: ``run`` imports ``smtp`` (which does the work)
the first time the action runs.
"""

from __future__ import annotations

from typing import Any

from robomail_plugin.lazy import lazy_run
from robomail_plugin.schema import ActionSpec, ErrorCode, Param, ParamType
from robomail_plugin.shared_params import connection_params

KIND = "smtp"


def action_specs(services: Any) -> list[ActionSpec]:
    return [ActionSpec(
        id="robomail.smtp_send_email", title="SMTP Send Email", category="Email",
        run=lazy_run("robomail_plugin.smtp.commands", "run_send", services),
        description="Builds and sends one message over SMTP (password, OAuth or no login; "
                    "STARTTLS or implicit TLS). Everything is checked before connecting.",
        params=tuple([
            *connection_params(KIND),
            Param(name="from", default=None,
                  help="Sender, 'Name <address>' or an address; empty = the login's address."),
            Param(name="to", type=ParamType.JSON, default=None,
                  help="Recipients, separated by ',' or ';' (or a list)."),
            Param(name="cc", type=ParamType.JSON, default=None, help="Copy recipients."),
            Param(name="bcc", type=ParamType.JSON, default=None,
                  help="Blind copy recipients: they get the message but appear in no header."),
            Param(name="reply_to", type=ParamType.JSON, default=None,
                  help="Reply-To address(es)."),
            Param(name="subject", default="", help="Subject (any language)."),
            Param(name="body", default="", help="The message text (or HTML)."),
            Param(name="body_format", type=ParamType.CHOICE,
                  choices=("text", "html", "html+text"), default="text",
                  help="text; html; or html+text = HTML with a plain-text alternative derived "
                       "from it."),
            Param(name="body_file", type=ParamType.PATH, default=None,
                  help="Read the body from this file (UTF-8; used instead of body)."),
            Param(name="charset", default="utf-8", help="Charset of the text parts."),
            Param(name="attachments", type=ParamType.JSON, default=None,
                  help="Files to attach: paths separated by ';' (or a list); wildcards such as "
                       "C:/out/*.pdf. A missing file stops the action before anything is sent."),
            Param(name="priority", type=ParamType.CHOICE, choices=("high", "normal", "low"),
                  default="normal", help="Sets X-Priority and Importance."),
            Param(name="read_receipt", type=ParamType.BOOL, default=False,
                  help="Ask for a read receipt (Disposition-Notification-To: the sender)."),
            Param(name="headers", type=ParamType.JSON, default=None,
                  help="Extra headers as a mapping, e.g. {X-Ticket: '42'}."),
            Param(name="save_copy_to", type=ParamType.PATH, default=None,
                  help="Also save the sent message as this .eml file (without Bcc)."),
            Param(name="save_message_id_to", default=None, sets_variable=True,
                  help="Variable for the Message-ID of the sent message."),
            Param(name="fail_on_any_refused", type=ParamType.BOOL, default=False,
                  help="Fail when the server refuses any recipient (default: warn and go on)."),
        ]),
        errors=tuple([
            ErrorCode(code="invalid_parameter", meaning="An address, header, charset or other "
                      "parameter is wrong (e.g. a line break in a header value)."),
            ErrorCode(code="file_error", meaning="An attachment or body_file is missing, or the "
                      "copy could not be saved."),
            ErrorCode(code="connect_failed", meaning="Cannot reach the server or TLS failed."),
            ErrorCode(code="login_failed", meaning="Login or OAuth token rejected."),
            ErrorCode(code="login_temporary", meaning="The server could not check the login "
                      "now; try again later."),
            ErrorCode(code="send_failed", meaning="The server refused the sender, the message "
                      "(e.g. as too big: 552) or every recipient (or any, with "
                      "fail_on_any_refused)."),
            ErrorCode(code="record_not_found", meaning="No OAuth record has that Record Name."),
            ErrorCode(code="token_refused", meaning="The token endpoint refused."),
            ErrorCode(code="token_temporary", meaning="The token endpoint is unreachable."),
        ]),
    )]
