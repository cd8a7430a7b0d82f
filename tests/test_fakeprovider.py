"""The fake OAuth provider answers like a real one, over real HTTP on loopback."""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import secrets
import sys
import threading
import time
import webbrowser
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from hostsim.devservers.fakebrowser import FakeBrowserError, follow
from hostsim.devservers.fakeprovider import FakeProvider

REDIRECT = "http://127.0.0.1:53682/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(p: FakeProvider, client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    params = {
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-1",
        "scope": "mail offline_access",
        **extra,
    }
    resp = requests.get(p.authorize_url, params=params, allow_redirects=False, timeout=5)
    assert resp.status_code == 302, resp.text
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token(p: FakeProvider, auth: tuple[str, str] | None = None, **form: str) -> requests.Response:
    return requests.post(p.token_url, data=form, auth=auth, timeout=10)


def code_grant(p: FakeProvider, client: tuple[str, str]) -> dict:
    verifier, challenge = pkce()
    code = authorize(p, client[0], challenge)["code"]
    resp = token(
        p,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
        client_id=client[0],
        client_secret=client[1],
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def introspect(p: FakeProvider, tok: str) -> dict:
    resp = requests.post(p.introspect_url, data={"token": tok}, timeout=5)
    assert resp.status_code == 200
    return resp.json()


def test_authorization_code_with_pkce(fake_provider, oauth_client):
    fake_provider.consent_user = "bob@example.test"
    verifier, challenge = pkce()
    answer = authorize(fake_provider, oauth_client[0], challenge, login_hint="bob")
    assert answer["state"] == "st-1"
    assert fake_provider.last_authorize_params["login_hint"] == "bob"
    # The client secret in HTTP Basic works as well as in the form.
    resp = token(
        fake_provider,
        auth=oauth_client,
        grant_type="authorization_code",
        code=answer["code"],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "mail offline_access"
    assert body["refresh_token"] != body["access_token"]
    assert introspect(fake_provider, body["access_token"]) == {
        "active": True,
        "username": "bob@example.test",
        "scope": "mail offline_access",
        "client_id": oauth_client[0],
        "token_type": "Bearer",
        "exp": pytest.approx(time.time() + 3600, abs=5),
    }
    assert fake_provider.token_requests[-1]["code_verifier"] == verifier
    # A code is single-use.
    again = token(
        fake_provider,
        auth=oauth_client,
        grant_type="authorization_code",
        code=answer["code"],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("what", ["verifier", "redirect_uri", "secret", "no_secret"])
def test_code_exchange_checks(fake_provider, oauth_client, what):
    verifier, challenge = pkce()
    code = authorize(fake_provider, oauth_client[0], challenge)["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": oauth_client[0],
        "client_secret": oauth_client[1],
    }
    if what == "verifier":
        form["code_verifier"] = pkce()[0]
    elif what == "redirect_uri":
        form["redirect_uri"] = "http://127.0.0.1:1/other"
    elif what == "secret":
        form["client_secret"] = "wrong"
    else:
        del form["client_secret"]
    resp = token(fake_provider, **form)
    expected = (
        ("invalid_grant", 400)
        if what in ("verifier", "redirect_uri")
        else (
            "invalid_client",
            401,
        )
    )
    assert (resp.json()["error"], resp.status_code) == expected


def test_public_client_must_not_send_secret(fake_provider, public_oauth_client):
    verifier, challenge = pkce()
    code = authorize(fake_provider, public_oauth_client, challenge)["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": public_oauth_client,
    }
    bad = token(fake_provider, **form, client_secret="anything")
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"
    assert "AADSTS700025" in bad.json()["error_description"]
    good = token(fake_provider, **form)  # the code was not consumed by the refused request
    assert good.status_code == 200, good.text


def test_authorize_rejections(fake_provider, oauth_client):
    base = {
        "client_id": oauth_client[0],
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
        "state": "s",
    }

    def get(**changes: str | None) -> requests.Response:
        params = {k: v for k, v in {**base, **changes}.items() if v is not None}
        return requests.get(
            fake_provider.authorize_url, params=params, allow_redirects=False, timeout=5
        )

    assert get(client_id="nobody").status_code == 400
    assert get(redirect_uri="https://evil.example/cb").status_code == 400
    assert get(redirect_uri="http://192.0.2.1/cb").status_code == 400
    for changes, error in [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ]:
        resp = get(**changes)
        assert resp.status_code == 302
        query = parse_qs(urlsplit(resp.headers["Location"]).query)
        assert query["error"] == [error] and query["state"] == ["s"]
    fake_provider.deny_consent = True
    query = parse_qs(urlsplit(get().headers["Location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["s"]
    assert "code" not in query
    assert get(redirect_uri="http://localhost:8080/x").status_code == 302


def test_refresh_without_rotation(fake_provider, oauth_client):
    first = code_grant(fake_provider, oauth_client)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
        "client_id": oauth_client[0],
        "client_secret": oauth_client[1],
    }
    for _ in range(2):
        resp = token(fake_provider, **form)
        assert resp.status_code == 200, resp.text
        assert "refresh_token" not in resp.json()
        assert introspect(fake_provider, resp.json()["access_token"])["active"] is True
    other_client = ("someone-else", "x")
    fake_provider.register_client(*other_client)
    stolen = token(
        fake_provider,
        **{**form, "client_id": other_client[0], "client_secret": other_client[1]},
    )
    assert stolen.json()["error"] == "invalid_grant"


def test_refresh_with_rotation(fake_provider, oauth_client):
    fake_provider.rotate_refresh_tokens = True
    old = fake_provider.mint_refresh_token(oauth_client[0], "carol@example.test")
    form = {"grant_type": "refresh_token", "client_id": oauth_client[0]}
    resp = token(fake_provider, auth=oauth_client, **form, refresh_token=old)
    assert resp.status_code == 200, resp.text
    new = resp.json()["refresh_token"]
    assert new != old
    assert introspect(fake_provider, resp.json()["access_token"])["username"] == (
        "carol@example.test"
    )
    reused = token(fake_provider, auth=oauth_client, **form, refresh_token=old)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert token(fake_provider, auth=oauth_client, **form, refresh_token=new).status_code == 200


def test_revoked_refresh_token(fake_provider, oauth_client):
    ref = fake_provider.mint_refresh_token(oauth_client[0], "alice@example.test")
    fake_provider.revoke(ref)
    resp = token(fake_provider, auth=oauth_client, grant_type="refresh_token", refresh_token=ref)
    assert resp.json()["error"] == "invalid_grant"


def test_expires_in_as_string(fake_provider, oauth_client):
    fake_provider.expires_in_as_string = True
    fake_provider.access_token_lifetime = 120
    assert code_grant(fake_provider, oauth_client)["expires_in"] == "120"


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("invalid_grant", 400, "invalid_grant"),
        ("invalid_client", 401, "invalid_client"),
        ("server_error", 500, "server_error"),
        ("rate_limited", 429, "temporarily_unavailable"),
    ],
)
def test_fail_next(fake_provider, oauth_client, kind, status, error):
    ref = fake_provider.mint_refresh_token(oauth_client[0], "alice@example.test")
    fake_provider.fail_next(kind, count=2)
    form = {"grant_type": "refresh_token", "refresh_token": ref}
    for _ in range(2):
        resp = token(fake_provider, auth=oauth_client, **form)
        assert (resp.status_code, resp.json()["error"]) == (status, error)
        if kind == "rate_limited":
            assert resp.headers["Retry-After"] == "1"
    assert token(fake_provider, auth=oauth_client, **form).status_code == 200
    assert len(fake_provider.token_requests) == 3
    assert fake_provider.token_requests[0]["refresh_token"] == ref


def test_fail_next_slow_and_reset(fake_provider, oauth_client):
    ref = fake_provider.mint_refresh_token(oauth_client[0], "alice@example.test")
    fake_provider.slow_seconds = 0.4
    fake_provider.fail_next("slow")
    started = time.monotonic()
    resp = token(fake_provider, auth=oauth_client, grant_type="refresh_token", refresh_token=ref)
    assert resp.status_code == 200
    assert time.monotonic() - started >= 0.4
    with pytest.raises(ValueError, match="unknown failure kind"):
        fake_provider.fail_next("bogus")
    fake_provider.fail_next("server_error")
    fake_provider.rotate_refresh_tokens = True
    fake_provider.reset()
    assert fake_provider.token_requests == []
    assert fake_provider.rotate_refresh_tokens is False
    resp = token(fake_provider, auth=oauth_client, grant_type="refresh_token", refresh_token=ref)
    assert resp.status_code == 200  # the queued failure is gone, the client and token stay


def test_introspection(fake_provider):
    live = fake_provider.mint_access_token("alice@example.test")
    assert introspect(fake_provider, live)["username"] == "alice@example.test"
    resp = requests.get(fake_provider.introspect_url, params={"token": live}, timeout=5)
    assert resp.json()["active"] is True
    assert introspect(fake_provider, "not-a-token") == {"active": False}
    expired = fake_provider.mint_access_token("alice@example.test", lifetime=-1)
    assert introspect(fake_provider, expired) == {"active": False}
    fake_provider.revoke(live)
    assert introspect(fake_provider, live) == {"active": False}
    fake_provider.introspection_down = True
    assert (
        requests.post(fake_provider.introspect_url, data={"token": live}, timeout=5).status_code
        == 500
    )


def test_device_flow(fake_provider, public_oauth_client):
    resp = requests.post(
        fake_provider.device_url,
        data={"client_id": public_oauth_client, "scope": "mail"},
        timeout=5,
    )
    dev = resp.json()
    assert set(dev) >= {"device_code", "user_code", "verification_uri", "interval", "expires_in"}
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": dev["device_code"],
        "client_id": public_oauth_client,
    }
    first = token(fake_provider, **form)
    assert (first.status_code, first.json()["error"]) == (400, "authorization_pending")
    second = token(fake_provider, **form)  # auto-approved after the first poll
    assert second.status_code == 200 and second.json()["scope"] == "mail"
    assert token(fake_provider, **form).json()["error"] == "invalid_grant"  # single use

    fake_provider.device_auto_approve = False
    dev = requests.post(
        fake_provider.device_url, data={"client_id": public_oauth_client}, timeout=5
    ).json()
    form["device_code"] = dev["device_code"]
    for _ in range(3):
        assert token(fake_provider, **form).json()["error"] == "authorization_pending"
    page = requests.get(dev["verification_uri_complete"], timeout=5)
    assert "approved" in page.text
    assert "refresh_token" in token(fake_provider, **form).json()
    with pytest.raises(KeyError):
        fake_provider.approve_device("NOPE-NOPE")


# --- the fake browser ----------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A one-page loopback listener like the browser flow's: (redirect_uri, seen queries)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(urlsplit(self.path).query)
            body = b"Authorization complete. You can close this window."
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/cb", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def auth_url(p: FakeProvider, client_id: str, redirect_uri: str) -> str:
    query = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
        "state": "xyz",
    }
    return p.authorize_url + "?" + urlencode(query)


def test_fakebrowser_follow(fake_provider, public_oauth_client, listener):
    redirect_uri, seen = listener
    text = follow(auth_url(fake_provider, public_oauth_client, redirect_uri))
    assert text == "Authorization complete. You can close this window."
    query = parse_qs(seen[0])
    assert query["state"] == ["xyz"] and query["code"][0]
    with pytest.raises(FakeBrowserError, match="HTTP 400"):
        follow(auth_url(fake_provider, "unknown-client", redirect_uri))


def test_fakebrowser_as_BROWSER(
    fake_provider, public_oauth_client, listener, tmp_path, monkeypatch
):
    redirect_uri, seen = listener
    log = tmp_path / "browser.log"
    monkeypatch.setenv("BROWSER", f"{sys.executable} -m hostsim.devservers.fakebrowser %s")
    monkeypatch.setenv("FAKEBROWSER_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    monkeypatch.setattr(webbrowser, "_tryorder", None)  # re-read BROWSER
    monkeypatch.setattr(webbrowser, "_browsers", {})
    assert webbrowser.open(auth_url(fake_provider, public_oauth_client, redirect_uri))
    deadline = time.monotonic() + 10
    while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.read_text() == "Authorization complete. You can close this window.\n"
    assert parse_qs(seen[0])["state"] == ["xyz"]
    assert os.environ["BROWSER"].endswith("%s")
