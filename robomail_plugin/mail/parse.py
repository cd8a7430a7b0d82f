"""Parse Email: a message from a file or from text into Message info, body texts and files.

The parsing itself lives in ``message_info`` (shared with the mail loops) and the writing in
``files`` (shared with the download actions); this module is the action around them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robomail_plugin.errors import FileError, InvalidParameter, ParseError
from robomail_plugin.mail import files
from robomail_plugin.mail.message_info import header_list, message_info, parse_message, walk_parts
from robomail_plugin.schema import ActionContext, ActionSpec, ErrorCode, Param, ParamType

MAX_FILE_BYTES = 512 * 1024 * 1024


def read_source(source: str, file: Any, text: Any) -> bytes:
    """The message bytes from the chosen source; clear errors for a missing file or text."""
    if source == "file":
        if not file:
            raise InvalidParameter("source is 'file' but no file was given: set file to the "
                                   ".eml path (or use source: text)")
        path = Path(str(file)).expanduser()
        if not path.is_file():
            raise FileError(f"the message file {str(path)!r} does not exist (or is not a file)")
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise FileError(f"{str(path)!r} is larger than {MAX_FILE_BYTES} bytes")
            return path.read_bytes()
        except OSError as exc:
            raise FileError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if text is None or text == "":
        raise InvalidParameter("source is 'text' but text is empty: put the message text (or a "
                               "variable holding it) in text")
    return str(text).encode("utf-8", "surrogateescape")


def parse_email(data: bytes, *, attachments_folder: str | None = None,
                if_exists: str = "unique") -> dict[str, Any]:
    """Message info plus ``headers``; attachments saved when a folder is given (each attachment
    entry then also has ``path``)."""
    if not data.strip():
        raise ParseError("the message is empty")
    msg = parse_message(data)
    info = message_info(msg, size=len(data))
    info["headers"] = header_list(msg)
    if attachments_folder:
        _text, _html, found = walk_parts(msg)
        paths = files.extract_attachments(found, attachments_folder, if_exists)
        for entry, path in zip(info["attachments"], paths, strict=True):
            entry["path"] = str(path)
    return info


def run_parse_email(ctx: ActionContext, params: Mapping[str, Any]) -> None:
    data = read_source(params["source"], params.get("file"), params.get("text"))
    info = parse_email(data, attachments_folder=params.get("attachments_folder") or None,
                       if_exists=params.get("if_exists") or "unique")
    if params.get("save_to"):
        ctx.set_variable(params["save_to"], info)
    if params.get("save_text_to"):
        ctx.set_variable(params["save_text_to"], info["body_text"])
    if params.get("save_html_to"):
        ctx.set_variable(params["save_html_to"], info["body_html"])
    saved = sum(1 for a in info["attachments"] if "path" in a)
    ctx.log(f"Parsed message {info['message_id'] or '(no Message-ID)'}: "
            f"{len(info['attachments'])} attachment(s)"
            + (f", {saved} saved to {params.get('attachments_folder')}" if saved else ""))



def _seq(items: list[Any]) -> tuple[Any, ...]:
    """A declaration list as the tuple ActionSpec stores (keeps mypy's attrs plugin happy)."""
    return tuple(items)

def action_specs(services: Any = None) -> list[ActionSpec]:
    return [
        ActionSpec(
            id="robomail.parse_email",
            title="Parse Email",
            category="Email",
            run=run_parse_email,
            description=(
                "Reads a message (.eml file or text) and writes its Message info plus all headers "
                "to a variable; decodes RFC 2047 headers, transfer encodings, charsets and "
                "RFC 2231 file names; derives text from HTML when there is no text part; saves "
                "attachments under sanitised names that never leave the chosen folder."),
            params=_seq([
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
                      choices=files.IF_EXISTS, default="unique",
                      help="When an attachment's file exists: overwrite, unique (name (1).ext) "
                           "or error."),
                Param(name="save_text_to", default=None, sets_variable=True,
                      help="Variable for the plain-text body (derived from HTML if needed)."),
                Param(name="save_html_to", default=None, sets_variable=True,
                      help="Variable for the HTML body (empty when there is none)."),
            ]),
            errors=_seq([
                ErrorCode(code="file_error", meaning="The file is missing or unreadable, or an "
                          "attachment could not be written (or exists with if_exists: error)."),
                ErrorCode(code="parse_error", meaning="The message is empty or unparsable."),
                ErrorCode(code="invalid_parameter", meaning="No file or text was given."),
            ]),
        )
    ]
