"""The embedded credential store: OAuth records in SQLite (WAL), secrets encrypted per field.

One place reads and writes records. Every change is one transaction, so a crash or a killed
process never leaves half a change; several processes may use the store at once (WAL plus a busy
timeout). Client Secret and Refresh Token are sealed with AES-GCM bound to the record and field.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import attrs

from robomail_plugin.credentials.crypto import DecryptError, SecretBox, decode_key
from robomail_plugin.credentials.keys import KeySource, home_lock, select_key_source
from robomail_plugin.credentials.records import (
    FIELD_LABELS,
    PUBLIC_FIELDS,
    SECRET_FIELDS,
    OAuthRecord,
)
from robomail_plugin.errors import RecordExists, RecordNotFound, StoreError

DB_FILE = "credentials.sqlite3"
SCHEMA_VERSION = "1"
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


@runtime_checkable
class CredentialStore(Protocol):
    """What robomail needs from a store; a host may supply its own (robomail_credential_store).

    Optional extras the embedded store has and robomail uses when present: ``apply`` (several
    changes in one transaction) and ``set_refresh_token`` (replace one field atomically).
    """

    def get(self, name: str) -> OAuthRecord: ...

    def list(self) -> list[OAuthRecord]: ...

    def add(self, record: OAuthRecord) -> None: ...

    def update(self, record: OAuthRecord) -> None: ...

    def delete(self, name: str) -> None: ...

    def rename(self, old: str, new: str) -> None: ...

    def rotate_key(self, new_key: bytes | None = None) -> str: ...


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
        """Creates the folder, file and schema once, and loads (or makes) the key."""
        with self._lock:
            if self._box is not None:
                return
            with home_lock(self.home):
                self._init_locked()

    def _init_locked(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        with self._connect() as conn:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"The credential store {self.path} cannot use WAL mode ({mode}).")
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB)")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS oauth_records ("
                    "record_name TEXT PRIMARY KEY, "
                    + ", ".join(f"{c} TEXT NOT NULL" for c in _PLAIN_FIELDS)
                    + ", "
                    + ", ".join(f"{c} BLOB NOT NULL" for c in SECRET_FIELDS)
                    + ", updated_at REAL NOT NULL)"
                )
                meta = dict(conn.execute("SELECT k, v FROM meta").fetchall())
                version = meta.get("schema_version")
                if version is not None and str(version) != SCHEMA_VERSION:
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

    def _resolve_key(self, conn: sqlite3.Connection, meta: dict) -> SecretBox:
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

    def _row_values(self, record: OAuthRecord, box: SecretBox) -> tuple:
        secrets = tuple(
            box.encrypt(getattr(record, f), record.record_name, f) for f in SECRET_FIELDS
        )
        plain = tuple(getattr(record, f) for f in _PLAIN_FIELDS)
        return (record.record_name, *plain, *secrets, time.time())

    def _decode(self, row: sqlite3.Row | tuple, box: SecretBox | None = None) -> OAuthRecord:
        box = box or self._box
        assert box is not None
        values = dict(zip(_COLUMNS, row, strict=True))
        name = values["record_name"]
        for field in SECRET_FIELDS:
            try:
                values[field] = box.decrypt(values[field], name, field)
            except DecryptError:
                raise StoreError(
                    f"The stored {FIELD_LABELS[field]} of record {name!r} fails its integrity "
                    "check: it was altered, or copied from another record or field. Set it again "
                    "(hostsim oauth edit, or Get Refresh Token)."
                ) from None
        return OAuthRecord(**values)

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

    def _select(self, conn: sqlite3.Connection, name: str) -> tuple | None:
        return conn.execute(_SELECT_ONE, (name,)).fetchone()

    # --- the interface ----------------------------------------------------------------------

    def get(self, name: str) -> OAuthRecord:
        with self._transaction(write=False) as conn:
            row = self._select(conn, name)
            if row is None:
                raise not_found(name)
            return self._decode(row)

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
        """Replaces only the Refresh Token (a rotated one), atomically."""
        with self._transaction(write=True) as conn:
            assert self._box is not None
            blob = self._box.encrypt(refresh_token, name, "refresh_token")
            cur = conn.execute(
                "UPDATE oauth_records SET refresh_token = ?, updated_at = ? WHERE record_name = ?",
                (blob, time.time(), name),
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

    def apply(self, adds: Sequence[OAuthRecord], replaces: Sequence[OAuthRecord]) -> None:
        """Adds and replaces records in one transaction: all of it happens, or none."""
        with self._transaction(write=True) as conn:
            for record in replaces:
                self._replace(conn, record)
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
                    rows = conn.execute(_SELECT_ALL).fetchall()
                    records = [self._decode(r) for r in rows]
                    for record in records:
                        values = self._row_values(record, new_box)
                        conn.execute(
                            "UPDATE oauth_records SET client_secret = ?, refresh_token = ? "
                            "WHERE record_name = ?",
                            (values[-3], values[-2], record.record_name),
                        )
                    self._write_keycheck(conn, new_box)
            except BaseException:
                source.discard_pending()
                raise
            source.commit(new_key)
            with self._lock:
                self._box = new_box
        return new_box.key_id

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
