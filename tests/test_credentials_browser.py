"""Get Refresh Token against the fake provider: the browser flow driven as a browser would, wrong
state, denied consent, timeout, PKCE checked by the provider, paste-the-URL and device code."""

from __future__ import annotations

import sys
import threading
import time
import webbrowser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from credentials_support import fast_endpoint, make_record

from hostsim.devservers.fakebrowser import FakeBrowserError, follow
from robomail_plugin.credentials import browser
from robomail_plugin.credentials.browser import SUCCESS_TEXT
from robomail_plugin.errors import AuthorizationFailed


@pytest.fixture
def record(fake_provider, oauth_client):
    client_id, secret = oauth_client
    return make_record(fake_provider, client_id, secret)


class Browser:
    """Follows the authorization URL in a thread, like a browser the user clicks through."""

    def __init__(self, rewrite=None):
        self.pages: list[str] = []
        self.errors: list[str] = []
        self.rewrite = rewrite
        self.threads: list[threading.Thread] = []

    def open(self, url: str) -> bool:
        def run():
            try:
                if self.rewrite is None:
                    self.pages.append(follow(url))
                    return
                hop = requests.get(url, allow_redirects=False, timeout=10)
                target = self.rewrite(hop.headers["Location"])
                answer = requests.get(target, allow_redirects=False, timeout=10)
                (self.pages if answer.ok else self.errors).append(answer.text)
            except FakeBrowserError as exc:
                self.errors.append(str(exc))

        t = threading.Thread(target=run)
        t.start()
        self.threads.append(t)
        return True

    def join(self):
        for t in self.threads:
            t.join(timeout=10)


def test_the_whole_browser_flow(fake_provider, record):
    b = Browser()
    said: list[str] = []
    grant = browser.authorize_in_browser(
        record, fast_endpoint(), open_url=b.open, say=said.append,
        extra_params={"access_type": "offline", "prompt": "consent"},
    )
    b.join()
    assert b.pages == [SUCCESS_TEXT]
    assert fake_provider.is_active(grant.access_token.value)
    sent = fake_provider.last_authorize_params
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["access_type"] == "offline" and sent["prompt"] == "consent"
    assert sent["scope"] == "mail offline_access"
    assert sent["login_hint"] == "alice@example.test"
    redirect = urlsplit(sent["redirect_uri"])
    assert redirect.hostname == "127.0.0.1" and redirect.port and redirect.port > 1023
    assert len(sent["state"]) >= 20
    requests_sent = fake_provider.token_requests
    [exchange] = [r for r in requests_sent if r["grant_type"] == "authorization_code"]
    assert exchange["code_verifier"] and exchange["redirect_uri"] == sent["redirect_uri"]
    assert any(sent["state"] in s for s in said)  # the URL was shown for manual use
    assert grant.refresh_token


def test_the_system_browser_is_opened_through_webbrowser_and_browser_env(
    fake_provider, record, monkeypatch, tmp_path
):
    log = tmp_path / "browser.log"
    monkeypatch.setenv("BROWSER", f"{sys.executable} -m hostsim.devservers.fakebrowser %s")
    monkeypatch.setenv("FAKEBROWSER_LOG", str(log))
    monkeypatch.setattr(webbrowser, "_tryorder", None)  # re-read BROWSER
    monkeypatch.setattr(webbrowser, "_browsers", {})
    grant = browser.authorize_in_browser(record, fast_endpoint(), say=lambda s: None, timeout=30)
    assert grant.refresh_token
    deadline = time.time() + 10
    while time.time() < deadline and not (log.exists() and log.read_text().strip()):
        time.sleep(0.05)
    assert log.read_text().strip() == SUCCESS_TEXT


def _with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_a_wrong_state_is_refused(fake_provider, record):
    """A wrong state is ignored (a 400 page) and the sign-in keeps waiting, here until timeout."""
    b = Browser(rewrite=lambda url: _with_param(url, state="forged-state"))
    with pytest.raises(AuthorizationFailed, match="within 2 s.*state does not match"):
        browser.authorize_in_browser(record, fast_endpoint(), open_url=b.open, say=lambda s: None,
                                     timeout=2)
    b.join()
    assert b.errors and "ignored" in b.errors[0]
    assert not [r for r in fake_provider.token_requests if r["grant_type"] == "authorization_code"]


def test_denied_consent(fake_provider, record):
    fake_provider.deny_consent = True
    b = Browser()
    with pytest.raises(AuthorizationFailed, match="access_denied.*allow access"):
        browser.authorize_in_browser(record, fast_endpoint(), open_url=b.open, say=lambda s: None)
    b.join()
    assert b.errors and "Authentication failed" in b.errors[0]


def test_timeout_when_nobody_signs_in(record):
    started = time.monotonic()
    with pytest.raises(AuthorizationFailed, match="no answer from the browser within 0.5 s"):
        browser.authorize_in_browser(
            record, fast_endpoint(), open_url=lambda url: True, say=lambda s: None, timeout=0.5
        )
    assert time.monotonic() - started < 3


def test_a_browser_that_cannot_start_still_shows_the_url(record):
    said: list[str] = []
    with pytest.raises(AuthorizationFailed):
        browser.authorize_in_browser(
            record, fast_endpoint(), open_url=lambda url: False, say=said.append, timeout=0.2
        )
    assert "open the URL above by hand" in said[-2]
    assert said[-1].startswith("Waiting up to 0.2 s (--timeout)") and "Ctrl-C" in said[-1]


def test_the_listener_ignores_other_requests(fake_provider, record):
    b = Browser()

    def opener(url):
        port = urlsplit(dict(parse_qsl(urlsplit(url).query))["redirect_uri"]).port
        assert requests.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=5).status_code == 404
        return b.open(url)

    grant = browser.authorize_in_browser(record, fast_endpoint(), open_url=opener,
                                         say=lambda s: None)
    b.join()
    assert grant.refresh_token and b.pages == [SUCCESS_TEXT]


def test_pkce_is_verified_by_the_provider(fake_provider, record):
    request = browser.build_request(record, "http://127.0.0.1:8/")
    hop = requests.get(request.url, allow_redirects=False, timeout=10)
    code = dict(parse_qsl(urlsplit(hop.headers["Location"]).query))["code"]
    wrong = "x" * 43  # not the verifier the challenge was made from
    with pytest.raises(AuthorizationFailed, match="invalid_grant.*PKCE"):
        fast_endpoint().exchange_code(record, request.session, code, code_verifier=wrong)


def test_paste_the_redirect_url(fake_provider, public_oauth_client):
    record = make_record(fake_provider, public_oauth_client, "")
    said: list[str] = []

    def paste(_text):
        url = said[-1].splitlines()[1]
        return requests.get(url, allow_redirects=False, timeout=10).headers["Location"]

    grant = browser.authorize_by_paste(record, fast_endpoint(), prompt=paste, say=said.append)
    assert fake_provider.is_active(grant.access_token.value)
    with pytest.raises(AuthorizationFailed, match="no \\?code="):
        browser.authorize_by_paste(record, fast_endpoint(), prompt=lambda t: "hello",
                                   say=said.append)
    with pytest.raises(AuthorizationFailed, match="state does not match"):
        browser.authorize_by_paste(
            record, fast_endpoint(), prompt=lambda t: "http://127.0.0.1:1/?code=a&state=b",
            say=said.append,
        )


def test_device_code_flow(fake_provider, public_oauth_client):
    record = make_record(fake_provider, public_oauth_client, "")
    said: list[str] = []
    grant = browser.authorize_with_device(
        record, fast_endpoint(), device_endpoint=fake_provider.device_url, say=said.append
    )
    assert fake_provider.is_active(grant.access_token.value)
    assert "enter the code" in said[0]
    fake_provider.deny_consent = True
    with pytest.raises(AuthorizationFailed, match="access_denied"):
        browser.authorize_with_device(
            record, fast_endpoint(), device_endpoint=fake_provider.device_url, say=said.append
        )


def test_a_redeemed_code_without_refresh_token_is_explained(fake_provider, record, monkeypatch):
    from robomail_plugin.credentials import tokens

    real = tokens.TokenEndpoint._grant

    def drop_refresh(self, rec, token, now):
        token = {k: v for k, v in token.items() if k != "refresh_token"}
        return real(self, rec, token, now)

    monkeypatch.setattr(tokens.TokenEndpoint, "_grant", drop_refresh)
    b = Browser()
    with pytest.raises(AuthorizationFailed, match="no refresh token.*access_type=offline"):
        browser.authorize_in_browser(record, fast_endpoint(), open_url=b.open, say=lambda s: None)
    b.join()


def test_a_localhost_redirect_reaches_the_loopback_listener(fake_provider, record):
    b = Browser()
    grant = browser.authorize_in_browser(
        record, fast_endpoint(), open_url=b.open, say=lambda s: None, redirect_host="localhost"
    )
    b.join()
    assert grant.refresh_token and b.pages == [SUCCESS_TEXT]
    assert urlsplit(fake_provider.last_authorize_params["redirect_uri"]).hostname == "localhost"
