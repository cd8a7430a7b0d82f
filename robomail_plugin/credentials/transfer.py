"""Export and import of OAuth records: a versioned JSON file another installation can import.

Secrets are left out unless asked for; with a passphrase they are sealed with AES-256-GCM under a
scrypt-derived key, and the visible part of the file is bound to them, so editing either is
detected. Import checks the whole file first and applies it in one transaction: a failed import
changes nothing.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from robomail_plugin.credentials.choices import ON_CONFLICT, PASSPHRASE_ENV
from robomail_plugin.credentials.records import (
    PUBLIC_FIELDS,
    SECRET_FIELDS,
    OAuthRecord,
    record_from_mapping,
)
from robomail_plugin.credentials.store import change_record, record_names
from robomail_plugin.errors import (
    FileError,
    ImportFileInvalid,
    InvalidParameter,
    RecordExists,
    RecordInvalid,
)
from robomail_plugin.private_files import write_private

FORMAT = "robomail-oauth"
VERSION = 1
MAX_FILE_BYTES = 10 * 1024 * 1024
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MIN_N = 2**14
# An export nests 3 levels (document, records, record); anything far deeper is not one, and
# deep enough nesting exhausts the JSON decoder's recursion.
MAX_DEPTH = 32
_NOT_EXPORTED = "give a file written by robomail's export. Nothing was imported."


@attrs.frozen(kw_only=True)
class ParsedExport:
    """A checked export file: its records and whether it carried secrets."""

    records: tuple[OAuthRecord, ...]
    has_secrets: bool


@attrs.frozen(kw_only=True)
class ImportReport:
    added: tuple[str, ...] = ()
    overwritten: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()  # (name in the file, name stored)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text).encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise ImportFileInvalid(f"The export file's {what} is not valid base64.") from None


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _aad(document: dict[str, Any]) -> bytes:
    visible = {k: document[k] for k in ("format", "version", "secrets", "records")}
    return json.dumps(visible, sort_keys=True, separators=(",", ":")).encode("utf-8")


def build_document(
    records: Sequence[OAuthRecord], *, include_secrets: bool, passphrase: str | None
) -> dict[str, Any]:
    """The export document. Secrets leave only sealed by a passphrase, never in plain text."""
    if include_secrets and not passphrase:
        raise InvalidParameter(
            "Secrets are exported only encrypted: give a passphrase (--passphrase, the "
            f"{PASSPHRASE_ENV} variable, or at the prompt), or leave out --include-secrets. "
            "Nothing was written."
        )
    mode = "encrypted" if passphrase else "none"
    rows = [{f: getattr(rec, f) for f in PUBLIC_FIELDS} for rec in records]
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "secrets": mode,
        "records": rows,
    }
    if mode == "encrypted":
        assert passphrase
        secrets = {r.record_name: {f: getattr(r, f) for f in SECRET_FIELDS} for r in records}
        salt, nonce = os.urandom(16), os.urandom(12)
        key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        sealed = AESGCM(key).encrypt(
            nonce, json.dumps(secrets).encode("utf-8"), _aad(document)
        )
        document["encryption"] = {
            "kdf": "scrypt",
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": _b64(salt),
            "cipher": "AES-256-GCM",
            "nonce": _b64(nonce),
            "ciphertext": _b64(sealed),
        }
    return document


def write_export(path: Path, document: dict[str, Any]) -> None:
    """Writes atomically, mode 0600 (the file may hold secrets)."""
    path = Path(path)
    if path.is_dir():
        raise FileError(f"{path} is a folder: give a file name for the export.")
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        write_private(path, text)
    except OSError as exc:
        raise FileError(f"Cannot write the export file {path}: {exc.strerror or exc}.") from None


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "a special file"


def _check_file(path: Path, info: os.stat_result) -> None:
    """Refuses what is not a regular export-sized file before a byte of it is read."""
    if stat.S_ISDIR(info.st_mode):
        raise FileError(f"{path} is a folder: give the export file. Nothing was imported.")
    if not stat.S_ISREG(info.st_mode):
        raise FileError(
            f"{path} is not a regular file (it is {_file_kind(info.st_mode)}): {_NOT_EXPORTED}"
        )
    if info.st_size > MAX_FILE_BYTES:
        _too_large(path)


def _too_large(path: Path) -> None:
    raise ImportFileInvalid(
        f"{path} is larger than {MAX_FILE_BYTES // 2**20} MiB, far more than an export of "
        f"OAuth records: {_NOT_EXPORTED}"
    )


def read_document(path: Path) -> dict[str, Any]:
    """Reads and checks an export file.

    Only a regular file is opened (a device or FIFO could block or never end), and never more
    than MAX_FILE_BYTES of it is read, even if it grows meanwhile.
    """
    path = Path(path)
    try:
        _check_file(path, os.stat(path))
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        with open(os.open(path, flags), "rb") as fh:
            _check_file(path, os.fstat(fh.fileno()))  # replaced since the stat?
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise FileError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if len(raw) > MAX_FILE_BYTES:
        _too_large(path)
    return parse_document_text(raw, str(path))


def _within_depth(value: Any) -> bool:
    """Whether no list or object nests deeper than MAX_DEPTH (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if not isinstance(item, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _loads(raw: bytes | str, source: str, what: str) -> Any:
    """json.loads that reports too deep nesting as an invalid file, not a RecursionError."""
    try:
        value = json.loads(raw)
    except RecursionError:
        value = None
        deep = True
    else:
        deep = not _within_depth(value)
    if deep:
        raise ImportFileInvalid(
            f"{source} is not a robomail OAuth export: its {what} is nested more than "
            f"{MAX_DEPTH} levels deep; {_NOT_EXPORTED}"
        )
    return value


def parse_document_text(raw: bytes | str, source: str = "the file") -> dict[str, Any]:
    try:
        document = _loads(raw, source, "JSON")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImportFileInvalid(
            f"{source} is not a robomail OAuth export: not valid JSON ({exc.__class__.__name__})."
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ImportFileInvalid(
            f"{source} is not a robomail OAuth export (expected \"format\": \"{FORMAT}\")."
        )
    version = document.get("version")
    if version != VERSION:
        raise ImportFileInvalid(
            f"{source} has export version {version!r}; this robomail reads version {VERSION}. "
            "Export again with a matching robomail, or upgrade."
        )
    if document.get("secrets") not in ("none", "encrypted"):
        raise ImportFileInvalid(f"{source}: \"secrets\" must be none or encrypted.")
    if not isinstance(document.get("records"), list):
        raise ImportFileInvalid(f"{source}: \"records\" must be a list.")
    if document["secrets"] == "encrypted":
        _encryption(document, source)  # refused before anyone is asked for the passphrase
    return document


def _encryption(document: dict[str, Any], source: str) -> tuple[dict[str, Any], int, int, int]:
    """The encryption section and its scrypt n, r, p.

    The KDF costs are capped at what export writes: a file's parameters are chosen by whoever
    wrote it, and the largest scrypt allows would take gigabytes and minutes to derive.
    """
    enc = document.get("encryption")
    known = isinstance(enc, dict) and (enc.get("kdf"), enc.get("cipher")) == (
        "scrypt",
        "AES-256-GCM",
    )
    if not known or not isinstance(enc, dict):
        raise ImportFileInvalid(
            f"{source}: the \"encryption\" section is missing or unknown; {_NOT_EXPORTED}"
        )
    n, r, p = (v if type(v) is int else 0 for v in (enc.get(k) for k in ("n", "r", "p")))
    if not (
        SCRYPT_MIN_N <= n <= SCRYPT_N
        and n & (n - 1) == 0
        and 1 <= r <= SCRYPT_R
        and 1 <= p <= SCRYPT_P
    ):
        raise ImportFileInvalid(
            f"{source}: its scrypt parameters are malformed or costlier than robomail's export "
            f"writes (at most n={SCRYPT_N}, r={SCRYPT_R}, p={SCRYPT_P}), so no key is derived "
            f"from them; {_NOT_EXPORTED}"
        )
    return enc, n, r, p


def _open_secrets(document: dict[str, Any], passphrase: str | None) -> dict[str, Any]:
    enc, n, r, p = _encryption(document, "The export file")
    if not passphrase:
        raise ImportFileInvalid(
            "This export's secrets are encrypted: give the passphrase (--passphrase, the "
            "ROBOMAIL_EXPORT_PASSPHRASE variable, or answer the prompt)."
        )
    salt = _unb64(enc.get("salt"), "salt")
    nonce = _unb64(enc.get("nonce"), "nonce")
    sealed = _unb64(enc.get("ciphertext"), "ciphertext")
    try:
        key = _derive(passphrase, salt, n, r, p)
        plain = AESGCM(key).decrypt(nonce, sealed, _aad(document))
    except (InvalidTag, ValueError):
        raise ImportFileInvalid(
            "Wrong passphrase, or the export file was altered: its secrets cannot be opened. "
            "Nothing was imported."
        ) from None
    try:
        secrets = _loads(plain, "The export file", "sealed secrets part")
    except (ValueError, UnicodeDecodeError):
        secrets = None
    if not isinstance(secrets, dict):
        raise ImportFileInvalid("The export file's sealed secrets are malformed.")
    return secrets


def needs_passphrase(document: dict[str, Any]) -> bool:
    return document.get("secrets") == "encrypted"


def parse_export(document: dict[str, Any], passphrase: str | None = None) -> ParsedExport:
    """Checks every record of a parsed document; raises ImportFileInvalid on the first problem."""
    mode = document["secrets"]
    secrets = _open_secrets(document, passphrase) if mode == "encrypted" else {}
    records: list[OAuthRecord] = []
    seen: set[str] = set()
    for i, row in enumerate(document["records"], start=1):
        label = f"record #{i}"
        if isinstance(row, dict) and isinstance(row.get("record_name"), str):
            label += f" ({row['record_name']!r})"
        if not isinstance(row, dict):
            raise ImportFileInvalid(f"The export file's {label} is not an object.")
        unknown = sorted(set(row) - set(PUBLIC_FIELDS))
        if unknown:
            raise ImportFileInvalid(
                f"The export file's {label} has unexpected field(s): {', '.join(unknown)}."
            )
        data = dict(row)
        if mode == "encrypted":
            sealed = secrets.get(str(row.get("record_name")))
            if not isinstance(sealed, dict):
                raise ImportFileInvalid(f"The export file has no sealed secrets for {label}.")
            data.update({f: sealed.get(f, "") for f in SECRET_FIELDS})
        try:
            record = record_from_mapping(data)
        except RecordInvalid as exc:
            raise ImportFileInvalid(f"The export file's {label} is invalid: {exc}") from None
        if record.record_name in seen:
            raise ImportFileInvalid(
                f"The export file names {record.record_name!r} twice; Record Names are unique."
            )
        seen.add(record.record_name)
        records.append(record)
    return ParsedExport(records=tuple(records), has_secrets=mode != "none")


def _free_name(name: str, taken: set[str]) -> str:
    for i in range(2, 10_000):
        candidate = f"{name} ({i})"
        if candidate not in taken:
            return candidate
    raise ImportFileInvalid(f"No free name for {name!r}.")


def import_records(store: Any, parsed: ParsedExport, on_conflict: str = "error") -> ImportReport:
    """Adds the file's records; a clash is an error, or overwrites, or gets a new name.

    Overwriting changes only the fields the file holds: a file without secrets keeps the stored
    Client Secret and Refresh Token. All changes go to the store in one transaction when it
    supports ``apply``.
    """
    if on_conflict not in ON_CONFLICT:
        raise ImportFileInvalid(f"on_conflict must be one of {', '.join(ON_CONFLICT)}.")
    taken = set(record_names(store))
    existing = set(taken)
    adds: list[OAuthRecord] = []
    changes: dict[str, dict[str, str]] = {}
    renamed: list[tuple[str, str]] = []
    clashes = [r.record_name for r in parsed.records if r.record_name in existing]
    if clashes and on_conflict == "error":
        raise RecordExists(
            f"Import stopped, nothing was changed: records already exist: "
            f"{', '.join(repr(n) for n in clashes)}. Choose --on-conflict overwrite or rename."
        )
    kept = () if parsed.has_secrets else SECRET_FIELDS
    for record in parsed.records:
        name = record.record_name
        if name not in existing:
            adds.append(record)
            taken.add(name)
        elif on_conflict == "overwrite":
            fields = attrs.asdict(record)
            changes[name] = {
                f: v for f, v in fields.items() if f != "record_name" and f not in kept
            }
        else:
            new_name = _free_name(name, taken | {r.record_name for r in parsed.records})
            taken.add(new_name)
            adds.append(attrs.evolve(record, record_name=new_name))
            renamed.append((name, new_name))
    apply = getattr(store, "apply", None)
    if apply is not None:
        apply(adds, changes)
    else:  # a host's store without transactions: best effort, in a safe order
        for record in adds:
            store.add(record)
        for name, fields in changes.items():
            change_record(store, name, fields)
    return ImportReport(
        added=tuple(r.record_name for r in adds),
        overwritten=tuple(changes),
        renamed=tuple(renamed),
    )
