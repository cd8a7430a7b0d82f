"""A real PostgreSQL for the shared store's tests: one private server per session (Debian's
packages, scripts/install-postgres), a fresh database per test, and worker 'hosts' (processes)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from robomail_plugin.credentials.pg_private import PrivatePostgres
from robomail_plugin.credentials.pg_store import PostgresCredentialStore

_databases = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PrivatePostgres]:
    """The session's private server on 127.0.0.1, stopped by its PID at the end."""
    server = PrivatePostgres().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_url(pg_server: PrivatePostgres) -> str:
    """The URL (with its password) of a new, empty database for this test."""
    if pg_server.pid is None:  # a test stopped the server and failed before starting it again
        pg_server.start()
    return pg_server.create_database(f"t{next(_databases)}")


@pytest.fixture
def pg_hosts(pg_url: str, robomail_home: Path) -> Iterator:
    """Makes store objects on this test's database, one per simulated host; closed after."""
    made: list[PostgresCredentialStore] = []

    def make(**kw) -> PostgresCredentialStore:
        store = PostgresCredentialStore(kw.pop("url", pg_url), robomail_home, **kw)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


# --- worker processes (spawned; arguments are plain values) -------------------------------------


def refresh_worker(url: str, home: str, name: str, start_at: float, out) -> None:
    """One host: its own store and token service, asking for one access token."""
    from credentials_support import token_service

    store = PostgresCredentialStore(url, Path(home))
    service = token_service(Path(home), store)
    while time.time() < start_at:
        time.sleep(0.005)
    try:
        out.put(("ok", service.get_access_token(name).value))
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        store.close()


def rotating_worker(url: str, home: str, name: str, token: str, commit: bool, out) -> None:
    """A host in the middle of a refresh: saves ``token`` as the rotated one, tells the parent,
    and waits to be killed (before its commit, or after it)."""
    store = PostgresCredentialStore(url, Path(home))
    if commit:
        with store.refresh_lock(name) as hold:
            hold.save_refresh_token(token)
        out.put("committed")
    else:
        with store.refresh_lock(name) as hold:
            hold.save_refresh_token(token)
            out.put("holding")
            time.sleep(120)
    time.sleep(120)
