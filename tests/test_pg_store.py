"""The PostgreSQL store against a real private PostgreSQL: the store contract (the same tests on
the embedded store), secrets sealed at rest, a schema several hosts create at once, one refresh at
a time across hosts, change notices, key rotation across a fleet, moving records, and faults."""

from __future__ import annotations

import base64
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs
import psycopg
import pytest
from click.testing import CliRunner
from credentials_support import CANARY, make_record, rec, token_service
from pg_support import refresh_worker, rotating_worker

from hostsim.cli.main import main
from robomail_plugin.credentials.crypto import encode_key, new_key
from robomail_plugin.credentials.pg_private import free_port
from robomail_plugin.credentials.pg_store import PostgresCredentialStore
from robomail_plugin.credentials.store import SQLiteCredentialStore
from robomail_plugin.errors import (
    RecordExists,
    RecordInvalid,
    RecordNotFound,
    StoreError,
    TokenTemporaryError,
)
from robomail_plugin.services import Services

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["embedded", "postgresql"])
def stores(request, robomail_home):
    """Makes handles on one store of either kind (several handles: several processes or hosts)."""
    if request.param == "embedded":
        return lambda: SQLiteCredentialStore(robomail_home)
    return request.getfixturevalue("pg_hosts")


@pytest.fixture
def any_store(stores):
    return stores()


def dump(url: str, pg_server) -> str:
    """Everything the database holds, as pg_dump writes it."""
    proc = subprocess.run(
        [str(pg_server.bindir / "pg_dump"), "--data-only", url],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return proc.stdout


def until(check, seconds: float) -> float:
    """Waits until ``check()`` is true; returns how long it took (fails after ``seconds``)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.01)
    return time.monotonic() - start


# --- the store contract, on both stores ---------------------------------------------------------


def test_crud_round_trip(any_store):
    any_store.add(rec("a"))
    any_store.add(rec("b", secret=""))
    assert [r.record_name for r in any_store.list()] == ["a", "b"]
    assert any_store.get("a") == rec("a")
    assert any_store.get("b").client_secret == ""
    any_store.update(attrs.evolve(rec("a"), scope="other"))
    assert any_store.get("a").scope == "other"
    any_store.rename("a", "c")
    assert any_store.get("c").client_secret == CANARY  # sealed again under the new name
    with pytest.raises(RecordNotFound, match="'a'"):
        any_store.get("a")
    any_store.delete("c")
    assert any_store.names() == ["b"]


def test_names_are_unique_and_missing_names_are_clear(any_store):
    any_store.add(rec("a"))
    any_store.add(rec("b"))
    with pytest.raises(RecordExists, match="exists already"):
        any_store.add(rec("a"))
    with pytest.raises(RecordExists):
        any_store.rename("a", "b")
    with pytest.raises(RecordInvalid):
        any_store.rename("a", " ")
    for call in (any_store.delete, any_store.get):
        with pytest.raises(RecordNotFound, match="hostsim oauth list"):
            call("zzz")
    with pytest.raises(RecordNotFound):
        any_store.update(rec("zzz"))
    with pytest.raises(RecordNotFound):
        any_store.read_checked(["a", "zzz"])
    assert [r.record_name for r in any_store.list()] == ["a", "b"]
    assert [c.record.record_name for c in any_store.read_checked(["b", "a"])] == ["b", "a"]


def test_listing_order_is_the_same_on_both_stores(any_store):
    for name in ("b", "B", "a", "Ä", "_x"):
        any_store.add(rec(name))
    assert any_store.names() == ["B", "_x", "a", "b", "Ä"]  # byte order, whatever the locale


def test_an_edit_keeps_a_rotation_made_meanwhile_by_another_handle(stores):
    first, second = stores(), stores()
    first.add(rec("a", refresh="old-refresh"))
    second.set_refresh_token("a", "rotated-refresh")  # another process or host rotates
    updated = first.change("a", {"scope": "new scope", "client_secret": "new-secret"})
    assert updated.refresh_token == "rotated-refresh"
    again = second.get("a")
    assert (again.scope, again.client_secret, again.refresh_token) == (
        "new scope", "new-secret", "rotated-refresh",
    )


def test_an_import_is_all_or_nothing(any_store):
    any_store.add(rec("a"))
    with pytest.raises(RecordExists):
        any_store.apply([rec("new"), rec("a")], {"a": {"scope": "changed"}})
    assert any_store.names() == ["a"]
    assert any_store.get("a").scope == "mail offline_access"
    any_store.apply([rec("new")], {"a": {"scope": "changed"}})
    assert any_store.names() == ["a", "new"]
    assert any_store.get("a").scope == "changed"


def test_a_refresh_token_that_is_not_one_line_is_refused(any_store):
    any_store.add(rec("a"))
    with pytest.raises(RecordInvalid, match="previous one was kept"):
        any_store.set_refresh_token("a", "two\nlines")
    assert any_store.get("a").refresh_token == CANARY + "-refresh"


def test_rotate_key_with_a_given_key(stores, monkeypatch):
    store = stores()
    store.add(rec("a"))
    new = encode_key(new_key())
    key_id = store.rotate_key(new)
    assert store.get("a").client_secret == CANARY
    with pytest.raises(StoreError, match="Wrong key|re-encrypted"):
        stores().get("a")  # the old ROBOMAIL_KEY no longer opens it
    monkeypatch.setenv("ROBOMAIL_KEY", new)
    reopened = stores()
    assert reopened.get("a").refresh_token == CANARY + "-refresh"
    assert reopened.key_id == key_id


# --- protection at rest -------------------------------------------------------------------------


def test_the_database_never_holds_a_secret_in_clear(pg_hosts, pg_url, pg_server):
    store = pg_hosts()
    store.add(rec("a"))
    store.set_refresh_token("a", CANARY + "-reauthorised")
    store.change("a", {"client_secret": CANARY + "-edited"})
    store.rename("a", "b")
    text = dump(pg_url, pg_server)
    assert "client-id" in text and "a@example.test" in text  # the dump is what we think it is
    assert CANARY not in text


def test_a_secret_moved_to_another_record_is_detected(pg_hosts, pg_url):
    store = pg_hosts()
    store.add(rec("a", secret="secret-of-a"))
    store.add(rec("b", secret="secret-of-b"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE robomail_oauth_records SET client_secret = "
            "(SELECT client_secret FROM robomail_oauth_records WHERE record_name = 'a') "
            "WHERE record_name = 'b'"
        )
    with pytest.raises(StoreError, match="Client Secret of record 'b' fails its integrity check"):
        store.get("b")
    [checked] = store.read_checked(["b"])
    assert "client_secret" in checked.damage and checked.record.client_secret == ""
    assert store.get("a").client_secret == "secret-of-a"
    store.change("b", {"client_secret": "set-again"})  # the repair the message names
    assert store.get("b").client_secret == "set-again"


def test_no_password_reaches_a_repr_description_or_error(pg_server, robomail_home):
    good = PostgresCredentialStore(pg_server.url("postgres"), robomail_home)
    wrong = PostgresCredentialStore(pg_server.url("nope", password="Wr0ng-" + CANARY),
                                    robomail_home)
    try:
        for store in (good, wrong):
            assert pg_server.password not in repr(store) + store.description
            assert CANARY not in repr(store) + store.description
            assert "ROBOMAIL_STORE" in store.description
        with pytest.raises(StoreError) as caught:
            wrong.names()
        assert CANARY not in str(caught.value) and pg_server.password not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    finally:
        good.close()
        wrong.close()


# --- schema -------------------------------------------------------------------------------------


def test_hosts_starting_together_create_the_schema_once(pg_hosts, pg_url):
    hosts = [pg_hosts() for _ in range(6)]
    barrier = threading.Barrier(len(hosts))
    errors: list[BaseException] = []

    def start(store):
        barrier.wait()
        try:
            store.add(rec(f"r{id(store)}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(hosts[0].names()) == 6
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM robomail_schema").fetchall() == [(1,)]


def test_a_database_from_a_newer_robomail_is_refused_untouched(pg_hosts, pg_url):
    pg_hosts().add(rec("a"))
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO robomail_schema (version, applied_by) VALUES (2, 'later')")
    with pytest.raises(StoreError, match="schema version 2.*Upgrade robomail on this host"):
        pg_hosts().names()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM robomail_oauth_records").fetchone() == (1,)


# --- one refresh at a time across hosts ---------------------------------------------------------


def test_hosts_refresh_one_at_a_time_and_save_every_rotation(
    pg_hosts, pg_url, fake_provider, oauth_client, robomail_home
):
    """Four host processes ask at the same moment; with rotation, two refreshing at once would
    redeem the same token and one would get invalid_grant."""
    client_id, secret = oauth_client
    fake_provider.rotate_refresh_tokens = True
    first = fake_provider.mint_refresh_token(client_id, "alice@example.test")
    pg_hosts().add(make_record(fake_provider, client_id, secret, refresh_token=first))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0
    procs = [
        ctx.Process(target=refresh_worker, args=(pg_url, str(robomail_home), "rec", start_at, out))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [kind for kind, _ in results] == ["ok"] * 4, results
    sent = [r["refresh_token"] for r in fake_provider.token_requests]
    assert len(sent) == 4 and len(set(sent)) == 4 and sent[0] == first
    final = pg_hosts().get("rec").refresh_token
    assert final not in sent  # the last rotation is the one stored
    token_service(robomail_home, pg_hosts()).get_access_token("rec")  # and the provider takes it


def test_an_edit_during_a_refresh_waits_and_keeps_the_rotation(pg_hosts):
    refreshing, editing = pg_hosts(), pg_hosts()
    refreshing.add(rec("a", refresh="before"))
    done = threading.Event()
    with refreshing.refresh_lock("a") as hold:
        hold.save_refresh_token("rotated")
        thread = threading.Thread(
            target=lambda: (editing.change("a", {"scope": "edited"}), done.set())
        )
        thread.start()
        assert not done.wait(0.3)  # the edit waits for the record's lock
    thread.join(10)
    assert done.is_set()
    after = editing.get("a")
    assert (after.refresh_token, after.scope) == ("rotated", "edited")


@pytest.mark.parametrize("commit", [False, True], ids=["before-commit", "after-commit"])
def test_a_host_killed_mid_refresh_loses_nothing_committed(pg_hosts, pg_url, robomail_home,
                                                           commit):
    store = pg_hosts()
    store.add(rec("a", refresh="committed-before"))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(
        target=rotating_worker,
        args=(pg_url, str(robomail_home), "a", "rotated-by-killed-host", commit, out),
    )
    proc.start()
    assert out.get(timeout=60) == ("committed" if commit else "holding")
    proc.kill()  # SIGKILL, by its PID
    proc.join(10)
    took = time.monotonic()
    with store.refresh_lock("a", timeout=10) as hold:  # the lock was freed with the connection
        kept = hold.record.refresh_token
    assert time.monotonic() - took < 5
    assert kept == ("rotated-by-killed-host" if commit else "committed-before")
    assert store.get("a").client_secret == CANARY


# --- every host learns of a change --------------------------------------------------------------


def _fleet_host(pg_url, fake_provider, oauth_client, monkeypatch, pg_hosts):
    """Host A (Services, as a host runs robomail) with a cached token, and host B's store."""
    client_id, secret = oauth_client
    refresh = fake_provider.mint_refresh_token(client_id, "alice@example.test")
    other = pg_hosts()
    other.add(make_record(fake_provider, client_id, secret, refresh_token=refresh))
    monkeypatch.setenv("ROBOMAIL_STORE", pg_url)
    services = Services()
    first = services.tokens.get_access_token("rec")
    return services, other, first


CHANGES = {
    "edit": lambda store: store.change("rec", {"scope": "mail other"}),
    "rename": lambda store: store.rename("rec", "renamed"),
    "delete": lambda store: store.delete("rec"),
    "reauthorise": lambda store: store.set_refresh_token("rec", "another-refresh-token"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_on_one_host_drops_the_cached_token_on_the_others_within_a_second(
    change, pg_url, fake_provider, oauth_client, monkeypatch, pg_hosts
):
    services, other, first = _fleet_host(pg_url, fake_provider, oauth_client, monkeypatch,
                                         pg_hosts)
    try:
        assert services.tokens.get_access_token("rec") is first  # cached
        CHANGES[change](other)
        took = until(lambda: "rec" not in services.tokens._cache, 1.0)
        assert took < 1.0
    finally:
        services.store.close()


def test_a_rotation_on_another_host_keeps_cached_tokens(
    pg_url, fake_provider, oauth_client, monkeypatch, pg_hosts, robomail_home
):
    """Rotations are not announced: else every refresh would make every other host refresh."""
    fake_provider.rotate_refresh_tokens = True
    services, other, first = _fleet_host(pg_url, fake_provider, oauth_client, monkeypatch,
                                         pg_hosts)
    try:
        token_service(robomail_home, other).get_access_token("rec")  # host B refreshes, rotates
        time.sleep(0.5)
        assert services.tokens.get_access_token("rec") is first
    finally:
        services.store.close()


def test_after_a_database_restart_hosts_reconnect_by_themselves(
    pg_url, pg_server, fake_provider, oauth_client, monkeypatch, pg_hosts
):
    services, other, first = _fleet_host(pg_url, fake_provider, oauth_client, monkeypatch,
                                         pg_hosts)
    try:
        pg_server.stop()
        with pytest.raises(StoreError, match="Cannot reach.*ROBOMAIL_STORE"):
            pg_hosts().names()  # a host starting now: a clear error naming the setting
        pg_server.start()
        # the listener is back, and forgot what it may have missed while away
        until(lambda: "rec" not in services.tokens._cache, 10.0)
        assert services.store.get("rec").client_secret == other.get("rec").client_secret
        second = services.tokens.get_access_token("rec")
        other.change("rec", {"scope": "after restart"})  # a host whose connections died
        assert until(lambda: "rec" not in services.tokens._cache, 1.0) < 1.0
        assert second.value != first.value
        assert other.get("rec").scope == "after restart"
    finally:
        services.store.close()
        if pg_server.pid is None:
            pg_server.start()


# --- key rotation across the fleet --------------------------------------------------------------


def test_key_rotation_reaches_every_host_that_has_the_next_key(pg_hosts, monkeypatch):
    host_a, host_b = pg_hosts(), pg_hosts()
    host_a.add(rec("a"))
    assert host_b.get("a").client_secret == CANARY  # B has the old key loaded
    new = encode_key(new_key())
    with pytest.raises(StoreError, match="every host needs the new key"):
        host_a.rotate_key()
    monkeypatch.setenv("ROBOMAIL_KEY_NEXT", new)  # step 1: the next key on every host
    host_a.rotate_key(new)  # step 2: one host re-encrypts
    assert host_b.get("a").client_secret == CANARY  # B switches to the next key by itself
    host_b.change("a", {"scope": "written with the new key"})
    monkeypatch.delenv("ROBOMAIL_KEY_NEXT")
    with pytest.raises(StoreError, match="Wrong key.*ROBOMAIL_KEY.*ROBOMAIL_KEY_NEXT"):
        pg_hosts().names()  # a host with only the old key is told what to set
    monkeypatch.setenv("ROBOMAIL_KEY", new)  # step 3: the new key becomes ROBOMAIL_KEY
    assert pg_hosts().get("a").scope == "written with the new key"


# --- moving records -----------------------------------------------------------------------------


def _cli(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(main, ["oauth", *args], catch_exceptions=False)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert CANARY not in output
    assert (result.exit_code == 0) == ok, output
    return output


def test_copy_store_moves_every_record_both_ways_with_secrets(
    pg_url, pg_server, pg_hosts, robomail_home, tmp_path, monkeypatch
):
    embedded = SQLiteCredentialStore(robomail_home)
    embedded.add(rec("a", secret=CANARY + "-a"))
    embedded.add(rec("b", secret="", refresh=""))

    out = _cli("copy-store", "--to", pg_url)
    assert "Copied 2 OAuth record(s), secrets included" in out
    assert pg_server.password not in out
    shared = pg_hosts()
    assert shared.list() == embedded.list()
    assert CANARY not in dump(pg_url, pg_server)
    assert "record_exists" in _cli("copy-store", "--to", pg_url, ok=False)  # nothing changed

    back = tmp_path / "other-home"
    monkeypatch.setenv("ROBOMAIL_STORE", pg_url)  # now the store in use is the shared one
    shared.change("a", {"scope": "edited on the fleet"})
    out = _cli("copy-store", "--to", str(back))
    assert "from the PostgreSQL store" in out
    assert SQLiteCredentialStore(back).list() == shared.list()
    assert CANARY.encode() not in (back / "credentials.sqlite3").read_bytes()

    monkeypatch.delenv("ROBOMAIL_STORE")
    out = _cli("copy-store", "--from", pg_url, "--on-conflict", "overwrite")
    assert "Overwrote 'a', 'b'" in out
    assert embedded.get("a").scope == "edited on the fleet"
    assert "Give either --to or --from" in _cli("copy-store", ok=False)


# --- database faults ----------------------------------------------------------------------------


def test_a_down_database_at_start_is_a_clear_error_from_the_cli(pg_server, robomail_home):
    port = free_port()  # nothing listens there
    url = f"postgresql://robomail:{CANARY}@127.0.0.1:{port}/robomail"
    env = {**os.environ, "ROBOMAIL_STORE": url}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "from hostsim.cli.main import main; main()", "oauth", "list"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )
    assert time.monotonic() - started < 20
    assert proc.returncode == 1
    assert f"Cannot reach the PostgreSQL store postgresql://robomail@127.0.0.1:{port}" in (
        proc.stderr
    )
    assert "Start PostgreSQL, or fix the host and port in ROBOMAIL_STORE" in proc.stderr
    assert CANARY not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr


def test_a_wrong_password_or_missing_database_names_what_to_fix(pg_hosts, pg_server):
    pg_hosts().add(rec("a"))
    with pytest.raises(StoreError, match="wrong password. Fix the password in ROBOMAIL_STORE"):
        pg_hosts(url=pg_server.url("postgres", password="not-it")).names()
    with pytest.raises(StoreError, match="no database 'nope'.*createdb nope.*ROBOMAIL_STORE"):
        pg_hosts(url=pg_server.url("nope")).names()
    with pytest.raises(StoreError, match="must be a postgresql:// URL"):
        PostgresCredentialStore("mysql://x", Path("."))
    assert pg_hosts().names() == ["a"]  # nothing stored was lost


def test_a_malformed_store_setting_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("ROBOMAIL_STORE", f"sqlite:///{CANARY}")
    with pytest.raises(StoreError, match="ROBOMAIL_STORE must be a postgresql:// URL") as caught:
        Services().store  # noqa: B018
    assert CANARY not in str(caught.value)


def test_a_lock_held_too_long_is_a_clear_error_that_changes_nothing(
    pg_hosts, fake_provider, oauth_client, robomail_home, monkeypatch
):
    client_id, secret = oauth_client
    refresh = fake_provider.mint_refresh_token(client_id, "alice@example.test")
    holder = pg_hosts()
    holder.add(make_record(fake_provider, client_id, secret, refresh_token=refresh))
    monkeypatch.setenv("ROBOMAIL_STORE_LOCK_TIMEOUT", "0.3")
    waiter = pg_hosts()
    with holder.refresh_lock("rec"):
        with pytest.raises(StoreError, match="stayed locked.*ROBOMAIL_STORE_LOCK_TIMEOUT"):
            waiter.change("rec", {"scope": "blocked"})
        started = time.monotonic()
        with pytest.raises(TokenTemporaryError, match="another host.*ROBOMAIL_STORE_LOCK_TIMEOUT"):
            token_service(robomail_home, waiter).get_access_token("rec")
        assert time.monotonic() - started < 5
    assert waiter.get("rec").scope == "mail offline_access" and waiter.get("rec").refresh_token
    assert fake_provider.token_requests == []
    waiter.change("rec", {"scope": "after"})  # and it works once the lock is free


def test_the_store_setting_picks_the_store_and_the_embedded_one_stays_the_default(
    pg_url, monkeypatch, robomail_home
):
    assert isinstance(Services().store, SQLiteCredentialStore)
    monkeypatch.setenv("ROBOMAIL_STORE", pg_url)
    services = Services()
    try:
        assert isinstance(services.store, PostgresCredentialStore)
        assert services.store_description.startswith("the PostgreSQL store postgresql://robomail@")
        assert "Store: the PostgreSQL store" in _cli("list")
    finally:
        services.store.close()


def test_the_key_must_be_the_fleets(pg_hosts, monkeypatch):
    pg_hosts().add(rec("a"))
    monkeypatch.setenv("ROBOMAIL_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    with pytest.raises(StoreError, match="Every host of a fleet needs the same key"):
        pg_hosts().get("a")
