"""Helpers for the credentials tests (records on the fake provider, worker processes)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from robomail_plugin.credentials.records import OAuthRecord
from robomail_plugin.credentials.store import SQLiteCredentialStore
from robomail_plugin.credentials.tokens import TokenEndpoint, TokenService

CANARY = "CANARY-s3cr3t-Zq9x"


def make_record(provider, client_id: str, secret: str = "", name: str = "rec", **kw) -> OAuthRecord:
    fields = dict(
        record_name=name,
        client_account="alice@example.test",
        client_id=client_id,
        client_secret=secret,
        authorization_endpoint=provider.authorize_url,
        token_endpoint=provider.token_url,
        scope="mail offline_access",
        device_endpoint=provider.device_url,
    )
    fields.update(kw)
    return OAuthRecord(**fields)


def rec(name: str, secret: str = CANARY, refresh: str = CANARY + "-refresh") -> OAuthRecord:
    """A stored record with canary secrets and no provider behind it (store tests)."""
    return OAuthRecord(
        record_name=name,
        client_account=f"{name}@example.test",
        client_id="client-id",
        client_secret=secret,
        refresh_token=refresh,
        authorization_endpoint="https://auth.example.test/authorize",
        token_endpoint="https://auth.example.test/token",
        scope="mail offline_access",
    )


def fast_endpoint(**kw) -> TokenEndpoint:
    kw.setdefault("retry_delays", (0.01, 0.01))
    kw.setdefault("retry_after_cap", 0.01)
    kw.setdefault("timeout", 5.0)
    return TokenEndpoint(**kw)


def token_service(home: Path, store, **kw) -> TokenService:
    endpoint = kw.pop("endpoint", None) or fast_endpoint()
    return TokenService(lambda: store, lock_dir=home / "locks", endpoint=endpoint, **kw)


class Ctx:
    """A host context with nobody at the terminal, for running editor commands directly."""

    interactive = False

    def log(self, message, level="info"):
        pass

    def add_secret(self, value):
        pass

    def prompt(self, text, *, secret=False):
        raise AssertionError("no prompt expected")

    def cancelled(self):
        return False


# --- worker processes (spawned; arguments are plain values) -------------------------------------


def refresh_worker(home: str, name: str, start_at: float, out) -> None:
    """Gets one access token in a fresh process (its own memory cache)."""
    store = SQLiteCredentialStore(Path(home))
    service = token_service(Path(home), store)
    while time.time() < start_at:
        time.sleep(0.005)
    try:
        token = service.get_access_token(name)
        out.put(("ok", token.value))
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def writer_worker(home: str, prefix: str, count: int, start_at: float, out) -> None:
    """Adds ``count`` records as fast as it can."""
    store = SQLiteCredentialStore(Path(home))
    while time.time() < start_at:
        time.sleep(0.005)
    try:
        for i in range(count):
            store.add(
                OAuthRecord(
                    record_name=f"{prefix}-{i}",
                    client_account="a@example.test",
                    client_id="cid",
                    client_secret=f"{CANARY}-{prefix}-{i}",
                    refresh_token=f"rt-{prefix}-{i}",
                    authorization_endpoint="https://auth.example.test/authorize",
                    token_endpoint="https://auth.example.test/token",
                    scope="mail",
                )
            )
        out.put(("ok", prefix))
    except Exception as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def endless_writer(home: str) -> None:
    """Adds records forever, printing each name once its transaction committed (for kill tests)."""
    store = SQLiteCredentialStore(Path(home))
    i = 0
    while True:
        name = f"rec-{i}"
        store.add(
            OAuthRecord(
                record_name=name,
                client_account="a@example.test",
                client_id="cid",
                client_secret="s" * 40,
                refresh_token="r" * 200,
                authorization_endpoint="https://auth.example.test/authorize",
                token_endpoint="https://auth.example.test/token",
                scope="mail",
            )
        )
        sys.stdout.write(name + "\n")
        sys.stdout.flush()
        i += 1


if __name__ == "__main__":
    endless_writer(os.environ["ROBOMAIL_HOME"])
