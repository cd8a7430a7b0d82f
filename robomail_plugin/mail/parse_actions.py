"""Parse Email: its declaration.

Imported at start-up, so it imports no mail code: ``run`` imports ``parse`` (which does the work)
the first time the action runs.
"""

from __future__ import annotations

from typing import Any

from robomail_plugin.lazy import lazy_run
from robomail_plugin.mail.params import IF_EXISTS
from robomail_plugin.schema import ActionSpec, ErrorCode, Param, ParamType


def action_specs(services: Any = None) -> list[ActionSpec]:
    return [
        ActionSpec(
            id="robomail.parse_email",
            title="Parse Email",
            category="Email",
            run=lazy_run("robomail_plugin.mail.parse", "run_parse_email"),
            description=(
                "Reads a message (.eml file or text) and writes its Message info plus all headers "
                "to a variable; decodes RFC 2047 headers, transfer encodings, charsets and "
                "RFC 2231 file names; derives text from HTML when there is no text part; saves "
                "attachments under sanitised names that never leave the chosen folder."),
            params=tuple([
                Param(name="source", type=ParamType.CHOICE, choices=("file", "text"),
                      default="file", help="Where the message comes from: a file or text."),
                Param(name="file", type=ParamType.PATH, default=None,
                      help="Path of the .eml file (source: file)."),
                Param(name="text", default=None,
                      help="The whole message as text, e.g. {MessageText} (source: text)."),
                Param(name="save_to", default="Msg", sets_variable=True,
                      help="Variable for the Message info JSON plus 'headers' (a list of "
                           "[name, value] pairs in message order)."),
                Param(name="attachments_folder", type=ParamType.PATH, default=None,
                      help="Folder to save the attachments in (created if missing)."),
                Param(name="if_exists", type=ParamType.CHOICE,
                      choices=IF_EXISTS, default="unique",
                      help="When an attachment's file exists: overwrite, unique (name (1).ext) "
                           "or error."),
                Param(name="save_text_to", default=None, sets_variable=True,
                      help="Variable for the plain-text body (derived from HTML if needed)."),
                Param(name="save_html_to", default=None, sets_variable=True,
                      help="Variable for the HTML body (empty when there is none)."),
            ]),
            errors=tuple([
                ErrorCode(code="file_error", meaning="The file is missing or unreadable, or an "
                          "attachment could not be written (or exists with if_exists: error)."),
                ErrorCode(code="parse_error", meaning="The message is empty or unparsable."),
                ErrorCode(code="invalid_parameter", meaning="No file or text was given."),
            ]),
        )
    ]
