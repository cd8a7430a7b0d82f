"""Helpers for the POP3/SMTP/Parse tests: run a task through hostsim, sandbox parameters,
an OAuth record whose token the sandbox's Dovecot accepts."""

from __future__ import annotations

import json
import secrets
from typing import Any

import yaml

from hostsim.runtime.host import Host
from robomail_plugin.credentials.records import OAuthRecord
from robomail_plugin.plugin import plugin

RECORD = "Mail"


def new_user(sandbox: Any) -> tuple[str, str]:
    name = f"p{secrets.token_hex(4)}@example.test"
    password = secrets.token_urlsafe(10)
    sandbox.add_user(name, password)
    return name, password


def add_oauth_record(fake_provider: Any, username: str, name: str = RECORD) -> str:
    """Registers a client, mints a refresh token for ``username``, stores the record; returns
    the refresh token (tests revoke it)."""
    client_id = "c-" + secrets.token_hex(4)
    secret = secrets.token_urlsafe(16)
    fake_provider.register_client(client_id, secret)
    refresh = fake_provider.mint_refresh_token(client_id, username)
    plugin.services.store.add(OAuthRecord(
        record_name=name, client_account=username, client_id=client_id, client_secret=secret,
        refresh_token=refresh, authorization_endpoint=fake_provider.authorize_url,
        token_endpoint=fake_provider.token_url, scope="mail"))
    return refresh


def pop3_params(sandbox: Any, user: tuple[str, str], *, security: str = "ssl",
                oauth: str | None = None) -> dict[str, Any]:
    port = sandbox.ports["pop3s" if security == "ssl" else "pop3"]
    params: dict[str, Any] = {"server": sandbox.host, "port": port, "security": security,
                              "ca_file": str(sandbox.ca_file), "timeout": 10}
    if oauth:
        params.update(auth="oauth", oauth_record=RECORD, sasl=oauth)
    else:
        params.update(username=user[0], password=user[1])
    return params


def smtp_params(sandbox: Any, user: tuple[str, str] | None, *, security: str = "starttls",
                oauth: str | None = None) -> dict[str, Any]:
    port = sandbox.ports["submissions" if security == "ssl" else "submission"]
    params: dict[str, Any] = {"server": sandbox.host, "port": port, "security": security,
                              "ca_file": str(sandbox.ca_file), "timeout": 10}
    if oauth:
        params.update(auth="oauth", oauth_record=RECORD, sasl=oauth)
    elif user is None:
        params.update(auth="none")
    else:
        params.update(username=user[0], password=user[1])
    return params


def run(host: Host, steps: list[dict[str, Any]], **variables: Any) -> Any:
    text = yaml.safe_dump({"name": "t", "steps": steps}, allow_unicode=True)
    return host.run_text(text, variables=variables)


def var(result: Any, name: str) -> Any:
    value = result.variables[name]
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def append(name: str, expr: str) -> dict[str, Any]:
    """A Set Variable step that appends ``|<expr>`` to variable ``name``."""
    return {"action": "Set Variable", "params": {"name": name, "value": f"{{{name}}}|{expr}"}}


def delivered(sandbox: Any, username: str, count: int = 1, timeout: float = 10.0) -> list[bytes]:
    """The messages in the user's INBOX Maildir, waiting until ``count`` have arrived."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        root = sandbox.maildir(username)
        found = sorted((p for sub in ("new", "cur") if (root / sub).is_dir()
                        for p in (root / sub).iterdir()), key=lambda p: p.name)
        if len(found) >= count or time.monotonic() > deadline:
            return [p.read_bytes() for p in found]
        time.sleep(0.05)
