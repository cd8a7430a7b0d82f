"""Parse Email: its parameters and its run.

Imported at start-up, so it imports no mail code: ``commands`` (which does the work) is imported
the first time the action runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from robomail_plugin import errors
from robomail_plugin.declare import Action, Parameters, choice, path, text, variable
from robomail_plugin.lazy import deferred_module
from robomail_plugin.shared_params import IfExists, Source

if TYPE_CHECKING:
    from robomail_plugin.parse import commands
else:
    commands = deferred_module("robomail_plugin.parse.commands")


class ParseEmail(Parameters):
    source: Source = choice(
        Source, Source.FILE, help="Where the message comes from: a file or text."
    )
    file: str | None = path(help="Path of the .eml file (source: file).")
    text: str | None = text(help="The whole message as text, e.g. {MessageText} (source: text).")
    save_to: str | None = variable(
        "Msg",
        help="Variable for the Message info JSON plus 'headers' (a list of [name, value] pairs "
        "in message order).",
    )
    attachments_folder: str | None = path(
        help="Folder to save the attachments in (created if missing)."
    )
    if_exists: IfExists = choice(
        IfExists,
        IfExists.UNIQUE,
        help="When an attachment's file exists: overwrite, unique (name (1).ext) or error.",
    )
    save_text_to: str | None = variable(
        help="Variable for the plain-text body (derived from HTML if needed)."
    )
    save_html_to: str | None = variable(
        help="Variable for the HTML body (empty when there is none)."
    )


ACTIONS = [
    Action(
        title="Parse Email",
        category="Email",
        params=ParseEmail,
        run=commands.run_parse_email,
        description=(
            "Reads a message (.eml file or text) and writes its Message info plus all headers "
            "to a variable; decodes RFC 2047 headers, transfer encodings, charsets and "
            "RFC 2231 file names; derives text from HTML when there is no text part; saves "
            "attachments under sanitised names that never leave the chosen folder."
        ),
        errors=(
            errors.FileError.because(
                "The file is missing or unreadable, or an attachment could not be written (or "
                "exists with if_exists: error)."
            ),
            errors.ParseError,
            errors.InvalidParameter.because("No file or text was given."),
        ),
    )
]
