"""Google and Microsoft as users meet them: the fake provider's personas, driven through robomail.

Each quirk is reproduced by a persona (``FakeProvider(persona=...)``), a sandbox Dovecot that
answers as that provider's mail servers do, or (where Dovecot cannot say it) a scripted server in
this file, and robomail is driven through it for real: editor commands, Get Refresh Token with the
fake browser, ``oauth test``, ``oauth doctor`` and IMAP/POP3/SMTP logins. Every test checks that
the error says what to change and where, or that robomail handled it unnoticed.

A record is Google's or Microsoft's to robomail by its token host; the ``as_google`` and
``as_microsoft`` fixtures make the built-in preset's endpoints the persona's (as Load Predefined
Endpoints would fill them), so the preset's behaviour applies. Records typed in by hand against a
persona are recognised by the shape of its errors only.
"""

from __future__ import annotations

import base64
import re
import secrets
import signal
import subprocess
import sys
import webbrowser
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
from click.testing import CliRunner

from hostsim.cli import main
from hostsim.fakeprovider import GOOGLE_EXPIRED, FakeProvider
from hostsim.sandbox import Sandbox
from robomail_plugin.credentials import presets
from robomail_plugin.credentials.presets import GOOGLE, MICROSOFT
from robomail_plugin.mail.connect import ConnectionSettings, open_imap, open_pop3, open_smtp
from robomail_plugin.services import Services

SECRETS: list[str] = []
USER = "alice@example.test"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
_RUNNING: list[FakeProvider] = []


# --- fixtures -----------------------------------------------------------------------------------


def _persona(name: str) -> Iterator[FakeProvider]:
    provider = FakeProvider(persona=name).start()
    _RUNNING.append(provider)
    try:
        yield provider
    finally:
        _RUNNING.remove(provider)
        provider.stop()


@pytest.fixture(scope="module")
def google() -> Iterator[FakeProvider]:
    yield from _persona("google")


@pytest.fixture(scope="module")
def microsoft() -> Iterator[FakeProvider]:
    yield from _persona("microsoft")


@pytest.fixture(autouse=True)
def _fresh():
    """Switches, clock and request logs back to defaults; no secret carried over."""
    for provider in _RUNNING:
        provider.reset()
    SECRETS.clear()
    yield
    SECRETS.clear()


@pytest.fixture(scope="module")
def google_box(google) -> Iterator[Sandbox]:
    with Sandbox(google) as box:
        yield box


@pytest.fixture(scope="module")
def microsoft_box(microsoft) -> Iterator[Sandbox]:
    with Sandbox(microsoft) as box:
        yield box


def _as(monkeypatch, provider: FakeProvider, base) -> None:
    local = attrs.evolve(
        base,
        authorization_endpoint=provider.authorize_url,
        token_endpoint=provider.token_url,
        device_authorization_endpoint=(
            provider.device_url if base.device_authorization_endpoint else None
        ),
        token_hosts=("127.0.0.1",),
    )
    others = tuple(p for p in presets.BUILTIN_PRESETS if p.key != base.key)
    monkeypatch.setattr(presets, "BUILTIN_PRESETS", (local, *others))


@pytest.fixture
def as_google(monkeypatch, google) -> FakeProvider:
    """The built-in Google preset, with the Google persona's endpoints."""
    _as(monkeypatch, google, GOOGLE)
    return google


@pytest.fixture
def as_microsoft(monkeypatch, microsoft) -> FakeProvider:
    """The built-in Microsoft preset, with the Microsoft persona's endpoints (tenant: common)."""
    _as(monkeypatch, microsoft, MICROSOFT)
    return microsoft


@pytest.fixture
def fake_browser(monkeypatch, tmp_path) -> Path:
    """Get Refresh Token's system browser is hostsim's fake browser; returns its log."""
    log = tmp_path / "browser.log"
    monkeypatch.setenv("BROWSER", f"{sys.executable} -m hostsim.fakebrowser %s")
    monkeypatch.setenv("FAKEBROWSER_LOG", str(log))
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.setattr(webbrowser, "_browsers", {})
    return log


def cli(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(main, ["oauth", *args], catch_exceptions=False)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    for secret in SECRETS:
        assert secret not in output, f"a secret leaked in the output of {args}"
    assert (result.exit_code == 0) == ok, output
    return " ".join(output.split())  # messages wrap: compare them as one line


def client(provider: FakeProvider, secret: bool = True, **settings: Any) -> tuple[str, str]:
    """A registered client: (client_id, client_secret or '')."""
    client_id = f"{provider.persona}-{secrets.token_hex(5)}"
    value = secrets.token_urlsafe(18) if secret else None
    provider.register_client(client_id, value, **settings)
    if value:
        SECRETS.append(value)
    return client_id, value or ""


def add(name: str, client_id: str, secret: str, *extra: str) -> str:
    return cli("add", name, "--account", USER, "--client-id", client_id,
               "--client-secret", secret, *extra)


def add_by_hand(name: str, provider: FakeProvider, client_id: str, secret: str,
                scope: str | None = None) -> str:
    """A record with the persona's endpoints typed in (not recognised by its token host)."""
    return add(name, client_id, secret, "--auth-endpoint", provider.authorize_url,
               "--token-endpoint", provider.token_url, "--scope", scope or provider.default_scope)


def stored_refresh(name: str) -> str:
    token = Services().store.get(name).refresh_token
    SECRETS.append(token)
    return token


def settings(protocol: str, port: int, record: str, *, security: str = "none", box=None,
             mech: str = "xoauth2") -> ConnectionSettings:
    params = {"server": "127.0.0.1", "port": port, "security": security, "auth": "oauth",
              "oauth_record": record, "sasl": mech, "timeout": 20}
    if box is not None:
        params["ca_file"] = str(box.ca_file)
    return ConnectionSettings.from_params(protocol, params)


BOX_PORTS = {"imap": "imaps", "pop3": "pop3s", "smtp": "submissions"}
OPENERS: dict[str, Callable[..., Any]] = {"imap": open_imap, "pop3": open_pop3, "smtp": open_smtp}


def login(box: Sandbox, protocol: str, record: str, mech: str = "xoauth2") -> None:
    """Logs in to a persona's sandbox over TLS and closes again."""
    conn = OPENERS[protocol](
        settings(protocol, box.ports[BOX_PORTS[protocol]], record, security="ssl", box=box,
                 mech=mech),
        Services(),
    )
    if protocol == "imap":
        conn.logout()
    else:
        conn.quit()


# --- the personas themselves ---------------------------------------------------------------------


def test_persona_token_answers_and_error_shapes(google, microsoft):
    g_id, g_secret = client(google)
    refresh = google.mint_refresh_token(g_id, USER)
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": g_id,
            "client_secret": g_secret}
    answer = requests.post(google.token_url, data=form, timeout=5).json()
    assert set(answer) == {"access_token", "expires_in", "scope", "token_type"}  # no new RT
    assert answer["expires_in"] == 3599
    google.revoke(refresh)
    refused = requests.post(google.token_url, data=form, timeout=5)
    assert refused.json() == {"error": "invalid_grant", "error_description": GOOGLE_EXPIRED}

    m_id, _ = client(microsoft, secret=False)
    old = microsoft.mint_refresh_token(m_id, USER)
    form = {"grant_type": "refresh_token", "refresh_token": old, "client_id": m_id}
    answer = requests.post(microsoft.token_url, data=form, timeout=5).json()
    assert set(answer) == {"token_type", "scope", "expires_in", "ext_expires_in", "access_token",
                           "refresh_token"}
    body = requests.post(microsoft.token_url, data={**form, "client_secret": "x"},
                         timeout=5).json()
    assert body["error"] == "invalid_client" and body["error_codes"] == [700025]
    lines = body["error_description"].split("\r\n")
    assert lines[0].startswith("AADSTS700025: Client is public")
    assert [line.split(":")[0] for line in lines[1:]] == ["Trace ID", "Correlation ID",
                                                         "Timestamp"]
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)
    assert microsoft.token_url.endswith("/common/oauth2/v2.0/token")


def test_google_returning_user_gets_a_refresh_token_only_with_prompt_consent(google):
    """At the persona: offline access for the first consent; again only with prompt=consent."""
    g_id, g_secret = client(google)

    def sign_in(**extra: str) -> dict:
        verifier = secrets.token_urlsafe(48)
        import hashlib

        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        redirect = "http://127.0.0.1:9/"
        resp = requests.get(google.authorize_url, allow_redirects=False, timeout=5, params={
            "client_id": g_id, "redirect_uri": redirect, "response_type": "code",
            "code_challenge": challenge, "code_challenge_method": "S256",
            "scope": google.default_scope, **extra})
        code = re.search(r"code=([^&]+)", resp.headers["Location"]).group(1)
        return requests.post(google.token_url, timeout=5, data={
            "grant_type": "authorization_code", "code": requests.utils.unquote(code),
            "redirect_uri": redirect, "code_verifier": verifier, "client_id": g_id,
            "client_secret": g_secret}).json()

    assert "refresh_token" not in sign_in()  # online access only
    assert "refresh_token" not in sign_in(access_type="offline")  # consented before
    assert "refresh_token" in sign_in(access_type="offline", prompt="consent")


def test_hostsim_fake_provider_answers_as_a_persona(tmp_path):
    hostsim = Path(sys.executable).with_name("hostsim")
    proc = subprocess.Popen([str(hostsim), "fake-provider", "--persona", "microsoft"],
                            stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(lines)
        assert "answering as Microsoft" in text
        token_url = re.search(r"token:\s+(\S+)", text).group(1)
        assert token_url.endswith("/common/oauth2/v2.0/token")
        answer = requests.post(token_url, data={"grant_type": "refresh_token",
                                                "client_id": "nobody"}, timeout=5).json()
        assert answer["error_codes"] == [700016]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


