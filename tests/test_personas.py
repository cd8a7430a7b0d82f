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
import contextlib
import json
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
from click.testing import CliRunner

from hostsim.cli.main import main
from hostsim.devservers.fakeprovider import GOOGLE_EXPIRED, FakeProvider
from hostsim.devservers.sandbox import Sandbox
from robomail_plugin import errors
from robomail_plugin.credentials import presets
from robomail_plugin.credentials.presets import GOOGLE, MICROSOFT
from robomail_plugin.services import Services
from robomail_plugin.transport.connect import ConnectionSettings, open_imap, open_pop3, open_smtp

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


# --- scripted mail servers (what Dovecot cannot say) ---------------------------------------------


class ScriptedServer:
    """A loopback server that speaks one scripted session per connection (a thread each)."""

    def __init__(self, session: Callable[[ScriptedServer, Any, Any], None]) -> None:
        self.session = session
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.commands: list[str] = []  # the command lines received, tokens cut off
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with (conn, conn.makefile("rb") as rfile, conn.makefile("wb") as wfile,
              contextlib.suppress(OSError, ValueError)):
            self.session(self, rfile, wfile)

    def close(self) -> None:
        self.sock.close()


def say(wfile, *lines: str) -> None:
    wfile.write("".join(line + "\r\n" for line in lines).encode())
    wfile.flush()


def hear(server: ScriptedServer, rfile) -> str:
    line = rfile.readline().decode().rstrip("\r\n")
    if not line:
        raise ValueError("closed")
    server.commands.append(" ".join(line.split()[:2]))  # the verb and mechanism, no token
    return line


def bearer(b64: str) -> str:
    """The access token in a XOAUTH2 client response."""
    raw = base64.b64decode(b64).decode()
    return re.search(r"auth=Bearer ([^\x01]+)", raw).group(1)


# The error challenge Google documents for XOAUTH2, and Gmail's failure line.
GMAIL_CHALLENGE = {"status": "401", "schemes": "bearer mac", "scope": "https://mail.google.com/"}


@pytest.fixture
def gmail_imap(google) -> Iterator[ScriptedServer]:
    """Gmail's IMAP as far as a login goes: its greeting, its XOAUTH2 error challenge."""

    def session(server: ScriptedServer, rfile, wfile) -> None:
        say(wfile, "* OK Gimap ready for requests from 127.0.0.1")
        while True:
            tag, command, *rest = hear(server, rfile).split()
            if command.upper() == "CAPABILITY":
                say(wfile, "* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST "
                    "CHILDREN X-GM-EXT-1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=OAUTHBEARER",
                    f"{tag} OK Thats all she wrote!")
            elif command.upper() == "AUTHENTICATE":
                say(wfile, "+ ")
                token = bearer(rfile.readline().decode().strip())
                if google.is_active(token):
                    say(wfile, f"{tag} OK {USER} authenticated (Success)")
                    continue
                blob = base64.b64encode(json.dumps(GMAIL_CHALLENGE).encode()).decode()
                say(wfile, f"+ {blob}")
                rfile.readline()  # the client's empty answer
                say(wfile, f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
            elif command.upper() == "LOGOUT":
                say(wfile, "* BYE LOGOUT Requested", f"{tag} OK 73 good day (Success)")
                return
            else:
                say(wfile, f"{tag} BAD Unknown command")

    server = ScriptedServer(session)
    yield server
    server.close()


@pytest.fixture
def outlook_pop3(microsoft) -> Iterator[ScriptedServer]:
    """Outlook's POP3 login: the token only on a line of its own after AUTH XOAUTH2 and "+"."""

    def session(server: ScriptedServer, rfile, wfile) -> None:
        say(wfile, "+OK The Microsoft Exchange POP3 service is ready.")
        while True:
            words = hear(server, rfile).split()
            verb = words[0].upper()
            if verb == "CAPA":
                say(wfile, "+OK", "TOP", "UIDL", "SASL PLAIN XOAUTH2", "USER", ".")
            elif verb == "AUTH" and len(words) > 2:  # the response on the AUTH line
                say(wfile, "-ERR Protocol error. Connection is closed. 10")
                return
            elif verb == "AUTH":
                say(wfile, "+ ")
                token = bearer(rfile.readline().decode().strip())
                if microsoft.is_active(token):
                    say(wfile, "+OK User successfully authenticated.")
                else:
                    say(wfile, "-ERR Authentication failure: unknown user name or bad password.")
            elif verb == "STAT":
                say(wfile, "+OK 0 0")
            elif verb == "QUIT":
                say(wfile, "+OK Microsoft Exchange Server POP3 server signing off.")
                return
            else:
                say(wfile, "-ERR Command is not valid in this state.")

    server = ScriptedServer(session)
    yield server
    server.close()


SMTP_AUTH_DISABLED = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
    "[SN4PR0501CA0071.namprd05.prod.outlook.com]"
)


@pytest.fixture
def outlook_smtp() -> Iterator[ScriptedServer]:
    """Outlook's SMTP for a tenant whose SMTP AUTH is disabled."""

    def session(server: ScriptedServer, rfile, wfile) -> None:
        say(wfile, "220 SN4PR0501CA0071.outlook.office365.com Microsoft ESMTP MAIL Service ready")
        while True:
            verb = hear(server, rfile).split()[0].upper()
            if verb == "EHLO":
                say(wfile, "250-SN4PR0501CA0071.outlook.office365.com Hello [127.0.0.1]",
                    "250-SIZE 157286400", "250-PIPELINING", "250-ENHANCEDSTATUSCODES",
                    "250-AUTH LOGIN XOAUTH2", "250 8BITMIME")
            elif verb == "AUTH":
                say(wfile, SMTP_AUTH_DISABLED)
            elif verb == "QUIT":
                say(wfile, "221 2.0.0 Service closing transmission channel")
                return
            else:
                say(wfile, "500 5.3.3 Unrecognized command")

    server = ScriptedServer(session)
    yield server
    server.close()


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


# --- Google -------------------------------------------------------------------------------------


def test_google_get_refresh_token_twice_and_refresh_keeps_the_refresh_token(
    as_google, fake_browser
):
    g_id, g_secret = client(as_google)
    assert "Google (Gmail)'s endpoints" in add("gmail", g_id, g_secret, "--provider", "google")
    assert "saved it in the record" in cli("get-refresh-token", "gmail", "--timeout", "30")
    asked = as_google.last_authorize_params
    assert (asked["access_type"], asked["prompt"]) == ("offline", "consent")
    first = stored_refresh("gmail")
    # A returning user: robomail's prompt=consent makes Google send a refresh token again.
    assert "saved it in the record" in cli("get-refresh-token", "gmail", "--timeout", "30")
    second = stored_refresh("gmail")
    assert second != first
    before = len(as_google.token_requests)
    for _ in range(2):
        assert "works: got an access token" in cli("test", "gmail")
    assert [r["grant_type"] for r in as_google.token_requests[before:]] == ["refresh_token"] * 2
    assert all(r["refresh_token"] == second for r in as_google.token_requests[before:])
    assert stored_refresh("gmail") == second  # Google sent none: the old one is kept


def test_google_without_offline_access_gives_no_refresh_token(google, fake_browser):
    """A record with Google's persona typed in by hand is not recognised as Google's, so
    access_type=offline is not sent: the error says what Google needs."""
    g_id, g_secret = client(google)
    add_by_hand("by-hand", google, g_id, g_secret)
    out = cli("get-refresh-token", "by-hand", "--timeout", "30", ok=False)
    assert "no refresh token" in out
    assert "access_type=offline" in out and "prompt=consent" in out
    assert "Load Predefined Endpoints: google" in out
    assert "access_type" not in google.last_authorize_params


def test_google_testing_app_refresh_token_ends_after_7_days(as_google, fake_browser):
    g_id, g_secret = client(as_google, testing=True)
    add("testing-app", g_id, g_secret, "--provider", "google")
    cli("get-refresh-token", "testing-app", "--timeout", "30")
    refresh = stored_refresh("testing-app")
    as_google.advance(days=6.9)
    assert "works" in cli("test", "testing-app")
    as_google.advance(days=0.2)
    out = cli("test", "testing-app", ok=False)
    assert "token_refused" in out and "invalid_grant" in out
    assert "'Testing' status" in out and "OAuth consent screen" in out
    assert "'In production'" in out and "get-refresh-token testing-app" in out
    assert stored_refresh("testing-app") == refresh  # kept
    doctor = cli("doctor", "testing-app")
    assert "Fix these" in doctor and "refresh on" in doctor and "'Testing' status" in doctor


def test_google_hint_by_the_error_shape_when_the_token_host_is_not_google(google):
    g_id, g_secret = client(google, testing=True)
    add_by_hand("proxied", google, g_id, g_secret)
    Services().store.set_refresh_token("proxied", google.mint_refresh_token(g_id, USER))
    google.advance(days=8)
    out = cli("test", "proxied", ok=False)
    assert "Token has been expired or revoked." not in out  # the hint, not the raw text
    assert "'Testing' status" in out and "7 days" in out


def test_google_device_flow_is_refused_for_the_gmail_scope(as_google):
    g_id, g_secret = client(as_google)
    add("gmail-device", g_id, g_secret, "--provider", "google")
    out = cli("get-refresh-token", "gmail-device", "--device", ok=False)
    assert "no device-code flow for Gmail" in out  # the preset has no device endpoint
    cli("edit", "gmail-device", "--device-endpoint", as_google.device_url)
    assert "Device Authorization Endpoint is set" in cli("doctor", "gmail-device")
    out = cli("get-refresh-token", "gmail-device", "--device", ok=False)
    assert "authorization_failed" in out and "invalid_scope" in out
    assert "does not allow Gmail's scope" in out
    assert "--device-endpoint ''" in out


def test_google_desktop_client_without_its_secret(as_google, fake_browser):
    g_id, g_secret = client(as_google)
    add("no-secret", g_id, "", "--provider", "google")
    assert "Client Secret is empty" in cli("doctor", "no-secret")
    out = cli("get-refresh-token", "no-secret", "--timeout", "30", ok=False)
    assert "invalid_request" in out and "'Desktop app' OAuth client has a Client Secret" in out
    cli("edit", "no-secret", "--client-secret", g_secret)
    assert "saved it" in cli("get-refresh-token", "no-secret", "--timeout", "30")


@pytest.mark.sandbox
def test_google_mail_refuses_a_token_without_the_mail_scope(as_google, google_box,
                                                            fake_browser):
    g_id, g_secret = client(as_google)
    add("readonly", g_id, g_secret, "--provider", "google")
    cli("edit", "readonly", "--scope", GMAIL_READONLY)
    assert "needs the scope https://mail.google.com/" in cli("doctor", "readonly", "--protocol",
                                                             "imap")
    cli("get-refresh-token", "readonly", "--timeout", "30")
    assert "works" in cli("test", "readonly")  # the token is fine, for the Gmail API
    with pytest.raises(errors.LoginFailed) as info:
        login(google_box, "imap", "readonly")
    text = str(info.value)
    assert "status 401" in text
    assert "Google's IMAP needs the scope https://mail.google.com/" in text
    assert "load-predefined readonly google" in text
    cli("load-predefined", "readonly", "google")
    cli("get-refresh-token", "readonly", "--timeout", "30")
    for protocol in ("imap", "pop3", "smtp"):
        login(google_box, protocol, "readonly")


def test_gmail_xoauth2_error_challenge_is_decoded_and_explained(google, gmail_imap):
    g_id, g_secret = client(google)
    add_by_hand("gmail-api", google, g_id, g_secret, scope=GMAIL_READONLY)
    Services().store.set_refresh_token(
        "gmail-api", google.mint_refresh_token(g_id, USER, scope=GMAIL_READONLY))
    started = time.monotonic()
    with pytest.raises(errors.LoginFailed) as info:
        open_imap(settings("imap", gmail_imap.port, "gmail-api"), Services())
    assert time.monotonic() - started < 10  # the challenge was answered, nothing hung
    text = str(info.value)
    assert "Invalid credentials (Failure)" in text
    assert "status 401 (schemes=bearer mac, scope=https://mail.google.com/)" in text
    assert "asks for a token with the scope https://mail.google.com/" in text
    assert sum(" AUTHENTICATE" in c for c in gmail_imap.commands) == 2  # the first, a fresh one


# --- Microsoft ----------------------------------------------------------------------------------


def test_microsoft_rotates_the_refresh_token_on_every_refresh(as_microsoft, fake_browser):
    m_id, _ = client(as_microsoft, secret=False)
    add("outlook", m_id, "", "--provider", "microsoft")
    cli("get-refresh-token", "outlook", "--timeout", "30")
    assert urlhost(as_microsoft.last_authorize_params["redirect_uri"]) == "localhost"
    seen = [stored_refresh("outlook")]
    for _ in range(2):
        assert "works" in cli("test", "outlook")
        seen.append(stored_refresh("outlook"))
    assert len(set(seen)) == 3  # a new one each time, saved without the user noticing
    reused = requests.post(as_microsoft.token_url, timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": seen[0], "client_id": m_id}).json()
    assert reused["error"] == "invalid_grant"  # the old one stopped working after use


def urlhost(url: str) -> str:
    return re.match(r"https?://([^:/]+)", url).group(1)


def test_microsoft_public_client_sending_a_secret(as_microsoft, fake_browser):
    m_id, _ = client(as_microsoft, secret=False)
    wrong = secrets.token_urlsafe(12)
    SECRETS.append(wrong)
    add("public", m_id, wrong, "--provider", "microsoft")
    out = cli("get-refresh-token", "public", "--timeout", "30", ok=False)
    assert "invalid_client" in out and "must not send a client secret" in out
    assert "--client-secret ''" in out
    assert re.search(r"Diagnostics: AADSTS700025, correlation id [0-9a-f-]{36}, trace id", out)
    doctor = cli("doctor", "public")
    assert "Fix these" in doctor and "AADSTS700025" in doctor
    cli("edit", "public", "--client-secret", "")
    assert "saved it" in cli("get-refresh-token", "public", "--timeout", "30")
    doctor = cli("doctor", "public", "--json")
    assert "something worked since" in doctor


def test_microsoft_wrong_secret_value(as_microsoft, fake_browser):
    m_id, _ = client(as_microsoft)
    wrong = secrets.token_urlsafe(12)
    SECRETS.append(wrong)
    add("web-app", m_id, wrong, "--provider", "microsoft")
    out = cli("get-refresh-token", "web-app", "--timeout", "30", ok=False)
    assert "AADSTS7000215" in out and "Value, not its Secret ID" in out
    assert "Certificates & secrets" in out


def test_microsoft_device_code_needs_public_client_flows(as_microsoft):
    m_id, _ = client(as_microsoft, secret=False)
    add("device", m_id, "", "--provider", "microsoft")
    out = cli("get-refresh-token", "device", "--device", ok=False)
    assert "enter the code" in out
    assert "AADSTS7000218" in out and "'Allow public client flows': Yes" in out
    assert "Authentication > Advanced settings" in out
    as_microsoft.register_client(m_id, None, public_client_flows=True)  # the admin fixed it
    assert "saved it" in cli("get-refresh-token", "device", "--device")
    as_microsoft.deny_consent = True
    out = cli("get-refresh-token", "device", "--device", ok=False)
    assert "authorization_declined: the user declined" in out


def test_microsoft_single_tenant_app_on_common(as_microsoft, fake_browser):
    tenant = "0d6e9d1f-4c8e-4d6b-9a3e-2f1c5b7a8e90"
    m_id, _ = client(as_microsoft, secret=False, tenant=tenant)
    add("tenant", m_id, "", "--provider", "microsoft")
    out = cli("get-refresh-token", "tenant", "--timeout", "30", ok=False)
    assert "invalid_request" in out and "single-tenant" in out
    assert "--tenant <tenant-id>" in out and "Directory (tenant) ID" in out
    assert "Diagnostics: AADSTS50194" in out
    assert "AADSTS50194" in cli("doctor", "tenant")
    cli("load-predefined", "tenant", "microsoft", "--tenant", tenant)
    assert "saved it" in cli("get-refresh-token", "tenant", "--timeout", "30")
    assert "works" in cli("test", "tenant")


def test_microsoft_missing_consent(as_microsoft, fake_browser):
    m_id, _ = client(as_microsoft, secret=False)
    add("consent", m_id, "", "--provider", "microsoft")
    cli("get-refresh-token", "consent", "--timeout", "30")
    refresh = stored_refresh("consent")
    as_microsoft.withdraw_consent(m_id, USER)
    out = cli("test", "consent", ok=False)
    assert "token_refused" in out and "invalid_grant" in out
    assert "not consented" in out and "'Grant admin consent'" in out
    assert "Diagnostics: AADSTS65001" in out
    assert stored_refresh("consent") == refresh
    cli("get-refresh-token", "consent", "--timeout", "30")  # consents again
    assert "works" in cli("test", "consent")


@pytest.mark.parametrize(("kind", "code", "words"), [
    ("mfa", "AADSTS50076", "multi-factor sign-in is required"),
    ("conditional_access", "AADSTS53003", "Conditional Access policy blocks"),
])
def test_microsoft_interaction_required(as_microsoft, fake_browser, kind, code, words):
    m_id, _ = client(as_microsoft, secret=False)
    add("mfa", m_id, "", "--provider", "microsoft")
    cli("get-refresh-token", "mfa", "--timeout", "30")
    as_microsoft.interaction_required = kind
    out = cli("test", "mfa", ok=False)
    assert "interaction_required" in out and "sign in again" in out
    assert words in out and f"Diagnostics: {code}" in out
    cli("get-refresh-token", "mfa", "--timeout", "30")  # the interactive sign-in does the MFA
    assert "works" in cli("test", "mfa")


def test_microsoft_refresh_token_unused_for_90_days(as_microsoft, fake_browser):
    m_id, _ = client(as_microsoft, secret=False)
    add("idle", m_id, "", "--provider", "microsoft")
    cli("get-refresh-token", "idle", "--timeout", "30")
    as_microsoft.advance(days=91)
    out = cli("test", "idle", ok=False)
    assert "AADSTS700082" in out and "not used for 90 days" in out


def test_microsoft_without_offline_access_gives_no_refresh_token(as_microsoft, fake_browser):
    m_id, _ = client(as_microsoft, secret=False)
    add("online", m_id, "", "--provider", "microsoft")
    cli("edit", "online", "--scope", MICROSOFT.scope.replace(" offline_access", ""))
    assert "Scope lacks offline_access" in cli("doctor", "online")
    out = cli("get-refresh-token", "online", "--timeout", "30", ok=False)
    assert "no refresh token" in out and "offline_access in the Scope" in out


@pytest.mark.sandbox
def test_microsoft_graph_scopes_give_tokens_imap_refuses(as_microsoft, microsoft_box,
                                                         fake_browser):
    m_id, _ = client(as_microsoft, secret=False)
    add("graph", m_id, "", "--provider", "microsoft")
    cli("edit", "graph", "--scope", "https://graph.microsoft.com/Mail.Read offline_access")
    doctor = cli("doctor", "graph", "--protocol", "imap")
    assert "Microsoft Graph" in doctor and "IMAP.AccessAsUser.All" in doctor
    cli("get-refresh-token", "graph", "--timeout", "30")
    assert "works" in cli("test", "graph")  # a good token, for the wrong audience
    with pytest.raises(errors.LoginFailed) as info:
        login(microsoft_box, "imap", "graph")
    text = str(info.value)
    assert "Microsoft's IMAP needs the scope https://outlook.office.com/IMAP.AccessAsUser.All" in (
        text)
    assert "tokens for Microsoft Graph" in text and "load-predefined graph microsoft" in text
    cli("load-predefined", "graph", "microsoft")
    cli("get-refresh-token", "graph", "--timeout", "30")
    login(microsoft_box, "imap", "graph")


@pytest.mark.sandbox
@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_microsoft_offers_xoauth2_not_oauthbearer(as_microsoft, microsoft_box, fake_browser,
                                                  protocol):
    m_id, _ = client(as_microsoft, secret=False)
    add("outlook-mail", m_id, "", "--provider", "microsoft")
    cli("get-refresh-token", "outlook-mail", "--timeout", "30")
    login(microsoft_box, protocol, "outlook-mail")  # XOAUTH2 works
    with pytest.raises(errors.LoginFailed) as info:
        login(microsoft_box, protocol, "outlook-mail", mech="oauthbearer")
    text = str(info.value)
    assert "does not offer AUTH" in text and "OAUTHBEARER" in text
    assert "set sasl: xoauth2" in text and "Microsoft's servers take XOAUTH2 only" in text


def test_microsoft_pop3_two_step_auth(as_microsoft, fake_browser, outlook_pop3):
    m_id, _ = client(as_microsoft, secret=False)
    add("outlook-pop", m_id, "", "--provider", "microsoft")
    cli("get-refresh-token", "outlook-pop", "--timeout", "30")
    pop = open_pop3(settings("pop3", outlook_pop3.port, "outlook-pop"), Services())
    try:
        assert pop.stat() == (0, 0)
    finally:
        pop.quit()
    assert "AUTH XOAUTH2" in outlook_pop3.commands  # AUTH alone, the token on its own line


def test_microsoft_smtp_auth_disabled(as_microsoft, fake_browser, outlook_smtp):
    m_id, _ = client(as_microsoft, secret=False)
    add("outlook-smtp", m_id, "", "--provider", "microsoft")
    cli("get-refresh-token", "outlook-smtp", "--timeout", "30")
    before = len(as_microsoft.token_requests)
    with pytest.raises(errors.LoginFailed) as info:
        open_smtp(settings("smtp", outlook_smtp.port, "outlook-smtp"), Services())
    text = str(info.value)
    assert info.value.server_reply == SMTP_AUTH_DISABLED
    assert "SMTP AUTH is turned off" in text and "A new token cannot help" in text
    assert "'Authenticated SMTP'" in text and "SmtpClientAuthenticationDisabled $false" in text
    assert outlook_smtp.commands.count("AUTH XOAUTH2") == 1  # no pointless second try
    fetched = as_microsoft.token_requests[before:]
    assert len(fetched) == 1  # this process's first token; no forced refresh after the 535
    doctor = cli("doctor", "outlook-smtp", "--protocol", "smtp")
    assert "smtp login on" in doctor and "Authenticated SMTP" in doctor


# --- the doctor ---------------------------------------------------------------------------------


def test_doctor_checks_a_microsoft_record_before_sign_in(as_microsoft):
    add("personal", "cid", "a-secret-value", "--provider", "microsoft", "--tenant", "consumers")
    SECRETS.append("a-secret-value")
    cli("edit", "personal", "--scope", "Mail.Read https://outlook.office.com/IMAP.AccessAsUser.All")
    result = CliRunner().invoke(main, ["oauth", "--json", "doctor", "personal", "--protocol",
                                       "imap,smtp"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)["data"]
    assert data["provider"] == "microsoft"
    problems = {f["topic"]: f["text"] for f in data["findings"] if f["level"] == "problem"}
    assert set(problems) >= {"scope", "offline", "client_secret"}
    assert "Mail.Read (Microsoft Graph)" in " ".join(
        f["text"] for f in data["findings"] if f["topic"] == "scope")
    assert "SMTP.Send" in " ".join(f["text"] for f in data["findings"] if f["topic"] == "scope")
    assert "consumers" in problems["client_secret"] and "a-secret-value" not in result.output
    cli("load-predefined", "personal", "microsoft", "--tenant", "consumers")
    cli("edit", "personal", "--client-secret", "")
    out = cli("doctor", "personal")
    assert "No problems found." in out
    assert "http://localhost" in out and "XOAUTH2 only" in out


def test_doctor_on_a_google_record_and_unknown_protocols(as_google):
    add("g", "cid.apps", "", "--provider", "google")
    out = cli("doctor", "g", "--protocol", "pop3")
    assert "Client Secret is empty" in out and "POP3: Scope has https://mail.google.com/" in out
    assert "1 problem(s) to fix." in out
    assert "Unknown protocol 'ews'" in cli("doctor", "g", "--protocol", "ews", ok=False)
    assert "record_not_found" in cli("doctor", "nope", ok=False)
