"""Hardening of token requests and the Get Refresh Token listener against odd or hostile peers:
redirecting and hanging token endpoints, odd expires_in, unusable token values, secrets echoed
percent-encoded, idle and forged connections to the loopback listener."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import pytest
import requests
from credentials_support import CANARY, fast_endpoint, make_record, token_service
from pytest_httpserver import HTTPServer
from werkzeug import Response

from robomail_plugin.credentials import browser
from robomail_plugin.credentials.browser import SUCCESS_TEXT
from robomail_plugin.credentials.store import SQLiteCredentialStore
from robomail_plugin.credentials.tokens import TokenEndpoint, token_summary
from robomail_plugin.errors import AuthorizationFailed, TokenError, TokenTemporaryError
from robomail_plugin.transport.connect import ConnectionSettings, open_imap

SECRET = CANARY + "/se+cret=&x"
REFRESH = "rt/" + CANARY + "+abc=="
ONE_YEAR = 366 * 86400


@pytest.fixture
def store(robomail_home):
    return SQLiteCredentialStore(robomail_home)


@pytest.fixture
def endpoint_server():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def elsewhere():
    """Another origin (another port) that a redirect could point at."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def hanging_url():
    """A token endpoint that accepts connections (the kernel does) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/token"


def add_record(store, provider, endpoint_url: str, **kw):
    kw.setdefault("refresh_token", REFRESH)
    record = make_record(provider, "cid", SECRET, token_endpoint=endpoint_url, **kw)
    store.add(record)
    return record


def answer(server: HTTPServer, body: str, status: int = 200) -> None:
    server.expect_request("/token", method="POST").respond_with_data(
        body, status=status, content_type="application/json"
    )


# --- redirects -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirecting_token_endpoint_gets_no_credentials_forwarded(
    status, endpoint_server, elsewhere, fake_provider, store, robomail_home
):
    elsewhere.expect_request("/steal").respond_with_json({"access_token": "stolen"})
    endpoint_server.expect_request("/token").respond_with_response(
        Response(status=status, headers={"Location": elsewhere.url_for("/steal?x=1")})
    )
    add_record(store, fake_provider, endpoint_server.url_for("/token"))
    with pytest.raises(TokenError) as info:
        token_service(robomail_home, store).get_access_token("rec")
    assert elsewhere.log == []  # nothing was sent to the other origin
    message = str(info.value)
    assert "redirected" in message and f"http://127.0.0.1:{elsewhere.port}" in message
    assert "Access Token Endpoint" in message and "'rec'" in message
    assert "/steal" not in message
    for secret in (SECRET, REFRESH):
        assert secret not in message
    assert store.get("rec").refresh_token == REFRESH
    assert len(endpoint_server.log) == 1  # a redirect is a configuration error: not retried


def test_a_redirecting_endpoint_during_get_refresh_token(
    endpoint_server, elsewhere, fake_provider, oauth_client
):
    client_id, secret = oauth_client
    record = make_record(fake_provider, client_id, secret,
                         token_endpoint=endpoint_server.url_for("/token"))
    endpoint_server.expect_request("/token").respond_with_response(
        Response(status=307, headers={"Location": elsewhere.url_for("/token")})
    )
    request = browser.build_request(record, "http://127.0.0.1:8/")
    with pytest.raises(AuthorizationFailed, match="redirected.*Access Token Endpoint"):
        fast_endpoint().exchange_code(record, request.session, "some-code")
    assert elsewhere.log == []


# --- expires_in ----------------------------------------------------------------------------------


def _body(expires_in: str) -> str:
    return '{"access_token": "at-1", "token_type": "Bearer", "expires_in": ' + expires_in + "}"


@pytest.mark.parametrize("expires_in", ["1e308", "1" + "0" * 400])
def test_a_huge_expires_in_is_capped_at_a_year(
    expires_in, endpoint_server, fake_provider, store, robomail_home
):
    answer(endpoint_server, _body(expires_in))
    add_record(store, fake_provider, endpoint_server.url_for("/token"))
    token = token_service(robomail_home, store).get_access_token("rec")
    assert 364 * 86400 < token.expires_at - time.time() <= ONE_YEAR
    assert token_summary(token)["expires_in_s"] <= ONE_YEAR  # shown by `hostsim oauth test`


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_body("1e999"), "expires_in"),
        (_body("NaN"), "expires_in"),
        (_body("-5"), "expires_in"),
        (_body("0"), "expires_in"),
        (_body('"soon"'), "expires_in"),
        (_body("[3600]"), "expires_in"),
        ('[{"access_token": "at-1", "token_type": "Bearer"}]', "not a JSON object"),
        ('"at-1"', "not a JSON object"),
    ],
)
def test_odd_answers_are_clear_protocol_errors(
    body, expected, endpoint_server, fake_provider, store, robomail_home
):
    answer(endpoint_server, body)
    add_record(store, fake_provider, endpoint_server.url_for("/token"))
    with pytest.raises(TokenError) as info:
        token_service(robomail_home, store).get_access_token("rec")
    message = str(info.value)
    assert expected in message and "invalid_response" in message and "'rec'" in message
    assert "kept" in message
    assert store.get("rec").refresh_token == REFRESH


# --- values from the token endpoint --------------------------------------------------------------


BAD_REFRESH = ["new\nline", "cr\rhere", "nul\x00", "esc\x1b[31m", "tab\there", "ls\u2028x", 12345,
               ["rt"], {"rt": 1}, True]


@pytest.mark.parametrize("bad", BAD_REFRESH, ids=repr)
def test_an_unusable_refresh_token_is_not_stored(
    bad, endpoint_server, fake_provider, store, robomail_home
):
    endpoint_server.expect_request("/token").respond_with_json(
        {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": bad}
    )
    add_record(store, fake_provider, endpoint_server.url_for("/token"))
    add_record(store, fake_provider, endpoint_server.url_for("/token"), name="other")
    with pytest.raises(TokenError) as info:
        token_service(robomail_home, store).get_access_token("rec")
    message = str(info.value)
    assert "'rec'" in message and "refresh_token" in message and "invalid_response" in message
    assert store.get("rec").refresh_token == REFRESH
    assert [r.record_name for r in store.list()] == ["other", "rec"]


@pytest.mark.parametrize("bad", ["two\nlines", "nul\x00", "\x1b]0;x\x07", 42, ["at"]], ids=repr)
def test_an_unusable_access_token_is_refused(
    bad, endpoint_server, fake_provider, store, robomail_home
):
    endpoint_server.expect_request("/token").respond_with_json(
        {"access_token": bad, "token_type": "Bearer", "expires_in": 3600}
    )
    add_record(store, fake_provider, endpoint_server.url_for("/token"))
    with pytest.raises(TokenError) as info:
        token_service(robomail_home, store).get_access_token("rec")
    message = str(info.value)
    assert "'rec'" in message and "access_token" in message and "invalid_response" in message
    assert store.get("rec").refresh_token == REFRESH


def test_get_refresh_token_does_not_keep_a_refresh_token_with_a_line_break(
    endpoint_server, fake_provider, oauth_client
):
    client_id, secret = oauth_client
    record = make_record(fake_provider, client_id, secret,
                         token_endpoint=endpoint_server.url_for("/token"))
    endpoint_server.expect_request("/token").respond_with_json(
        {"access_token": "at-1", "token_type": "Bearer", "refresh_token": "rt\nINJECTED"}
    )
    request = browser.build_request(record, "http://127.0.0.1:8/")
    with pytest.raises(AuthorizationFailed, match="'rec'.*refresh_token"):
        fast_endpoint().exchange_code(record, request.session, "some-code")


# --- secrets in error texts ----------------------------------------------------------------------


def test_percent_encoded_secrets_are_scrubbed(endpoint_server, fake_provider, store,
                                              robomail_home):
    echoed = (
        f"bad request refresh_token={quote_plus(REFRESH)}&client_secret={quote(SECRET, safe='')}"
        f" (raw {quote(REFRESH)} / {quote_plus(SECRET)})"
    )
    endpoint_server.expect_request("/token").respond_with_json(
        {"error": "invalid_request", "error_description": echoed}, status=400
    )
    add_record(store, fake_provider, endpoint_server.url_for("/token"))
    with pytest.raises(TokenError) as info:
        token_service(robomail_home, store).get_access_token("rec")
    texts = [str(info.value), repr(info.value), str(info.value.server_reply)]
    assert "bad request refresh_token=***" in texts[0]
    for secret in (REFRESH, SECRET):
        for form in {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)}:
            for text in texts:
                assert form not in text


# --- timeouts ------------------------------------------------------------------------------------


def test_a_hanging_token_endpoint_fails_within_the_timeout(hanging_url, fake_provider, store,
                                                           robomail_home):
    add_record(store, fake_provider, hanging_url)
    service = token_service(robomail_home, store, endpoint=TokenEndpoint())  # 30 s per request
    started = time.monotonic()
    with pytest.raises(TokenTemporaryError) as info:
        service.get_access_token("rec", timeout=1.0)
    assert time.monotonic() - started < 2.5
    message = str(info.value)
    assert "within 1 s" in message and "timed out" in message and "'rec'" in message
    assert store.get("rec").refresh_token == REFRESH


def test_waiting_for_another_refresh_is_bounded_by_the_timeout(hanging_url, fake_provider, store,
                                                                robomail_home):
    add_record(store, fake_provider, hanging_url)
    first = token_service(robomail_home, store, endpoint=TokenEndpoint())
    second = token_service(robomail_home, store, endpoint=TokenEndpoint())  # like another process
    outcome: list[BaseException] = []

    def hang() -> None:
        try:
            first.get_access_token("rec", timeout=3.0)
        except BaseException as exc:  # checked below
            outcome.append(exc)

    stuck = threading.Thread(target=hang)
    stuck.start()
    time.sleep(0.3)  # the first one holds the record's lock while the endpoint hangs
    started = time.monotonic()
    with pytest.raises(TokenTemporaryError, match="within 0.5 s"):
        second.get_access_token("rec", timeout=0.5)
    assert time.monotonic() - started < 1.5
    stuck.join(timeout=10)
    assert [type(e) for e in outcome] == [TokenTemporaryError]


def test_the_steps_timeout_bounds_the_token_request_of_a_mail_login(
    sandbox, mail_services, hanging_url, fake_provider
):
    add_record(mail_services.store, fake_provider, hanging_url)
    settings = ConnectionSettings.from_params(
        "imap",
        {"server": sandbox.host, "port": sandbox.ports["imaps"], "security": "ssl",
         "ca_file": str(sandbox.ca_file), "timeout": 2, "auth": "oauth", "oauth_record": "rec"},
    )
    started = time.monotonic()
    with pytest.raises(TokenTemporaryError, match="within 2 s"):
        open_imap(settings, mail_services)
    assert time.monotonic() - started < 5


# --- the Get Refresh Token listener --------------------------------------------------------------


class Browser:
    """Follows the authorization URL in a thread, like a browser the user clicks through."""

    def __init__(self) -> None:
        self.pages: list[str] = []
        self.threads: list[threading.Thread] = []

    def open(self, url: str) -> bool:
        def run() -> None:
            hop = requests.get(url, allow_redirects=False, timeout=10)
            self.pages.append(requests.get(hop.headers["Location"], timeout=10).text)

        t = threading.Thread(target=run)
        t.start()
        self.threads.append(t)
        return True

    def join(self) -> None:
        for t in self.threads:
            t.join(timeout=10)


def _listener_port(url: str) -> int:
    port = urlsplit(dict(parse_qsl(urlsplit(url).query))["redirect_uri"]).port
    assert port is not None
    return port


@pytest.fixture
def record(fake_provider, oauth_client):
    client_id, secret = oauth_client
    return make_record(fake_provider, client_id, secret)


def test_an_idle_connection_does_not_stall_the_sign_in(fake_provider, record):
    """A browser's speculative preconnect opens a connection and sends nothing on it."""
    b = Browser()
    idle: list[socket.socket] = []

    def opener(url: str) -> bool:
        idle.append(socket.create_connection(("127.0.0.1", _listener_port(url))))
        time.sleep(0.2)
        return b.open(url)

    started = time.monotonic()
    try:
        grant = browser.authorize_in_browser(record, fast_endpoint(), open_url=opener,
                                             say=lambda s: None, timeout=20)
    finally:
        for s in idle:
            s.close()
    b.join()
    assert time.monotonic() - started < 8
    assert grant.refresh_token and b.pages == [SUCCESS_TEXT]


def test_forged_requests_do_not_end_the_sign_in(fake_provider, record):
    b = Browser()
    forged: list[requests.Response] = []

    def opener(url: str) -> bool:
        base = f"http://127.0.0.1:{_listener_port(url)}/"
        forged.append(requests.get(base + "?code=forged&state=forged", timeout=5))
        forged.append(requests.get(base + "?error=access_denied&state=", timeout=5))
        forged.append(requests.get(base + "?code=forged", timeout=5))
        return b.open(url)

    grant = browser.authorize_in_browser(record, fast_endpoint(), open_url=opener,
                                         say=lambda s: None, timeout=20)
    b.join()
    assert grant.refresh_token and b.pages == [SUCCESS_TEXT]
    assert [r.status_code for r in forged] == [400, 400, 400]
    assert all("ignored" in r.text for r in forged)
    exchanges = [r for r in fake_provider.token_requests
                 if r["grant_type"] == "authorization_code"]
    assert len(exchanges) == 1 and exchanges[0]["code"] != "forged"


def test_only_forged_requests_end_in_the_timeout_and_say_so(record):
    def opener(url: str) -> bool:
        requests.get(f"http://127.0.0.1:{_listener_port(url)}/?code=x&state=y", timeout=5)
        return True

    started = time.monotonic()
    with pytest.raises(AuthorizationFailed, match="within 1 s.*1 answer.*state does not match"):
        browser.authorize_in_browser(record, fast_endpoint(), open_url=opener,
                                     say=lambda s: None, timeout=1)
    assert time.monotonic() - started < 4
