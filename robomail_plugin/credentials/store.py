"""The embedded credential store: OAuth records in SQLite (WAL), secrets encrypted per field.

One place reads and writes records. Every change is one transaction, so a crash or a killed
process never leaves half a change; several processes may use the store at once (WAL plus a busy
timeout). Client Secret and Refresh Token are sealed with AES-GCM bound to the record and field.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from robomail_plugin.credentials.crypto import DecryptError, SecretBox, decode_key
from robomail_plugin.credentials.keys import KeySource, home_lock, select_key_source
from robomail_plugin.credentials.records import (
    FIELD_LABELS,
    PUBLIC_FIELDS,
    SECRET_FIELDS,
    OAuthRecord,
)
from robomail_plugin.errors import RecordExists, RecordInvalid, RecordNotFound, StoreError
from robomail_plugin.store_contract import CredentialStore

DB_FILE = "credentials.sqlite3"
SCHEMA_VERSION = "1"
#: SQLite's application_id of a robomail store ("RbMl"), so tools like `file` can tell it apart.
APPLICATION_ID = 0x52624D6C
BUSY_TIMEOUT_S = 30.0
_KEYCHECK_PLAINTEXT = "robomail key check"
_KEYCHECK_AAD = ("\x00meta", "key_check")
_PLAIN_FIELDS = PUBLIC_FIELDS[1:]  # all but record_name, the key column
_COLUMNS = ("record_name", *_PLAIN_FIELDS, *SECRET_FIELDS)
# SQL built once from the constant column names above (no user input).
_SELECT_ALL = f"SELECT {', '.join(_COLUMNS)} FROM oauth_records"  # noqa: S608
_SELECT_ONE = _SELECT_ALL + " WHERE record_name = ?"
_INSERT = (
    f"INSERT INTO oauth_records ({', '.join((*_COLUMNS, 'updated_at'))}) "  # noqa: S608
    f"VALUES ({', '.join('?' * (len(_COLUMNS) + 1))})"
)
_UPDATE = (
    "UPDATE oauth_records SET "  # noqa: S608
    + ", ".join(f"{c} = ?" for c in (*_COLUMNS[1:], "updated_at"))
    + " WHERE record_name = ?"
)


@attrs.frozen
class CheckedRecord:
    """A record as read by ``read_checked``: damaged secrets are blanked and named in ``damage``.

    ``damage`` maps a field name to what is wrong with it and what to do (never the value), so
    one damaged record does not stop a listing, an export or a repair of the others.
    """

    record: OAuthRecord
    damage: dict[str, str] = attrs.field(factory=dict)


def change_record(store: CredentialStore, name: str, changes: Mapping[str, str]) -> OAuthRecord:
    """Replaces only the given fields of a record, atomically where the store can."""
    change = getattr(store, "change", None)
    if change is not None:
        changed: OAuthRecord = change(name, changes)
        return changed
    updated = attrs.evolve(store.get(name), **changes)
    store.update(updated)
    return updated


def save_refresh_token(store: CredentialStore, name: str, refresh_token: str) -> None:
    """Writes only the Refresh Token: the one writer of that field besides a user's import."""
    setter = getattr(store, "set_refresh_token", None)
    if setter is not None:
        setter(name, refresh_token)
    else:
        change_record(store, name, {"refresh_token": refresh_token})


def read_checked(store: CredentialStore, names: Sequence[str] | None = None) -> list[CheckedRecord]:
    """Records for display and export; a store without ``read_checked`` raises on damage."""
    reader = getattr(store, "read_checked", None)
    if reader is not None:
        checked: list[CheckedRecord] = reader(names)
        return checked
    records = store.list() if names is None else [store.get(n) for n in names]
    return [CheckedRecord(r) for r in records]


def open_row(values: dict[str, Any], box: SecretBox) -> CheckedRecord:
    """A stored row (column name -> value, secrets sealed) as a record: a secret that fails its
    integrity check, or is not one line, is blanked and reported, never raised. Shared by every
    store that seals with a SecretBox."""
    name = values["record_name"]
    damage: dict[str, str] = {}
    for field in SECRET_FIELDS:
        try:
            values[field] = box.decrypt(bytes(values[field]), name, field)
        except DecryptError:
            values[field] = ""
            damage[field] = (
                f"The stored {FIELD_LABELS[field]} of record {name!r} fails its integrity "
                "check: it was altered, or copied from another record or field. "
                f"To repair it, {damage_advice(name, field)}."
            )
            continue
        if any(ch in values[field] for ch in "\r\n\0"):
            values[field] = ""
            damage[field] = (
                f"The stored {FIELD_LABELS[field]} of record {name!r} is not a single line, so "
                f"no provider accepts it. To repair it, {damage_advice(name, field)}."
            )
    try:
        record = OAuthRecord(**values)
    except RecordInvalid as exc:
        raise StoreError(
            f"The stored record {name!r} is not valid ({exc}); delete it and add it again."
        ) from None
    return CheckedRecord(record, damage)


def strict_record(checked: CheckedRecord, replacing: Collection[str] = ()) -> OAuthRecord:
    """The record, or the StoreError of a damaged secret the caller is not replacing."""
    for field, problem in checked.damage.items():
        if field not in replacing:
            raise StoreError(problem)
    return checked.record


def record_names(store: CredentialStore) -> list[str]:
    """The Record Names, without decrypting anything where the store can."""
    names = getattr(store, "names", None)
    return list(names()) if names is not None else [r.record_name for r in store.list()]


def damage_advice(name: str, field: str) -> str:
    """What to run to replace a damaged secret."""
    if field == "refresh_token":
        return f"run hostsim oauth get-refresh-token {shlex.quote(name)}"
    return f"set it again: hostsim oauth edit {shlex.quote(name)} --client-secret ..."


def not_found(name: str) -> RecordNotFound:
    return RecordNotFound(
        f"No OAuth record is named {name!r}. Check the Record Name (hostsim oauth list) or "
        "create the record (hostsim oauth add)."
    )


def exists(name: str) -> RecordExists:
    return RecordExists(
        f"An OAuth record named {name!r} exists already: Record Names are unique. Choose another "
        "name, or edit/delete the existing record."
    )


class SQLiteCredentialStore:
    """The default store: ``credentials.sqlite3`` (mode 0600) in ROBOMAIL_HOME or the data dir."""

    def __init__(
        self,
        home: Path,
        key_source: KeySource | None = None,
        *,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.home = Path(home)
        self.path = self.home / DB_FILE
        self.key_source = key_source or select_key_source(self.home)
        self.busy_timeout = busy_timeout
        self._box: SecretBox | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteCredentialStore(path={str(self.path)!r})"

    @property
    def description(self) -> str:
        return f"robomail's embedded store {self.path}"

    # --- plumbing ---------------------------------------------------------------------------

    def _damaged(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"The credential store {self.path} cannot be used: {exc}. If the file is damaged, move "
            "it away and re-import your records from an export; nothing was changed."
        )

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._damaged(exc) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA synchronous = FULL")
            yield conn
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(
                    f"The credential store {self.path} stayed locked by another process for "
                    f"{self.busy_timeout:.0f} s; try again."
                ) from None
            raise self._damaged(exc) from None
        finally:
            conn.close()

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """A transaction with a checked key; BEGIN IMMEDIATE for writes (one writer at a time)."""
        self._ready()
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                self._check_key_id(conn)
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def _ready(self) -> None:
        """Checks or creates the folder, file and schema once, and loads (or makes) the key."""
        with self._lock:
            if self._box is not None:
                return
            self._check_home()
            with home_lock(self.home):
                self._init_locked()

    def _check_home(self) -> None:
        if self.home.exists() and not self.home.is_dir():
            raise StoreError(
                f"The credential store's folder {self.home} is a file, not a folder. Set "
                "ROBOMAIL_HOME to a folder (or unset it); nothing was changed."
            )
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(
                f"The credential store's folder {self.home} cannot be created "
                f"({exc.strerror}). Set ROBOMAIL_HOME to a folder you can write."
            ) from None

    def _init_locked(self) -> None:
        if not self.path.exists():
            self._create()
        elif self.path.is_file() and self.path.stat().st_size == 0:
            raise StoreError(
                f"The credential store {self.path} is empty (0 bytes): it was truncated, so its "
                "records are gone from this file. Restore it from a backup, or move it away and "
                "re-import your records from an export; nothing was changed."
            )
        with self._connect() as conn:
            self._check_ours(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                meta = dict(conn.execute("SELECT k, v FROM meta").fetchall())
                version = meta.get("schema_version")
                if str(version) != SCHEMA_VERSION:
                    raise StoreError(
                        f"The credential store {self.path} has schema version {version}; this "
                        f"robomail reads version {SCHEMA_VERSION}. Upgrade robomail."
                    )
                box = self._resolve_key(conn, meta)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{self.path}{suffix}", 0o600)
        self._box = box

    def _create(self) -> None:
        """Builds the schema in a private file and renames it into place: never a half store."""
        building = self.path.with_name(f"{DB_FILE}.new-{os.getpid()}")
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{building}{suffix}")
        os.close(os.open(building, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            conn = sqlite3.connect(building, isolation_level=None)
            try:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(
                        f"The credential store {self.path} cannot use WAL mode ({mode})."
                    )
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB)")
                conn.execute(
                    "CREATE TABLE oauth_records ("
                    "record_name TEXT PRIMARY KEY, "
                    + ", ".join(f"{c} TEXT NOT NULL" for c in _PLAIN_FIELDS)
                    + ", "
                    + ", ".join(f"{c} BLOB NOT NULL" for c in SECRET_FIELDS)
                    + ", updated_at REAL NOT NULL)"
                )
                conn.execute(
                    "INSERT INTO meta (k, v) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
                conn.execute("COMMIT")
            finally:
                conn.close()
            os.replace(building, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(building)
            raise

    def _check_ours(self, conn: sqlite3.Connection) -> None:
        """Refuses an SQLite file robomail did not make, before writing anything into it."""
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if {"meta", "oauth_records"} <= tables:
            return
        held = ", ".join(sorted(tables)) or "no tables"
        raise StoreError(
            f"{self.path} is not a robomail credential store (it holds {held}). Nothing was "
            "changed: move that file away, or set ROBOMAIL_HOME to another folder."
        )

    def _resolve_key(self, conn: sqlite3.Connection, meta: dict[str, Any]) -> SecretBox:
        source = self.key_source
        check = meta.get("key_check")
        key = source.load()
        if check is None:  # a new store: take the key there is, or make one
            box = SecretBox(key if key is not None else source.create())
            self._write_keycheck(conn, box)
            conn.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )
            return box
        if key is not None and _opens(SecretBox(key), check):
            if source.pending() is not None:  # a rotation that never reached the store
                source.discard_pending()
            return SecretBox(key)
        pending = source.pending()
        if pending is not None and _opens(SecretBox(pending), check):
            source.commit(pending)  # the store was re-encrypted; finish the rotation
            return SecretBox(pending)
        if key is None:
            raise StoreError(
                f"The credential store {self.path} is encrypted, but there is no key in "
                f"{source.description}. Set ROBOMAIL_KEY to the key it was created with."
            )
        raise StoreError(
            f"Wrong key: the key from {source.description} does not open the credential store "
            f"{self.path}. Use the key the store was created or last rotated with; nothing was "
            "changed."
        )

    def _write_keycheck(self, conn: sqlite3.Connection, box: SecretBox) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO meta (k, v) VALUES ('key_check', ?)",
            (box.encrypt(_KEYCHECK_PLAINTEXT, *_KEYCHECK_AAD),),
        )
        conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('key_id', ?)", (box.key_id,))

    def _check_key_id(self, conn: sqlite3.Connection) -> None:
        """Notices a key rotated by another process and reloads the key."""
        row = conn.execute("SELECT v FROM meta WHERE k = 'key_id'").fetchone()
        assert self._box is not None
        if row is None or row[0] == self._box.key_id:
            return
        check = conn.execute("SELECT v FROM meta WHERE k = 'key_check'").fetchone()
        for key in (self.key_source.load(), self.key_source.pending()):
            if key is not None and check is not None and _opens(SecretBox(key), check[0]):
                self._box = SecretBox(key)
                return
        raise StoreError(
            f"The credential store {self.path} was re-encrypted with another key (by another "
            f"process) and {self.key_source.description} does not hold it. Set ROBOMAIL_KEY to "
            "the new key."
        )

    # --- rows -----------------------------------------------------------------------------

    def _row_values(self, record: OAuthRecord, box: SecretBox) -> tuple[Any, ...]:
        secrets = tuple(
            box.encrypt(getattr(record, f), record.record_name, f) for f in SECRET_FIELDS
        )
        plain = tuple(getattr(record, f) for f in _PLAIN_FIELDS)
        return (record.record_name, *plain, *secrets, time.time())

    def _decode(self, row: tuple[Any, ...], *, replacing: Collection[str] = ()) -> OAuthRecord:
        """The record of a row; damage in a field the caller is ``replacing`` does not count."""
        return strict_record(self._decode_checked(row), replacing)

    def _decode_checked(self, row: tuple[Any, ...]) -> CheckedRecord:
        assert self._box is not None
        return open_row(dict(zip(_COLUMNS, row, strict=True)), self._box)

    def _insert(self, conn: sqlite3.Connection, record: OAuthRecord) -> None:
        assert self._box is not None
        try:
            conn.execute(_INSERT, self._row_values(record, self._box))
        except sqlite3.IntegrityError:
            raise exists(record.record_name) from None

    def _replace(self, conn: sqlite3.Connection, record: OAuthRecord) -> None:
        assert self._box is not None
        values = self._row_values(record, self._box)
        cur = conn.execute(_UPDATE, (*values[1:], values[0]))
        if cur.rowcount == 0:
            raise not_found(record.record_name)

    def _select(self, conn: sqlite3.Connection, name: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = conn.execute(_SELECT_ONE, (name,)).fetchone()
        return row

    # --- the interface ----------------------------------------------------------------------

    def get(self, name: str, *, replacing: Collection[str] = ()) -> OAuthRecord:
        """The record; a damaged secret is an error unless the caller is ``replacing`` it."""
        with self._transaction(write=False) as conn:
            row = self._select(conn, name)
            if row is None:
                raise not_found(name)
            return self._decode(row, replacing=replacing)

    def read_checked(self, names: Sequence[str] | None = None) -> list[CheckedRecord]:
        """Every record (or the named ones, in that order) with damaged secrets reported."""
        with self._transaction(write=False) as conn:
            if names is None:
                rows = conn.execute(_SELECT_ALL + " ORDER BY record_name").fetchall()
            else:
                rows = []
                for name in dict.fromkeys(names):
                    row = self._select(conn, name)
                    if row is None:
                        raise not_found(name)
                    rows.append(row)
            return [self._decode_checked(r) for r in rows]

    def names(self) -> list[str]:
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT record_name FROM oauth_records ORDER BY record_name")
            return [r[0] for r in rows]

    def list(self) -> list[OAuthRecord]:
        with self._transaction(write=False) as conn:
            rows = conn.execute(_SELECT_ALL + " ORDER BY record_name").fetchall()
            return [self._decode(r) for r in rows]

    def add(self, record: OAuthRecord) -> None:
        with self._transaction(write=True) as conn:
            self._insert(conn, record)

    def update(self, record: OAuthRecord) -> None:
        with self._transaction(write=True) as conn:
            self._replace(conn, record)

    def set_refresh_token(self, name: str, refresh_token: str) -> None:
        """Replaces only the Refresh Token (a rotated one, or Get Refresh Token's), atomically."""
        if not isinstance(refresh_token, str) or any(ch in refresh_token for ch in "\r\n\0"):
            raise RecordInvalid(
                f"record {name!r}: the new Refresh Token is not a single line of text; it was not "
                "stored (the previous one was kept)."
            )
        with self._transaction(write=True) as conn:
            self._write_fields(conn, name, {"refresh_token": refresh_token})

    def change(self, name: str, changes: Mapping[str, str]) -> OAuthRecord:
        """Replaces only the given fields, in one transaction: a rotation or another edit that
        lands meanwhile is kept. A damaged secret can be replaced this way."""
        with self._transaction(write=True) as conn:
            return self._change(conn, name, changes)

    def _change(
        self, conn: sqlite3.Connection, name: str, changes: Mapping[str, str]
    ) -> OAuthRecord:
        unknown = set(changes) - set(_COLUMNS[1:])
        if unknown:
            raise RecordInvalid(f"unknown field(s): {', '.join(sorted(unknown))}")
        row = self._select(conn, name)
        if row is None:
            raise not_found(name)
        checked = self._decode_checked(row)
        updated = attrs.evolve(checked.record, **changes)  # validates the result
        self._write_fields(conn, name, {f: getattr(updated, f) for f in changes})
        return updated

    def _write_fields(self, conn: sqlite3.Connection, name: str, fields: Mapping[str, str]) -> None:
        assert self._box is not None
        values = [
            self._box.encrypt(v, name, f) if f in SECRET_FIELDS else v for f, v in fields.items()
        ]
        # column names come from _COLUMNS (checked by the callers), never from user input
        assignments = ", ".join(f"{f} = ?" for f in (*fields, "updated_at"))
        cur = conn.execute(
            f"UPDATE oauth_records SET {assignments} WHERE record_name = ?",  # noqa: S608
            (*values, time.time(), name),
        )
        if cur.rowcount == 0:
            raise not_found(name)

    def delete(self, name: str) -> None:
        with self._transaction(write=True) as conn:
            cur = conn.execute("DELETE FROM oauth_records WHERE record_name = ?", (name,))
            if cur.rowcount == 0:
                raise not_found(name)

    def rename(self, old: str, new: str) -> None:
        with self._transaction(write=True) as conn:
            row = self._select(conn, old)
            if row is None:
                raise not_found(old)
            record = attrs.evolve(self._decode(row), record_name=new)
            if old == new:
                return
            if self._select(conn, new) is not None:
                raise exists(new)
            conn.execute("DELETE FROM oauth_records WHERE record_name = ?", (old,))
            self._insert(conn, record)

    def apply(
        self, adds: Sequence[OAuthRecord], changes: Mapping[str, Mapping[str, str]]
    ) -> None:
        """Adds records and changes fields of others in one transaction: all of it, or none."""
        with self._transaction(write=True) as conn:
            for name, fields in changes.items():
                self._change(conn, name, fields)
            for record in adds:
                self._insert(conn, record)

    def rotate_key(self, new_key: bytes | str | None = None) -> str:
        """Re-encrypts every secret with a new key in one transaction; returns its key id.

        With ROBOMAIL_KEY the new key must be given (robomail cannot change the variable); set
        ROBOMAIL_KEY to it afterwards. Otherwise a new key is made and kept where the old one was.
        """
        if isinstance(new_key, str):
            new_key = decode_key(new_key, "the new key")
        source = self.key_source
        if new_key is None:
            if not source.can_store:
                raise StoreError(
                    f"The key comes from {source.description}, which robomail cannot change: give "
                    "the new key (urlsafe base64 of 32 random bytes), then set ROBOMAIL_KEY to it."
                )
            from robomail_plugin.credentials.crypto import new_key as make_key

            new_key = make_key()
        self._ready()
        new_box = SecretBox(new_key)
        with home_lock(self.home):
            source.stage(new_key)
            try:
                with self._transaction(write=True) as conn:
                    self._reencrypt_all(conn, new_box)
                    self._write_keycheck(conn, new_box)
            except BaseException:
                source.discard_pending()
                raise
            source.commit(new_key)
            with self._lock:
                self._box = new_box
        return new_box.key_id

    def _reencrypt_all(self, conn: sqlite3.Connection, new_box: SecretBox) -> None:
        """Seals every secret with the new key; a damaged one is left as it is (still damaged,
        still reported), so one bad record does not stop the rotation of the others."""
        assert self._box is not None
        rows = conn.execute("SELECT record_name, client_secret, refresh_token FROM oauth_records")
        for name, *blobs in rows.fetchall():
            sealed = []
            for field, blob in zip(SECRET_FIELDS, blobs, strict=True):
                try:
                    plain = self._box.decrypt(blob, name, field)
                except DecryptError:
                    sealed.append(blob)
                else:
                    sealed.append(new_box.encrypt(plain, name, field))
            conn.execute(
                "UPDATE oauth_records SET client_secret = ?, refresh_token = ? "
                "WHERE record_name = ?",
                (*sealed, name),
            )

    @property
    def key_id(self) -> str:
        self._ready()
        assert self._box is not None
        return self._box.key_id


def _opens(box: SecretBox, check: bytes) -> bool:
    try:
        return box.decrypt(check, *_KEYCHECK_AAD) == _KEYCHECK_PLAINTEXT
    except DecryptError:
        return False
