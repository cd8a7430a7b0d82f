"""Parse Email: a message from a file or from text into Message info, body texts and files.

The parsing itself lives in ``message.info`` (shared with the mail loops) and the writing in
``files`` (shared with the download actions); this module is the action around them.
``parse.actions`` declares the action (imported at start-up); this module is imported on its
first run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from robomail_plugin.errors import FileError, InvalidParameter, ParseError
from robomail_plugin.message import files
from robomail_plugin.message.info import header_list, message_info, parse_message, walk_parts
from robomail_plugin.parse.actions import ParseEmail
from robomail_plugin.schema import ActionContext

MAX_FILE_BYTES = 512 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
# a header field (RFC 5322 field name, spaces before the colon allowed), an mbox "From " line,
# a continuation line, or nothing (a message without headers)
_FIRST_LINE_RE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:|From |[ \t]|\r?$")
_MAGIC = {
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "an Outlook .msg file (or another Microsoft Office "
                                         "file); save the message as .eml instead",
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
    b"%PDF-": "a PDF document", b"PK\x03\x04": "a ZIP archive (or an Office document)",
}


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


def check_message(data: bytes) -> None:
    """Refuses data that is not an RFC 5322 message, which would otherwise "parse" with its
    bytes as the body. A message's first line is a header field (``Name: value``), an mbox
    ``From `` line, or empty (no headers); its headers hold no NUL byte. Odd but real headers
    (``Subject:x``, ``Subject : x``, unusual names) pass; a binary body or attachment is no
    reason to refuse."""
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise ParseError(f"this is not an RFC 5322 message (.eml): it is {what}")
    head = data[:4096]
    end = re.search(rb"\r?\n\r?\n", head)
    if b"\x00" in (head[:end.start()] if end else head):
        raise ParseError("this is not an RFC 5322 message (.eml): its headers hold binary data "
                         "(a NUL byte)")
    first = data.split(b"\n", 1)[0]
    if not _FIRST_LINE_RE.match(first):
        shown = first[:60].decode("utf-8", "replace")
        raise ParseError("this is not an RFC 5322 message (.eml): its first line is not a header "
                         f"field such as 'From: ...' ({shown!r})")


def parse_email(data: bytes, *, attachments_folder: str | None = None,
                if_exists: str = "unique") -> dict[str, Any]:
    """Message info plus ``headers``; attachments saved when a folder is given (each attachment
    entry then also has ``path``)."""
    if not data.strip():
        raise ParseError("the message is empty")
    size = len(data)
    data = data.removeprefix(_BOM)  # saved by a Windows editor
    check_message(data)
    msg = parse_message(data)
    info = message_info(msg, size=size)
    info["headers"] = header_list(msg)
    if attachments_folder:
        _text, _html, found = walk_parts(msg)
        paths = files.extract_attachments(found, attachments_folder, if_exists)
        for entry, path in zip(info["attachments"], paths, strict=True):
            entry["path"] = str(path)
    return info


def run_parse_email(ctx: ActionContext, params: ParseEmail) -> None:
    data = read_source(params.source, params.file, params.text)
    info = parse_email(
        data, attachments_folder=params.attachments_folder or None, if_exists=params.if_exists
    )
    if params.save_to:
        ctx.set_variable(params.save_to, info)
    if params.save_text_to:
        ctx.set_variable(params.save_text_to, info["body_text"])
    if params.save_html_to:
        ctx.set_variable(params.save_html_to, info["body_html"])
    saved = sum(1 for a in info["attachments"] if "path" in a)
    ctx.log(f"Parsed message {info['message_id'] or '(no Message-ID)'}: "
            f"{len(info['attachments'])} attachment(s)"
            + (f", {saved} saved to {params.attachments_folder}" if saved else ""))
