"""Writing mail to disk safely: .eml files and extracted attachments.

Shared by Parse Email, POP3 Download Email and IMAP Download Message. File names that come from a
message are hostile input: they are reduced to one plain name (no folders, no ``..``, no drive or
device names, no control characters), and every path is checked to stay inside its folder after
resolving links. ``if_exists`` is ``overwrite``, ``unique`` (``name (1).ext``) or ``error``.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robomail_plugin.errors import FileError, InvalidParameter
from robomail_plugin.message.info import Attachment, message_info
from robomail_plugin.shared_params import IfExists

DEFAULT_NAME = "attachment"
MAX_NAME_BYTES = 150
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
    | {f"com{c}" for c in "¹²³"} | {f"lpt{c}" for c in "¹²³"}
)
_RESERVED_RE = re.compile(r'[<>:"|?*\x00-\x1f\x7f]')
_PLACEHOLDER_RE = re.compile(r"\{(uid|number|subject|from|from_address|date|message_id)\}")
_HEADER_PLACEHOLDERS = frozenset({"subject", "from", "from_address", "date", "message_id"})
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")


def safe_filename(name: str | None, default: str = DEFAULT_NAME) -> str:
    """One plain file name from an untrusted one; never empty, never a path, never a device."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")  # controls, bidi, etc.
    text = re.split(r"[/\\]", text)[-1]  # the last component of any path, either separator
    text = _RESERVED_RE.sub("_", text)
    text = text.strip().strip(".").strip()  # no "..", no hidden files, no Windows trailing dots
    if not text:
        text = default
    stem, dot, ext = text.partition(".")
    if stem.strip().lower() in _WINDOWS_DEVICES:
        text = "_" + text
    return _cap(text)


def _cap(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """Shortens a name to ``limit`` UTF-8 bytes, keeping a short extension."""
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, ext = os.path.splitext(name)
    if len(ext.encode("utf-8")) > 20:
        stem, ext = name, ""
    room = limit - len(ext.encode("utf-8"))
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .") or DEFAULT_NAME
    return stem + ext


def ensure_folder(folder: str | os.PathLike[str]) -> Path:
    """The folder, created if missing, resolved; an error if it is a file or cannot be made."""
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileError(f"cannot create the folder {str(path)!r}: {exc.strerror}") from None
    if not path.is_dir():
        raise FileError(f"{str(path)!r} is not a folder")
    return path.resolve()


def _inside(folder: Path, target: Path) -> bool:
    """True when ``target`` is a plain name directly in ``folder`` (the target itself may be a
    planted link: writing never follows it)."""
    if target.name in ("", ".", "..") or "/" in target.name or "\\" in target.name:
        return False
    try:
        return target.parent.resolve() == folder
    except OSError:
        return False


def _unique(folder: Path, name: str, taken: set[str]) -> Path:
    stem, ext = os.path.splitext(name)
    if not stem:  # ".eml" style names: keep them whole
        stem, ext = name, ""
    n = 0
    while True:
        suffix = f" ({n}){ext}" if n else ""
        room = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
        candidate = name if n == 0 else (
            stem.encode("utf-8")[:room].decode("utf-8", "ignore") + suffix)
        path = folder / candidate
        if candidate.lower() not in taken and not os.path.lexists(path):
            return path
        n += 1


def write_new_file(folder: Path, name: str, data: bytes, if_exists: str,
                   taken: set[str] | None = None) -> Path:
    """Writes ``data`` as ``folder/name`` (``name`` already safe) and returns the path.

    ``taken`` holds lower-cased names written earlier in the same batch: those are made unique
    whatever ``if_exists`` says, so two attachments with one name both survive.
    """
    folder = folder.resolve()
    taken = taken if taken is not None else set()
    path = folder / name
    clash_in_batch = name.lower() in taken
    if clash_in_batch or (os.path.lexists(path) and if_exists == IfExists.UNIQUE):
        path = _unique(folder, name, taken)
    elif os.path.lexists(path) and if_exists == IfExists.ERROR:
        raise FileError(f"{str(path)!r} exists already; choose if_exists: overwrite or unique")
    if not _inside(folder, path):
        raise FileError(f"refusing to write {name!r}: it would land outside {str(folder)!r}")
    _write(path, data, replace=if_exists == IfExists.OVERWRITE and not clash_in_batch)
    taken.add(path.name.lower())
    return path


def _write(path: Path, data: bytes, *, replace: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    if replace:
        if path.is_symlink():  # never write through a link planted in the folder
            path.unlink()
        flags |= os.O_TRUNC
    else:
        flags |= os.O_EXCL
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise FileError(f"{str(path)!r} exists already; choose if_exists: overwrite or unique"
                        ) from None
    except OSError as exc:
        raise FileError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def write_file(
    target: str | os.PathLike[str], data: bytes, if_exists: str = IfExists.OVERWRITE
) -> Path:
    """Writes a file at a path the user chose (``save_to_file``): its folder is created."""
    path = Path(target).expanduser()
    if path.name in ("", ".", ".."):
        raise FileError(f"{str(target)!r} is not a file name")
    folder = ensure_folder(path.parent)
    if path.is_dir():
        raise FileError(f"{str(path)!r} is a folder; give a file name")
    return write_new_file(folder, path.name, data, IfExists(if_exists))


def format_file_name(template: str, info: Mapping[str, Any]) -> str:
    """Fills ``{uid}``, ``{number}``, ``{subject}``, ``{from}``, ``{from_address}``, ``{date}``,
    ``{message_id}`` from a Message info dict, then makes the result a safe name."""
    def fill(m: re.Match[str]) -> str:
        value = info.get(m.group(1))
        return "" if value is None else str(value)
    name = _PLACEHOLDER_RE.sub(fill, template or "{uid}.eml").strip()
    if name.startswith("."):  # "{uid}.eml" with no uid
        name = "message" + name
    return safe_filename(name, default="message.eml")


def save_message(data: bytes, info: Mapping[str, Any], *, save_to_file: str | None = None,
                 folder: str | None = None, file_name: str = "{uid}.eml",
                 if_exists: str = IfExists.UNIQUE) -> Path:
    """Writes a whole message as .eml: to ``save_to_file``, or into ``folder`` as ``file_name``."""
    mode = IfExists(if_exists)
    if save_to_file:
        return write_file(save_to_file, data, mode)
    if not folder:
        raise InvalidParameter("say where to save the message: save_to_file, or folder "
                               "(with file_name)")
    return write_new_file(ensure_folder(folder), format_file_name(file_name, info), data, mode)


def save_raw_message(data: bytes, *, uid: Any, number: int | None = None,
                     save_to_file: str | None = None, folder: str | None = None,
                     file_name: str = "{uid}.eml", if_exists: str = IfExists.UNIQUE,
                     parsed: Any = None) -> Path:
    """``save_message`` for downloads: the bytes are written as they came, and the message is
    parsed only when the file name names a header field, and then only its header (a full MIME
    parse of a message nobody reads was most of a download's time). ``parsed`` is the message
    already parsed, when the caller has it."""
    info: Mapping[str, Any] = {"uid": uid, "number": number}
    if not save_to_file and _HEADER_PLACEHOLDERS.intersection(
            _PLACEHOLDER_RE.findall(file_name or "")):
        end = _HEADER_END_RE.search(data)
        head = parsed if parsed is not None else (data[:end.end()] if end else data)
        info = message_info(head, uid=uid, number=number, headers_only=True)
    return save_message(data, info, save_to_file=save_to_file, folder=folder,
                        file_name=file_name, if_exists=if_exists)


def extract_attachments(attachments: Iterable[Attachment], folder: str | os.PathLike[str],
                        if_exists: str = IfExists.UNIQUE) -> list[Path]:
    """Saves each attachment into ``folder`` under a sanitised, unique name; returns the paths."""
    mode = IfExists(if_exists)
    target = ensure_folder(folder)
    taken: set[str] = set()
    return [write_new_file(target, safe_filename(a.name), a.payload(), mode, taken)
            for a in attachments]
