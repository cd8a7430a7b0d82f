"""The PostgreSQL credential store: one set of OAuth records shared by a fleet of hosts.

The same contract and the same protection as the embedded store: Client Secret and Refresh Token
are sealed with AES-GCM bound to record and field before they leave the host (the database never
holds them in clear), with the key from the same sources. Every change is one transaction and is
announced to every host (NOTIFY), so each drops its cached access token; a refresh holds the
record's row lock across hosts and saves a rotated token in that same transaction.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from robomail_plugin.credentials.crypto import DecryptError, SecretBox, decode_key
from robomail_plugin.credentials.keys import KeySource, home_lock, select_key_source
from robomail_plugin.credentials.pg_config import (
    KEY_NEXT_ENV,
    LOCK_TIMEOUT_ENV,
    STORE_ENV,
    Location,
    lock_timeout,
)
from robomail_plugin.credentials.pg_listen import ChangeListener, payload
from robomail_plugin.credentials.pg_schema import CHANNEL, COLUMNS, META, RECORDS, migrate
from robomail_plugin.credentials.records import SECRET_FIELDS, OAuthRecord
from robomail_plugin.credentials.store import (
    CheckedRecord,
    exists,
    not_found,
    open_row,
    strict_record,
)
from robomail_plugin.errors import (
    RecordInvalid,
    RobomailError,
    StoreError,
    TokenTemporaryError,
)

#: seconds an operation waits for a pooled connection (the server restarting, say) before failing
CONNECT_WAIT_S = 10.0
#: a host that hangs (not killed) inside a refresh frees the record's lock after this long
IDLE_IN_REFRESH_S = 300
_KEYCHECK_PLAINTEXT = "robomail key check"
_KEYCHECK_AAD = ("\x00meta", "key_check")
_COLS = ", ".join(COLUMNS)
# SQL built once from the constant names in pg_schema (no user input).
_SELECT_KEYED = (
    f"SELECT (SELECT v FROM {META} WHERE k = 'key_id'), {_COLS} FROM {RECORDS}"  # noqa: S608
)
_ORDER = ' ORDER BY record_name COLLATE "C"'  # byte order, as the embedded store lists
_SELECT_ONE = f"SELECT {_COLS} FROM {RECORDS} WHERE record_name = %s"  # noqa: S608
_INSERT = (
    f"INSERT INTO {RECORDS} ({_COLS}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)
_UPDATE_ALL = (
    f"UPDATE {RECORDS} SET "  # noqa: S608
    + ", ".join(f"{c} = %s" for c in COLUMNS[1:])
    + ", updated_at = now() WHERE record_name = %s"
)
_DISCONNECT_STATES = ("57P01", "57P02", "57P03")


def _single_line(name: str, token: object) -> str:
    if not isinstance(token, str) or any(ch in token for ch in "\r\n\0"):
        raise RecordInvalid(
            f"record {name!r}: the new Refresh Token is not a single line of text; it was not "
            "stored (the previous one was kept)."
        )
    return token


class RefreshHold:
    """What ``refresh_lock`` gives the token service: the record read under its lock, and the
    place for a rotated Refresh Token (written in the lock's transaction)."""

    def __init__(self, record: OAuthRecord) -> None:
        self.record = record
        self.new_refresh_token: str | None = None

    def __repr__(self) -> str:
        return f"RefreshHold({self.record.record_name!r})"

    def save_refresh_token(self, token: str) -> None:
        self.new_refresh_token = _single_line(self.record.record_name, token)


def _disconnected(exc: BaseException) -> bool:
    import psycopg

    if isinstance(exc, psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith("08") or state in _DISCONNECT_STATES


def _opens(box: SecretBox, check: bytes) -> bool:
    try:
        return box.decrypt(check, *_KEYCHECK_AAD) == _KEYCHECK_PLAINTEXT
    except DecryptError:
        return False


class PostgresCredentialStore:
    """The store in a PostgreSQL database (``ROBOMAIL_STORE=postgresql://...``), for a fleet."""

    def __init__(
        self,
        url: str,
        home: Path,
        key_source: KeySource | None = None,
        *,
        pool_size: int = 4,
        lock_wait: float | None = None,
    ) -> None:
        self.location = Location(url)
        self.home = Path(home)
        self.key_source = key_source or select_key_source(self.home)
        self.pool_size = pool_size
        self.lock_wait = lock_timeout() if lock_wait is None else lock_wait
        self._box: SecretBox | None = None
        self._pool: Any = None
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[str | None], None]] = []
        self._listener: ChangeListener | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresCredentialStore({self.location.shown!r})"

    @property
    def description(self) -> str:
        return f"the PostgreSQL store {self.location.shown} ({STORE_ENV})"

    # --- connections ------------------------------------------------------------------------

    def _connect(self) -> Any:
        """A new connection of its own (autocommit), failures named by the setting to fix."""
        import psycopg

        try:
            return psycopg.connect(
                self.location.url, autocommit=True, **self.location.connect_kwargs()
            )
        except psycopg.Error as exc:
            raise self.location.fault(exc) from None

    def _configure(self, conn: Any) -> None:
        conn.execute(f"SET lock_timeout = {int(self.lock_wait * 1000)}")
        conn.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_REFRESH_S * 1000}")

    def _ready(self) -> None:
        """Creates or migrates the schema and checks the key, once; then opens the pool."""
        if self._pool is not None:
            return
        import psycopg
        from psycopg_pool import ConnectionPool

        with self._lock:
            if self._pool is not None:
                return
            if self._closed:
                raise StoreError(f"{self.description} was closed; open it again.")
            conn = self._connect()
            try:
                with conn.transaction():
                    migrate(conn, self.lock_wait)
                    box = self._resolve_key(conn)
            except psycopg.errors.LockNotAvailable:
                raise StoreError(
                    f"Another host has been creating or upgrading the schema of "
                    f"{self.description} for over {self.lock_wait:g} s. Try again, or raise "
                    f"{LOCK_TIMEOUT_ENV}."
                ) from None
            except psycopg.errors.InsufficientPrivilege as exc:
                raise self.location.fault(exc) from None
            except psycopg.Error as exc:
                raise self._failure(exc, "while preparing the schema") from None
            finally:
                conn.close()
            self._box = box
            pool = ConnectionPool(
                self.location.url,
                kwargs={**self.location.connect_kwargs(), "autocommit": True},
                min_size=1,
                max_size=max(1, self.pool_size),
                open=False,
                configure=self._configure,
                timeout=CONNECT_WAIT_S,
                name="robomail-store",
            )
            pool.open(wait=False)
            self._pool = pool
            atexit.register(self.close)

    def close(self) -> None:
        """Stops listening and closes the connections (also at exit)."""
        self._closed = True
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=5)
        atexit.unregister(self.close)

    def _failure(self, exc: BaseException, doing: str) -> StoreError:
        import psycopg

        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and (
            _disconnected(exc)
        ):
            return self.location.fault(exc, doing=doing)
        state = getattr(exc, "sqlstate", None) or "no code"
        return StoreError(
            f"{self.description} failed {doing} ({type(exc).__name__}, SQLSTATE {state}); "
            "nothing was changed. Check the database's log."
        )

    def _probe(self) -> None:
        """Raises the clear error when the server cannot be reached now; else returns."""
        self._connect().close()

    def _getconn(self) -> Any:
        from psycopg_pool import PoolTimeout

        self._ready()
        for _ in range(2):
            try:
                return self._pool.getconn(timeout=CONNECT_WAIT_S)
            except PoolTimeout:
                self._probe()  # the server's own reason (down, password...), naming the setting
        raise StoreError(
            f"All {self.pool_size} connections to {self.description} stayed busy for "
            f"{CONNECT_WAIT_S:g} s; try again."
        )

    def _putconn(self, conn: Any) -> None:
        pool = self._pool
        if pool is None:
            conn.close()
        else:
            pool.putconn(conn)

    def _locked(self, what: str) -> StoreError:
        return StoreError(
            f"{what} stayed locked by another host for {self.lock_wait:g} s (a token refresh or "
            f"another change in progress); nothing was changed. Try again, or raise "
            f"{LOCK_TIMEOUT_ENV}."
        )

    def _run(
        self,
        work: Callable[[Any], Any],
        *,
        write: bool,
        doing: str,
        key_lock: str = "FOR SHARE",
    ) -> Any:
        """Runs ``work(conn)``: a read as is, a write in one transaction holding the key row.

        A connection found dead before anything was sent (the server restarted) is replaced and
        the work tried once more; a failure after BEGIN is reported, never repeated."""
        import psycopg

        for attempt in range(2):
            begun = False
            conn = self._getconn()
            try:
                if not write:
                    return work(conn)
                with conn.transaction():
                    begun = True
                    row = conn.execute(
                        f"SELECT v FROM {META} WHERE k = 'key_id' {key_lock}"  # noqa: S608
                    ).fetchone()
                    self._check_key(conn, row[0] if row else None)
                    return work(conn)
            except psycopg.errors.LockNotAvailable:
                raise self._locked("The records") from None
            except psycopg.Error as exc:
                if attempt == 0 and not begun and _disconnected(exc):
                    with contextlib.suppress(Exception):
                        self._pool.check()
                    continue
                if begun and _disconnected(exc):
                    doing += (
                        "; PostgreSQL rolled the change back unless it was committing at that "
                        "instant (check with hostsim oauth list)"
                    )
                raise self._failure(exc, doing) from None
            finally:
                self._putconn(conn)
        raise AssertionError("unreachable")

    # --- the key ----------------------------------------------------------------------------

    def _candidate_keys(self) -> list[bytes]:
        source = self.key_source
        keys = [source.load(), source.pending()]
        nxt = os.environ.get(KEY_NEXT_ENV, "").strip()
        if nxt:
            keys.append(decode_key(nxt, f"the {KEY_NEXT_ENV} environment variable"))
        return [k for k in keys if k is not None]

    def _resolve_key(self, conn: Any) -> SecretBox:
        source = self.key_source
        row = conn.execute(f"SELECT v FROM {META} WHERE k = 'key_check'").fetchone()  # noqa: S608
        key = source.load()
        if row is None:  # a new store: take the key there is, or make one
            box = SecretBox(key if key is not None else source.create())
            self._write_keycheck(conn, box)
            return box
        check = bytes(row[0])
        if key is not None and _opens(SecretBox(key), check):
            if source.pending() is not None:
                source.discard_pending()
            return SecretBox(key)
        pending = source.pending()
        if pending is not None and _opens(SecretBox(pending), check):
            source.commit(pending)  # this host's rotation reached the store: finish it
            return SecretBox(pending)
        for candidate in self._candidate_keys():
            if _opens(SecretBox(candidate), check):
                return SecretBox(candidate)
        if key is None:
            raise StoreError(
                f"{self.description} is encrypted, but there is no key in "
                f"{source.description}. Every host of a fleet needs the same key: set "
                "ROBOMAIL_KEY to the key the store was created with (docs/fleet.md)."
            )
        raise StoreError(
            f"Wrong key: the key from {source.description} does not open {self.description}. "
            "Every host of a fleet needs the same key: set ROBOMAIL_KEY to the key the store was "
            f"created or last rotated with (or {KEY_NEXT_ENV} during a rotation); nothing was "
            "changed."
        )

    def _write_keycheck(self, conn: Any, box: SecretBox) -> None:
        sealed = box.encrypt(_KEYCHECK_PLAINTEXT, *_KEYCHECK_AAD)
        for k, v in (("key_check", sealed), ("key_id", box.key_id.encode("ascii"))):
            conn.execute(
                f"INSERT INTO {META} (k, v) VALUES (%s, %s) "  # noqa: S608
                "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (k, v),
            )

    def _check_key(self, conn: Any, key_id: Any) -> None:
        """Notices a key rotated by another host and takes the new key, if this host has it."""
        box = self._box
        assert box is not None
        if key_id is None or bytes(key_id).decode("ascii", "replace") == box.key_id:
            return
        row = conn.execute(f"SELECT v FROM {META} WHERE k = 'key_check'").fetchone()  # noqa: S608
        for key in self._candidate_keys():
            if row is not None and _opens(SecretBox(key), bytes(row[0])):
                self._box = SecretBox(key)
                return
        raise StoreError(
            f"{self.description} was re-encrypted with another key (by another host) and neither "
            f"{self.key_source.description} nor {KEY_NEXT_ENV} holds it. Set ROBOMAIL_KEY to the "
            "new key on this host."
        )

    @property
    def key_id(self) -> str:
        self._ready()
        assert self._box is not None
        return self._box.key_id

    # --- rows -------------------------------------------------------------------------------

    def _values(self, record: OAuthRecord) -> tuple[Any, ...]:
        box = self._box
        assert box is not None
        secrets = tuple(
            box.encrypt(getattr(record, f), record.record_name, f) for f in SECRET_FIELDS
        )
        return (*(getattr(record, c) for c in COLUMNS[: -len(SECRET_FIELDS)]), *secrets)

    def _decode_checked(self, row: Sequence[Any]) -> CheckedRecord:
        assert self._box is not None
        return open_row(dict(zip(COLUMNS, row, strict=True)), self._box)

    def _decode(self, row: Sequence[Any], *, replacing: Collection[str] = ()) -> OAuthRecord:
        return strict_record(self._decode_checked(row), replacing)

    def _insert(self, conn: Any, record: OAuthRecord) -> None:
        import psycopg

        try:
            with conn.transaction():  # a savepoint: the error leaves the outer transaction usable
                conn.execute(_INSERT, self._values(record))
        except psycopg.errors.UniqueViolation:
            raise exists(record.record_name) from None

    def _row_for_update(self, conn: Any, name: str) -> Sequence[Any]:
        row: Sequence[Any] | None = conn.execute(_SELECT_ONE + " FOR UPDATE", (name,)).fetchone()
        if row is None:
            raise not_found(name)
        return row

    def _write_fields(self, conn: Any, name: str, fields: Mapping[str, str]) -> None:
        box = self._box
        assert box is not None
        values = [box.encrypt(v, name, f) if f in SECRET_FIELDS else v for f, v in fields.items()]
        # column names come from COLUMNS (checked by the callers), never from user input
        assignments = ", ".join(f"{f} = %s" for f in fields)
        cur = conn.execute(
            f"UPDATE {RECORDS} SET {assignments}, updated_at = now() "  # noqa: S608
            "WHERE record_name = %s",
            (*values, name),
        )
        if cur.rowcount == 0:
            raise not_found(name)

    def _notify(self, conn: Any, names: Sequence[str]) -> None:
        """Tells every host (when this transaction commits) which records changed."""
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload(list(dict.fromkeys(names)))))

    # --- reading ----------------------------------------------------------------------------

    def get(self, name: str, *, replacing: Collection[str] = ()) -> OAuthRecord:
        """The record; a damaged secret is an error unless the caller is ``replacing`` it."""

        def read(conn: Any) -> OAuthRecord:
            row = conn.execute(_SELECT_KEYED + " WHERE record_name = %s", (name,)).fetchone()
            if row is None:
                raise not_found(name)
            self._check_key(conn, row[0])
            return self._decode(row[1:], replacing=replacing)

        result: OAuthRecord = self._run(read, write=False, doing="reading a record")
        return result

    def read_checked(self, names: Sequence[str] | None = None) -> list[CheckedRecord]:
        """Every record (or the named ones, in that order) with damaged secrets reported."""

        def read(conn: Any) -> list[CheckedRecord]:
            if names is None:
                rows = conn.execute(_SELECT_KEYED + _ORDER).fetchall()
            else:
                wanted = list(dict.fromkeys(names))
                found = {
                    r[1]: r
                    for r in conn.execute(
                        _SELECT_KEYED + " WHERE record_name = ANY(%s)", (wanted,)
                    ).fetchall()
                }
                for name in wanted:
                    if name not in found:
                        raise not_found(name)
                rows = [found[n] for n in wanted]
            if rows:
                self._check_key(conn, rows[0][0])
            return [self._decode_checked(r[1:]) for r in rows]

        result: list[CheckedRecord] = self._run(read, write=False, doing="reading records")
        return result

    def names(self) -> list[str]:
        def read(conn: Any) -> list[str]:
            rows = conn.execute(f"SELECT record_name FROM {RECORDS}" + _ORDER)  # noqa: S608
            return [r[0] for r in rows]

        result: list[str] = self._run(read, write=False, doing="listing records")
        return result

    def list(self) -> list[OAuthRecord]:
        return [self._raise_damage(c) for c in self.read_checked()]

    @staticmethod
    def _raise_damage(checked: CheckedRecord) -> OAuthRecord:
        for problem in checked.damage.values():
            raise StoreError(problem)
        return checked.record

    # --- writing ----------------------------------------------------------------------------

    def add(self, record: OAuthRecord) -> None:
        def write(conn: Any) -> None:
            self._insert(conn, record)
            self._notify(conn, [record.record_name])

        self._run(write, write=True, doing="adding a record")

    def update(self, record: OAuthRecord) -> None:
        name = record.record_name

        def write(conn: Any) -> None:
            cur = conn.execute(_UPDATE_ALL, (*self._values(record)[1:], name))
            if cur.rowcount == 0:
                raise not_found(name)
            self._notify(conn, [name])

        self._run(write, write=True, doing="saving a record")

    def set_refresh_token(self, name: str, refresh_token: str) -> None:
        """Replaces only the Refresh Token (Get Refresh Token's), atomically; every host drops
        its cached access token for the record."""
        _single_line(name, refresh_token)

        def write(conn: Any) -> None:
            self._write_fields(conn, name, {"refresh_token": refresh_token})
            self._notify(conn, [name])

        self._run(write, write=True, doing="saving the Refresh Token")

    def change(self, name: str, changes: Mapping[str, str]) -> OAuthRecord:
        """Replaces only the given fields, in one transaction: a rotation or another edit that
        lands meanwhile is kept. A damaged secret can be replaced this way."""

        def write(conn: Any) -> OAuthRecord:
            updated = self._change(conn, name, changes)
            self._notify(conn, [name])
            return updated

        result: OAuthRecord = self._run(write, write=True, doing="changing a record")
        return result

    def _change(self, conn: Any, name: str, changes: Mapping[str, str]) -> OAuthRecord:
        unknown = set(changes) - set(COLUMNS[1:])
        if unknown:
            raise RecordInvalid(f"unknown field(s): {', '.join(sorted(unknown))}")
        checked = self._decode_checked(self._row_for_update(conn, name))
        updated = attrs.evolve(checked.record, **changes)  # validates the result
        if changes:
            self._write_fields(conn, name, {f: getattr(updated, f) for f in changes})
        return updated

    def delete(self, name: str) -> None:
        def write(conn: Any) -> None:
            cur = conn.execute(
                f"DELETE FROM {RECORDS} WHERE record_name = %s", (name,)  # noqa: S608
            )
            if cur.rowcount == 0:
                raise not_found(name)
            self._notify(conn, [name])

        self._run(write, write=True, doing="deleting a record")

    def rename(self, old: str, new: str) -> None:
        def write(conn: Any) -> None:
            record = attrs.evolve(self._decode(self._row_for_update(conn, old)), record_name=new)
            if old == new:
                return
            conn.execute(f"DELETE FROM {RECORDS} WHERE record_name = %s", (old,))  # noqa: S608
            self._insert(conn, record)  # sealed again: the secrets are bound to the name
            self._notify(conn, [old, new])

        self._run(write, write=True, doing="renaming a record")

    def apply(
        self, adds: Sequence[OAuthRecord], changes: Mapping[str, Mapping[str, str]]
    ) -> None:
        """Adds records and changes fields of others in one transaction: all of it, or none."""

        def write(conn: Any) -> None:
            for name, fields in changes.items():
                self._change(conn, name, fields)
            for record in adds:
                self._insert(conn, record)
            self._notify(conn, [*changes, *(r.record_name for r in adds)])

        self._run(write, write=True, doing="importing records")

    # --- refresh across hosts ---------------------------------------------------------------

    def subscribe(self, callback: Callable[[str | None], None]) -> None:
        """Calls ``callback(name)`` when any host changes a record (``None``: maybe all of
        them, after a lost connection). Listening starts with the first refresh."""
        self._subscribers.append(callback)

    def _deliver(self, name: str | None) -> None:
        for callback in list(self._subscribers):
            callback(name)

    def _listen(self) -> None:
        if not self._subscribers or self._listener is not None:
            return
        with self._lock:
            if self._listener is None:
                self._listener = ChangeListener(self._connect, CHANNEL, self._deliver)
        self._listener.start(wait=2.0)

    @contextlib.contextmanager
    def refresh_lock(self, name: str, *, timeout: float | None = None) -> Iterator[RefreshHold]:
        """Holds the record's row lock (every host waits) while the caller refreshes; a rotated
        token given to the hold is saved in the same transaction, committed on leaving.

        A host killed inside loses only its own uncommitted rotation: PostgreSQL rolls back and
        releases the lock at once. ``timeout`` bounds the wait for the lock."""
        import psycopg

        self._ready()
        self._listen()
        wait = self.lock_wait if timeout is None else max(0.001, min(timeout, self.lock_wait))
        conn, hold = self._lock_record(name, wait)
        try:
            yield hold
        except BaseException:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            self._putconn(conn)
            raise
        try:
            if hold.new_refresh_token is not None:
                self._write_fields(conn, name, {"refresh_token": hold.new_refresh_token})
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            self._putconn(conn)
            if hold.new_refresh_token is not None:
                self._save_rotation_again(hold, exc)
            return
        self._putconn(conn)

    def _lock_record(self, name: str, wait: float) -> tuple[Any, RefreshHold]:
        import psycopg

        for attempt in range(2):
            conn = self._getconn()
            try:
                conn.execute("BEGIN")
            except psycopg.Error as exc:
                self._putconn(conn)
                if attempt == 0 and _disconnected(exc):
                    with contextlib.suppress(Exception):
                        self._pool.check()
                    continue
                raise self._failure(exc, "starting a token refresh") from None
            try:
                conn.execute(f"SET LOCAL lock_timeout = {max(1, int(wait * 1000))}")
                key = conn.execute(
                    f"SELECT v FROM {META} WHERE k = 'key_id' FOR SHARE"  # noqa: S608
                ).fetchone()
                self._check_key(conn, key[0] if key else None)
                record = self._decode(self._row_for_update(conn, name))
                return conn, RefreshHold(record)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
                self._putconn(conn)
                if isinstance(exc, psycopg.errors.LockNotAvailable):
                    raise TokenTemporaryError(
                        f"OAuth record {name!r}: another host has been refreshing its token for "
                        f"over {wait:g} s (it holds the record's lock); try again later. The "
                        f"wait is bounded by the step's timeout and {LOCK_TIMEOUT_ENV} "
                        f"({self.lock_wait:g} s)."
                    ) from None
                if isinstance(exc, psycopg.Error):
                    raise self._failure(exc, "starting a token refresh") from None
                raise
        raise AssertionError("unreachable")

    def _save_rotation_again(self, hold: RefreshHold, exc: BaseException) -> None:
        """The commit failed (the server restarted, say): saves the rotated token in a new
        transaction, unless the record changed meanwhile (a newer Refresh Token wins)."""
        name = hold.record.record_name
        new = hold.new_refresh_token
        assert new is not None

        def write(conn: Any) -> None:
            current = self._decode(self._row_for_update(conn, name), replacing=SECRET_FIELDS)
            if current.refresh_token == hold.record.refresh_token:
                self._write_fields(conn, name, {"refresh_token": new})

        try:
            self._run(write, write=True, doing="saving a rotated Refresh Token")
        except RobomailError as again:
            raise StoreError(
                f"OAuth record {name!r}: the provider issued a new Refresh Token but it could not "
                f"be saved ({self._failure(exc, 'while saving it')}; then: {again}). If the next "
                f"refresh fails, run hostsim oauth get-refresh-token {name!r}."
            ) from None

    # --- key rotation -----------------------------------------------------------------------

    def rotate_key(self, new_key: bytes | str | None = None) -> str:
        """Re-encrypts every secret with ``new_key`` in one transaction; returns its key id.

        Every host needs the new key: give it here, and put it on every host first as
        ROBOMAIL_KEY_NEXT (hosts switch when they see the rotation), then as ROBOMAIL_KEY."""
        if isinstance(new_key, str):
            new_key = decode_key(new_key, "the new key")
        if new_key is None:
            raise StoreError(
                f"On {self.description} every host needs the new key, so robomail does not make "
                f"one: give it (rotate-key --new-key KEY) after putting it on every host as "
                f"{KEY_NEXT_ENV}; then make it ROBOMAIL_KEY everywhere (docs/fleet.md)."
            )
        self._ready()
        new_box = SecretBox(new_key)
        source = self.key_source

        def write(conn: Any) -> None:
            old = self._box
            assert old is not None
            rows = conn.execute(
                f"SELECT record_name, {', '.join(SECRET_FIELDS)} FROM {RECORDS} "  # noqa: S608
                "FOR UPDATE"
            ).fetchall()
            for name, *blobs in rows:
                sealed = []
                for field, blob in zip(SECRET_FIELDS, blobs, strict=True):
                    try:
                        plain = old.decrypt(bytes(blob), name, field)
                    except DecryptError:
                        sealed.append(bytes(blob))  # damaged: left as it is, still reported
                    else:
                        sealed.append(new_box.encrypt(plain, name, field))
                conn.execute(
                    f"UPDATE {RECORDS} SET "  # noqa: S608
                    + ", ".join(f"{f} = %s" for f in SECRET_FIELDS)
                    + " WHERE record_name = %s",
                    (*sealed, name),
                )
            self._write_keycheck(conn, new_box)

        with home_lock(self.home):
            source.stage(new_key)
            try:
                self._run(write, write=True, doing="re-encrypting", key_lock="FOR UPDATE")
            except BaseException:
                source.discard_pending()
                raise
            source.commit(new_key)
            self._box = new_box
        return new_box.key_id
