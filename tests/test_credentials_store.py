"""The embedded store: encryption at rest, tamper and wrong-key detection, key sources and
rotation, crash safety and several processes at once."""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import attrs
import keyring
import keyring.backend
import pytest
from credentials_support import CANARY, rec, writer_worker

from robomail_plugin.credentials.crypto import encode_key, new_key
from robomail_plugin.credentials.keys import (
    EnvKeySource,
    FileKeySource,
    KeyringKeySource,
    select_key_source,
)
from robomail_plugin.credentials.store import DB_FILE, SQLiteCredentialStore
from robomail_plugin.errors import RecordExists, RecordNotFound, StoreError

TESTS = Path(__file__).parent


def all_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.iterdir() if p.name.startswith(DB_FILE))


def test_crud_round_trip(robomail_home):
    store = SQLiteCredentialStore(robomail_home)
    store.add(rec("a"))
    store.add(rec("b", secret=""))
    assert [r.record_name for r in store.list()] == ["a", "b"]
    assert store.get("a") == rec("a")
    assert store.get("b").client_secret == ""
    store.update(attrs.evolve(rec("a"), scope="other"))
    assert store.get("a").scope == "other"
    store.rename("a", "c")
    assert store.get("c").client_secret == CANARY  # re-sealed under the new name
    with pytest.raises(RecordNotFound, match="'a'"):
        store.get("a")
    store.delete("c")
    assert [r.record_name for r in store.list()] == ["b"]


def test_secrets_are_encrypted_at_rest_and_files_are_private(robomail_home):
    store = SQLiteCredentialStore(robomail_home)
    store.add(rec("a"))
    data = all_bytes(robomail_home)
    assert b"client-id" in data  # the file is what we think it is
    assert CANARY.encode() not in data
    for path in robomail_home.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def _swap(home: Path, sql: str, *args) -> None:
    conn = sqlite3.connect(home / DB_FILE)
    with conn:
        conn.execute(sql, args)
    conn.close()


def test_a_secret_moved_to_another_record_is_detected(robomail_home):
    store = SQLiteCredentialStore(robomail_home)
    store.add(rec("a", secret="secret-of-a"))
    store.add(rec("b", secret="secret-of-b"))
    conn = sqlite3.connect(robomail_home / DB_FILE)
    blob_a = conn.execute("SELECT client_secret FROM oauth_records WHERE record_name='a'")
    blob_a = blob_a.fetchone()
    conn.close()
    sql = "UPDATE oauth_records SET client_secret=? WHERE record_name='b'"
    _swap(robomail_home, sql, blob_a[0])
    with pytest.raises(StoreError, match="Client Secret of record 'b' fails its integrity check"):
        store.get("b")
    assert store.get("a").client_secret == "secret-of-a"


def test_a_secret_moved_to_another_field_or_altered_is_detected(robomail_home):
    store = SQLiteCredentialStore(robomail_home)
    store.add(rec("a"))
    _swap(robomail_home, "UPDATE oauth_records SET refresh_token = client_secret")
    with pytest.raises(StoreError, match="Refresh Token of record 'a'"):
        store.get("a")
    store2 = SQLiteCredentialStore(robomail_home)
    store2.update(rec("a"))  # set it again: readable again
    conn = sqlite3.connect(robomail_home / DB_FILE)
    blob = bytearray(conn.execute("SELECT client_secret FROM oauth_records").fetchone()[0])
    conn.close()
    blob[-1] ^= 1
    _swap(robomail_home, "UPDATE oauth_records SET client_secret=?", bytes(blob))
    with pytest.raises(StoreError, match="integrity check") as info:
        store2.list()
    assert CANARY not in str(info.value)


def test_a_wrong_key_is_a_clear_error_that_changes_nothing(robomail_home, monkeypatch):
    SQLiteCredentialStore(robomail_home).add(rec("a"))
    good = os.environ["ROBOMAIL_KEY"]
    before = hashlib.sha256(all_bytes(robomail_home)).hexdigest()
    monkeypatch.setenv("ROBOMAIL_KEY", encode_key(new_key()))
    with pytest.raises(StoreError, match="Wrong key.*ROBOMAIL_KEY"):
        SQLiteCredentialStore(robomail_home).list()
    with pytest.raises(StoreError, match="Wrong key"):
        SQLiteCredentialStore(robomail_home).add(rec("b"))
    assert hashlib.sha256(all_bytes(robomail_home)).hexdigest() == before
    monkeypatch.setenv("ROBOMAIL_KEY", good)
    assert [r.record_name for r in SQLiteCredentialStore(robomail_home).list()] == ["a"]


def test_a_malformed_key_names_its_source_not_its_value(monkeypatch, robomail_home):
    monkeypatch.setenv("ROBOMAIL_KEY", "not-a-key-" + CANARY)
    with pytest.raises(StoreError, match="ROBOMAIL_KEY environment variable") as info:
        SQLiteCredentialStore(robomail_home).list()
    assert CANARY not in str(info.value)


def test_a_damaged_file_is_a_clear_error(robomail_home):
    (robomail_home / DB_FILE).write_bytes(b"this is not a database at all " * 100)
    with pytest.raises(StoreError, match="cannot be used.*re-import"):
        SQLiteCredentialStore(robomail_home).list()
    assert (robomail_home / DB_FILE).read_bytes().startswith(b"this is not")


def test_without_robomail_key_a_0600_key_file_is_made_and_reused(robomail_home, monkeypatch):
    monkeypatch.delenv("ROBOMAIL_KEY")
    monkeypatch.setenv("ROBOMAIL_KEYRING", "0")
    store = SQLiteCredentialStore(robomail_home)
    assert isinstance(store.key_source, FileKeySource)
    store.add(rec("a"))
    key_file = robomail_home / "store.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SQLiteCredentialStore(robomail_home).get("a").client_secret == CANARY


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend that keeps passwords in a dict (no OS keyring in CI)."""

    priority = 10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.items.get((service, username))

    def set_password(self, service, username, password):
        self.items[(service, username)] = password

    def delete_password(self, service, username):
        self.items.pop((service, username), None)


@pytest.fixture
def memory_keyring(monkeypatch):
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    monkeypatch.delenv("ROBOMAIL_KEY")
    monkeypatch.delenv("ROBOMAIL_KEYRING", raising=False)
    yield backend
    keyring.set_keyring(previous)


def test_the_os_keyring_is_used_when_one_works(robomail_home, memory_keyring):
    store = SQLiteCredentialStore(robomail_home)
    assert isinstance(store.key_source, KeyringKeySource)
    store.add(rec("a"))
    assert not (robomail_home / "store.key").exists()
    assert len(memory_keyring.items) == 1
    key_id = store.rotate_key()
    assert SQLiteCredentialStore(robomail_home).key_id == key_id
    assert SQLiteCredentialStore(robomail_home).get("a").client_secret == CANARY
    assert len(memory_keyring.items) == 1  # the pending entry is gone


def test_key_source_order(robomail_home, monkeypatch, memory_keyring):
    monkeypatch.setenv("ROBOMAIL_KEY", encode_key(new_key()))
    assert isinstance(select_key_source(robomail_home), EnvKeySource)
    monkeypatch.delenv("ROBOMAIL_KEY")
    assert isinstance(select_key_source(robomail_home), KeyringKeySource)
    (robomail_home / "store.key").write_text(encode_key(new_key()))
    assert isinstance(select_key_source(robomail_home), FileKeySource)  # an existing file wins


def test_rotate_key_with_a_key_file(robomail_home, monkeypatch):
    monkeypatch.delenv("ROBOMAIL_KEY")
    monkeypatch.setenv("ROBOMAIL_KEYRING", "0")
    store = SQLiteCredentialStore(robomail_home)
    for name in "abc":
        store.add(rec(name, secret=f"{CANARY}-{name}"))
    old_key = (robomail_home / "store.key").read_text()
    old_id = store.key_id
    new_id = store.rotate_key()
    assert new_id != old_id
    assert (robomail_home / "store.key").read_text() != old_key
    assert not (robomail_home / "store.key.new").exists()
    fresh = SQLiteCredentialStore(robomail_home)
    assert [r.client_secret for r in fresh.list()] == [f"{CANARY}-{n}" for n in "abc"]
    monkeypatch.setenv("ROBOMAIL_KEY", old_key)
    with pytest.raises(StoreError, match="Wrong key"):
        SQLiteCredentialStore(robomail_home).list()


def test_rotate_key_from_robomail_key_needs_the_new_key(robomail_home, monkeypatch):
    store = SQLiteCredentialStore(robomail_home)
    store.add(rec("a"))
    with pytest.raises(StoreError, match="give the new key"):
        store.rotate_key()
    new = encode_key(new_key())
    store.rotate_key(new)
    assert store.get("a").client_secret == CANARY  # this instance follows the new key
    with pytest.raises(StoreError, match="Wrong key"):
        SQLiteCredentialStore(robomail_home).list()  # ROBOMAIL_KEY still holds the old one
    monkeypatch.setenv("ROBOMAIL_KEY", new)
    assert SQLiteCredentialStore(robomail_home).get("a").client_secret == CANARY


def test_a_rotation_interrupted_after_the_database_commit_is_finished_on_next_open(
    robomail_home, monkeypatch
):
    monkeypatch.delenv("ROBOMAIL_KEY")
    monkeypatch.setenv("ROBOMAIL_KEYRING", "0")
    store = SQLiteCredentialStore(robomail_home)
    store.add(rec("a"))

    def crash(key):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(store.key_source, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        store.rotate_key()
    assert (robomail_home / "store.key.new").exists()
    assert SQLiteCredentialStore(robomail_home).get("a").client_secret == CANARY
    assert not (robomail_home / "store.key.new").exists()


def test_a_rotation_failing_before_the_commit_keeps_the_old_key(robomail_home, monkeypatch):
    monkeypatch.delenv("ROBOMAIL_KEY")
    monkeypatch.setenv("ROBOMAIL_KEYRING", "0")
    store = SQLiteCredentialStore(robomail_home)
    store.add(rec("a"))
    old_key = (robomail_home / "store.key").read_text()

    def disk_full(conn, box):
        raise StoreError("disk full")

    monkeypatch.setattr(store, "_write_keycheck", disk_full)
    with pytest.raises(StoreError, match="disk full"):
        store.rotate_key()
    assert (robomail_home / "store.key").read_text() == old_key
    assert not (robomail_home / "store.key.new").exists()
    assert SQLiteCredentialStore(robomail_home).get("a").client_secret == CANARY


def test_a_damaged_record_does_not_stop_a_rotation(robomail_home, monkeypatch):
    monkeypatch.delenv("ROBOMAIL_KEY")
    monkeypatch.setenv("ROBOMAIL_KEYRING", "0")
    store = SQLiteCredentialStore(robomail_home)
    store.add(rec("a"))
    store.add(rec("b"))
    _swap(robomail_home, "UPDATE oauth_records SET refresh_token = client_secret "
          "WHERE record_name = 'b'")
    old_key = (robomail_home / "store.key").read_text()
    store.rotate_key()
    assert (robomail_home / "store.key").read_text() != old_key
    fresh = SQLiteCredentialStore(robomail_home)
    assert fresh.get("a").client_secret == CANARY
    checked = {c.record.record_name: c for c in fresh.read_checked()}
    assert list(checked["b"].damage) == ["refresh_token"]
    assert checked["b"].record.client_secret == CANARY


def test_a_killed_writer_loses_no_committed_record(robomail_home):
    SQLiteCredentialStore(robomail_home).list()  # create the store and its key first
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "credentials_support.py")],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
        text=True,
    )
    committed = []
    assert proc.stdout is not None
    try:
        while len(committed) < 60:
            line = proc.stdout.readline()
            assert line, "the writer died early"
            committed.append(line.strip())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    store = SQLiteCredentialStore(robomail_home)
    names = {r.record_name for r in store.list()}
    assert set(committed) <= names
    conn = sqlite3.connect(robomail_home / DB_FILE)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    store.add(rec("after-the-crash"))
    assert store.get("after-the-crash").client_secret == CANARY


def test_several_processes_write_at_once(robomail_home):
    SQLiteCredentialStore(robomail_home).list()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 1.5
    procs = [
        ctx.Process(target=writer_worker, args=(str(robomail_home), f"p{i}", 25, start_at, out))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert all(kind == "ok" for kind, _ in results), results
    records = SQLiteCredentialStore(robomail_home).list()
    assert len(records) == 100
    assert {r.client_secret for r in records} == {
        f"{CANARY}-p{i}-{j}" for i in range(4) for j in range(25)
    }


def test_apply_is_all_or_nothing(robomail_home):
    store = SQLiteCredentialStore(robomail_home)
    store.add(rec("a"))
    with pytest.raises(RecordExists):
        store.apply([rec("new"), rec("a")], {})
    with pytest.raises(RecordNotFound):
        store.apply([rec("new")], {"missing": {"scope": "mail"}})
    assert [r.record_name for r in store.list()] == ["a"]


def test_store_repr_and_errors_hold_no_secret(robomail_home):
    store = SQLiteCredentialStore(robomail_home)
    store.add(rec("a"))
    assert CANARY not in repr(store) and CANARY not in repr(store.list())
    assert base64.b64encode(CANARY.encode()) not in all_bytes(robomail_home)
