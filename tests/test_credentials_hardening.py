"""Credentials under fault: edits racing a refresh with rotation, one damaged record among good
ones, and store files that are not what they should be. Nothing stored may be lost."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest
from click.testing import CliRunner
from credentials_support import CANARY, Ctx

from hostsim.cli.main import main
from hostsim.runtime.host import Host
from robomail_plugin.credentials.crypto import encode_key, new_key
from robomail_plugin.credentials.editor_spec import RECORD_TYPE
from robomail_plugin.credentials.records import OAuthRecord
from robomail_plugin.credentials.store import DB_FILE, SQLiteCredentialStore
from robomail_plugin.errors import RecordInvalid, StoreError
from robomail_plugin.plugin import plugin

ROUNDS = 60


def cli(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(main, ["oauth", *args], catch_exceptions=False)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert CANARY not in output
    assert "Traceback" not in output
    assert (result.exit_code == 0) == ok, output
    return output


def record(name: str, **kw) -> OAuthRecord:
    fields = dict(
        record_name=name, client_account="a@example.test", client_id="cid",
        client_secret=CANARY, refresh_token=CANARY + "-refresh",
        authorization_endpoint="https://auth.example.test/authorize",
        token_endpoint="https://auth.example.test/token", scope="mail",
    )
    fields.update(kw)
    return OAuthRecord(**fields)


def raw_sql(home, sql: str, *args) -> None:
    conn = sqlite3.connect(home / DB_FILE)
    with conn:
        conn.execute(sql, args)
    conn.close()


# --- 1. no lost rotation, no lost edit ------------------------------------------------------


def test_edits_racing_refreshes_with_rotation_lose_nothing(fake_provider, oauth_client):
    client_id, secret = oauth_client
    fake_provider.rotate_refresh_tokens = True
    host = Host.load()
    editor = host.registry.editors[RECORD_TYPE]
    editor.command("add").run(Ctx(), {
        "record_name": "busy", "client_account": "alice@example.test", "client_id": client_id,
        "client_secret": secret, "authorization_endpoint": fake_provider.authorize_url,
        "token_endpoint": fake_provider.token_url, "scope": "mail offline_access",
    })
    plugin.services.store.set_refresh_token(
        "busy", fake_provider.mint_refresh_token(client_id, "alice@example.test")
    )
    failures: list[str] = []
    start = threading.Barrier(3)

    def refresher() -> None:
        start.wait()
        for _ in range(ROUNDS):
            try:
                plugin.services.tokens.get_access_token("busy", force_refresh=True)
            except Exception as exc:  # a lost rotation shows as invalid_grant here
                failures.append(f"{type(exc).__name__}: {exc}")

    def editing(param: str, value) -> None:
        start.wait()
        for i in range(ROUNDS):
            editor.command("edit").run(Ctx(), {"record_name": "busy", param: value(i)})

    threads = [
        threading.Thread(target=refresher),
        threading.Thread(target=editing, args=("client_account", lambda i: f"alice{i}@example.test")),
        threading.Thread(
            target=editing, args=("authorization_endpoint", lambda i: f"{fake_provider.authorize_url}?v={i}")
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == [], failures[:3]
    final = plugin.services.store.get("busy")
    assert final.client_account == f"alice{ROUNDS - 1}@example.test"
    assert final.authorization_endpoint.endswith(f"?v={ROUNDS - 1}")
    token = plugin.services.tokens.get_access_token("busy", force_refresh=True)
    assert fake_provider.is_active(token.value)


def test_overwriting_import_keeps_a_rotated_refresh_token(tmp_path):
    cli("add", "imp", "--account", "a@example.test", "--client-id", "cid", "--client-secret",
        CANARY, "--auth-endpoint", "https://auth.example.test/a", "--token-endpoint",
        "https://auth.example.test/t", "--scope", "mail")
    export = tmp_path / "records.json"
    cli("export", "--to", str(export))
    Host.load()
    plugin.services.store.set_refresh_token("imp", CANARY + "-rotated")
    document = json.loads(export.read_text())
    document["records"][0]["scope"] = "mail other"
    export.write_text(json.dumps(document))
    cli("import", str(export), "--on-conflict", "overwrite")
    stored = plugin.services.store.get("imp")
    assert stored.scope == "mail other"
    assert stored.refresh_token == CANARY + "-rotated"
    assert stored.client_secret == CANARY


# --- 2. one damaged record does not block the others ----------------------------------------


@pytest.fixture
def damaged_store(robomail_home):
    """Records a and c are fine; b's Client Secret was swapped for its Refresh Token's blob."""
    store = SQLiteCredentialStore(robomail_home)
    for name in ("a", "b", "c"):
        store.add(record(name))
    raw_sql(robomail_home, "UPDATE oauth_records SET client_secret = refresh_token "
            "WHERE record_name = 'b'")
    return store


def test_list_and_show_name_the_damaged_record_and_go_on(damaged_store):
    out = cli("list")
    assert "a  " in out and "c  " in out
    assert "DAMAGED: The stored Client Secret of record 'b'" in out
    assert "hostsim oauth edit b --client-secret" in out
    out = cli("show", "b")
    assert "Client Secret" in out and "DAMAGED" in out


def test_export_skips_the_damaged_record_and_says_so(damaged_store, tmp_path):
    target = tmp_path / "out.json"
    out = cli("export", "--to", str(target))
    assert "Exported 2 OAuth record(s)" in out
    assert "Not exported, damaged" in out and "'b'" in out
    names = [r["record_name"] for r in json.loads(target.read_text())["records"]]
    assert names == ["a", "c"]


def test_edit_replaces_a_damaged_secret(damaged_store):
    cli("edit", "b", "--client-secret", "a-new-secret")
    assert "DAMAGED" not in cli("list")
    assert damaged_store.get("b").client_secret == "a-new-secret"
    assert damaged_store.get("b").refresh_token == CANARY + "-refresh"


def test_rotate_key_and_import_work_beside_a_damaged_record(damaged_store, tmp_path, monkeypatch):
    key = encode_key(new_key())
    out = cli("rotate-key", "--new-key", key, "--yes")
    monkeypatch.setenv("ROBOMAIL_KEY", key)
    assert "Still damaged" in out and "'b'" in out
    fresh = SQLiteCredentialStore(damaged_store.home)
    assert fresh.get("a").client_secret == CANARY
    source = tmp_path / "in.json"
    source.write_text(json.dumps({
        "format": "robomail-oauth", "version": 1, "secrets": "none",
        "records": [{"record_name": "d", "client_account": "d@example.test", "client_id": "x",
                     "authorization_endpoint": "https://auth.example.test/a",
                     "token_endpoint": "https://auth.example.test/t", "scope": "mail"}],
    }))
    cli("import", str(source))
    assert "d  " in cli("list")


def test_a_stored_refresh_token_with_a_line_break_is_reported_not_fatal(robomail_home):
    store = SQLiteCredentialStore(robomail_home)
    store.add(record("a"))
    store.add(record("nl"))
    assert store._box is not None
    blob = store._box.encrypt("line1\nline2", "nl", "refresh_token")
    raw_sql(robomail_home, "UPDATE oauth_records SET refresh_token = ? WHERE record_name = 'nl'",
            blob)
    out = cli("list")
    assert "Refresh Token of record 'nl' is not a single line" in out
    assert "hostsim oauth get-refresh-token nl" in out
    with pytest.raises(StoreError, match="get-refresh-token"):
        store.get("nl")


def test_a_refresh_token_with_a_line_break_is_never_stored(robomail_home):
    store = SQLiteCredentialStore(robomail_home)
    store.add(record("a"))
    with pytest.raises(RecordInvalid, match="single line"):
        store.set_refresh_token("a", "new\r\ntoken")
    assert store.get("a").refresh_token == CANARY + "-refresh"


# --- 3. store files that are not a store ----------------------------------------------------


def test_an_empty_store_file_is_an_error_not_a_new_store(robomail_home):
    (robomail_home / DB_FILE).write_bytes(b"")
    out = cli("list", ok=False)
    assert "is empty (0 bytes)" in out and "nothing was changed" in out
    assert (robomail_home / DB_FILE).read_bytes() == b""


def test_a_foreign_sqlite_file_is_left_alone(robomail_home):
    conn = sqlite3.connect(robomail_home / DB_FILE)
    with conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.close()
    before = (robomail_home / DB_FILE).read_bytes()
    out = cli("list", ok=False)
    assert "is not a robomail credential store (it holds notes)" in out
    assert (robomail_home / DB_FILE).read_bytes() == before


def test_robomail_home_pointing_at_a_file_is_a_clear_error(tmp_path, monkeypatch):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("hello")
    monkeypatch.setenv("ROBOMAIL_HOME", str(a_file))
    out = cli("list", ok=False)
    assert "is a file, not a folder" in out and "ROBOMAIL_HOME" in out
    assert a_file.read_text() == "hello"


def test_a_new_store_is_built_whole_and_marked_as_robomail(robomail_home):
    store = SQLiteCredentialStore(robomail_home)
    store.add(record("a"))
    leftovers = [p.name for p in robomail_home.iterdir() if ".new-" in p.name]
    assert leftovers == []
    conn = sqlite3.connect(robomail_home / DB_FILE)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x52624D6C
    conn.close()
