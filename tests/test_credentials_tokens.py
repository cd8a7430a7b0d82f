"""The token service against the fake provider over HTTP: refresh, rotation, caching,
single-flight (threads and processes), error classes, retries, and no secret in any output."""

from __future__ import annotations

import json
import logging
import multiprocessing
import socket
import threading
import time

import attrs
import pytest
from credentials_support import CANARY, fast_endpoint, make_record, refresh_worker, token_service
from pytest_httpserver import HTTPServer

from robomail_plugin.credentials.presets import GOOGLE, MICROSOFT
from robomail_plugin.credentials.store import SQLiteCredentialStore
from robomail_plugin.errors import StoreError, TokenError, TokenTemporaryError


@pytest.fixture
def store(robomail_home):
    return SQLiteCredentialStore(robomail_home)


@pytest.fixture
def confidential(fake_provider, oauth_client, store):
    """A stored record for a confidential client, with a refresh token the provider issued."""
    client_id, secret = oauth_client
    refresh = fake_provider.mint_refresh_token(client_id, "alice@example.test")
    record = make_record(fake_provider, client_id, secret, refresh_token=refresh)
    store.add(record)
    return record


def refresh_requests(provider):
    return [r for r in provider.token_requests if r.get("grant_type") == "refresh_token"]


def test_refresh_gets_a_token_the_provider_accepts(fake_provider, confidential, store,
                                                   robomail_home):
    service = token_service(robomail_home, store)
    token = service.get_access_token("rec")
    assert fake_provider.is_active(token.value)
    assert 3500 < token.expires_at - time.time() <= 3600
    [sent] = refresh_requests(fake_provider)
    assert sent["refresh_token"] == confidential.refresh_token
    assert sent["client_id"] == confidential.client_id
    assert sent["client_secret"] == confidential.client_secret
    assert store.get("rec").refresh_token == confidential.refresh_token  # not rotated: kept


def test_a_rotated_refresh_token_is_saved(fake_provider, confidential, store, robomail_home):
    fake_provider.rotate_refresh_tokens = True
    service = token_service(robomail_home, store)
    service.get_access_token("rec")
    saved = store.get("rec").refresh_token
    assert saved and saved != confidential.refresh_token
    service.get_access_token("rec", force_refresh=True)  # the old one is dead: uses the new one
    assert refresh_requests(fake_provider)[1]["refresh_token"] == saved
    assert store.get("rec").refresh_token not in (saved, confidential.refresh_token)


def test_expires_in_as_a_string(fake_provider, confidential, store, robomail_home):
    fake_provider.expires_in_as_string = True
    fake_provider.access_token_lifetime = 1800
    token = token_service(robomail_home, store).get_access_token("rec")
    assert 1790 < token.expires_at - time.time() <= 1800


def test_one_token_request_per_token_lifetime(fake_provider, confidential, store, robomail_home):
    service = token_service(robomail_home, store)
    values = {service.get_access_token("rec").value for _ in range(20)}
    assert len(values) == 1
    assert len(refresh_requests(fake_provider)) == 1
    fake_provider.access_token_lifetime = 61  # fresh for 1 s (refreshed 60 s before expiry)
    service.invalidate("rec")
    first = service.get_access_token("rec")
    assert service.get_access_token("rec") == first
    time.sleep(1.1)
    assert service.get_access_token("rec") != first
    assert len(refresh_requests(fake_provider)) == 3


def test_force_refresh_and_invalidate(fake_provider, confidential, store, robomail_home):
    service = token_service(robomail_home, store)
    a = service.get_access_token("rec")
    b = service.get_access_token("rec", force_refresh=True)
    service.invalidate("rec")
    c = service.get_access_token("rec")
    assert len({a.value, b.value, c.value}) == 3


def test_single_flight_across_threads(fake_provider, confidential, store, robomail_home):
    fake_provider.slow_seconds = 0.4
    fake_provider.fail_next("slow")
    service = token_service(robomail_home, store)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def work():
        barrier.wait()
        results.append(service.get_access_token("rec").value)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert len(refresh_requests(fake_provider)) == 1


def test_single_flight_across_processes_with_rotation(fake_provider, confidential, robomail_home):
    """Without one refresh at a time, two processes would redeem the same rotating token and
    one would get invalid_grant."""
    fake_provider.rotate_refresh_tokens = True
    fake_provider.slow_seconds = 0.3
    fake_provider.fail_next("slow")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0
    procs = [
        ctx.Process(target=refresh_worker, args=(str(robomail_home), "rec", start_at, out))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [kind for kind, _ in results] == ["ok"] * 4, results
    sent = [r["refresh_token"] for r in refresh_requests(fake_provider)]
    assert len(sent) == 4 and len(set(sent)) == 4  # each used the token the previous one saved
    final = SQLiteCredentialStore(robomail_home).get("rec").refresh_token
    assert final not in sent
    token_service(robomail_home, SQLiteCredentialStore(robomail_home)).get_access_token("rec")


@pytest.mark.parametrize("kind", ["invalid_grant", "invalid_client"])
def test_refusals_say_what_to_do_and_keep_the_refresh_token(
    kind, fake_provider, confidential, store, robomail_home
):
    fake_provider.fail_next(kind)
    with pytest.raises(TokenError) as info:
        token_service(robomail_home, store).get_access_token("rec")
    message = str(info.value)
    assert "Get Refresh Token again" in message and "hostsim oauth get-refresh-token rec" in message
    if kind == "invalid_grant":
        assert "expired or was revoked" in message
    else:
        assert "Client ID and Client Secret" in message
    assert info.value.code == "token_refused"
    assert len(refresh_requests(fake_provider)) == 1  # refusals are not retried
    assert store.get("rec").refresh_token == confidential.refresh_token


def test_a_revoked_token_gives_invalid_grant(fake_provider, confidential, store, robomail_home):
    fake_provider.revoke(confidential.refresh_token)
    with pytest.raises(TokenError, match="expired or was revoked"):
        token_service(robomail_home, store).get_access_token("rec")
    assert store.get("rec").refresh_token == confidential.refresh_token


@pytest.mark.parametrize("kind", ["server_error", "rate_limited", "slow"])
def test_transient_failures_are_retried_then_succeed(
    kind, fake_provider, confidential, store, robomail_home
):
    fake_provider.slow_seconds = 1.0
    fake_provider.fail_next(kind)
    service = token_service(robomail_home, store, endpoint=fast_endpoint(timeout=0.3))
    token = service.get_access_token("rec")
    assert fake_provider.is_active(token.value)
    assert len(refresh_requests(fake_provider)) == 2


def test_persistent_server_errors_are_temporary_and_keep_the_token(
    fake_provider, confidential, store, robomail_home
):
    fake_provider.fail_next("server_error", count=5)
    with pytest.raises(TokenTemporaryError, match=r"HTTP 500\) after 3 tries.*kept"):
        token_service(robomail_home, store).get_access_token("rec")
    assert len(refresh_requests(fake_provider)) == 3
    assert store.get("rec").refresh_token == confidential.refresh_token


def test_an_unreachable_endpoint_is_temporary(fake_provider, store, robomail_home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store.add(make_record(fake_provider, "cid", "sec", refresh_token="rt-keep",
                          token_endpoint=f"http://127.0.0.1:{port}/token"))
    with pytest.raises(TokenTemporaryError, match="connection failed"):
        token_service(robomail_home, store).get_access_token("rec")
    assert store.get("rec").refresh_token == "rt-keep"


def test_a_public_client_sending_a_secret_gets_the_microsoft_hint(
    fake_provider, public_oauth_client, store, robomail_home
):
    refresh = fake_provider.mint_refresh_token(public_oauth_client, "alice@example.test")
    store.add(make_record(fake_provider, public_oauth_client, CANARY, refresh_token=refresh))
    with pytest.raises(TokenError) as info:
        token_service(robomail_home, store).get_access_token("rec")
    message = str(info.value)
    assert "must not send a client secret" in message
    assert "Diagnostics: AADSTS700025" in message
    store.update(attrs.evolve(store.get("rec"), client_secret=""))
    assert token_service(robomail_home, store).get_access_token("rec").value


def test_the_google_testing_status_hint(fake_provider, confidential, store, robomail_home):
    local_google = attrs.evolve(GOOGLE, token_hosts=("127.0.0.1",))
    endpoint = fast_endpoint(presets=lambda: {"google": local_google, "microsoft": MICROSOFT})
    fake_provider.fail_next("invalid_grant")
    with pytest.raises(TokenError, match="'Testing' status.*7 days"):
        token_service(robomail_home, store, endpoint=endpoint).get_access_token("rec")


@pytest.fixture
def oddball():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


MS_DESCRIPTION = (
    "AADSTS50076: Due to a configuration change made by your administrator, you must use "
    "multi-factor authentication. Trace ID: 0b1c2d3e-aaaa-bbbb-cccc-1234567890ab Correlation ID: "
    "9f8e7d6c-1111-2222-3333-444455556666 Timestamp: 2024-01-01 00:00:00Z"
)


@pytest.mark.parametrize(
    "error, expected",
    [
        ("interaction_required", "sign in again"),
        ("unauthorized_client", "may not use this grant"),
        ("invalid_scope", "check the record's Access Token Endpoint and Scope"),
    ],
)
def test_other_refusals_from_a_microsoft_like_endpoint(
    error, expected, oddball, fake_provider, store, robomail_home
):
    oddball.expect_request("/token", method="POST").respond_with_json(
        {"error": error, "error_description": MS_DESCRIPTION}, status=400
    )
    store.add(make_record(fake_provider, "cid", "", refresh_token="rt-keep",
                          token_endpoint=oddball.url_for("/token")))
    with pytest.raises(TokenError) as info:
        token_service(robomail_home, store).get_access_token("rec")
    message = str(info.value)
    assert expected in message
    assert "Get Refresh Token again" in message
    assert "AADSTS50076, correlation id 9f8e7d6c-1111-2222-3333-444455556666" in message
    assert "administrator" not in message  # the long description is a diagnostic only
    assert store.get("rec").refresh_token == "rt-keep"


def test_unusable_answers_are_refusals(oddball, fake_provider, store, robomail_home):
    oddball.expect_request("/token").respond_with_data("<html>login portal</html>", status=200)
    store.add(make_record(fake_provider, "cid", "", refresh_token="rt",
                          token_endpoint=oddball.url_for("/token")))
    with pytest.raises(TokenError, match="invalid_response"):
        token_service(robomail_home, store).get_access_token("rec")
    oddball.clear()
    oddball.expect_request("/token").respond_with_data("Forbidden", status=403)
    with pytest.raises(TokenError, match="HTTP 403"):
        token_service(robomail_home, store).get_access_token("rec")


def test_temporarily_unavailable_in_the_body_is_retried(oddball, fake_provider, store,
                                                        robomail_home):
    oddball.expect_ordered_request("/token").respond_with_json(
        {"error": "temporarily_unavailable"}, status=400
    )
    oddball.expect_ordered_request("/token").respond_with_json(
        {"access_token": "at-1", "token_type": "Bearer", "expires_in": "120"}
    )
    store.add(make_record(fake_provider, "cid", "", refresh_token="rt",
                          token_endpoint=oddball.url_for("/token")))
    token = token_service(robomail_home, store).get_access_token("rec")
    assert token.value == "at-1" and 110 < token.expires_at - time.time() <= 120


def test_a_record_without_refresh_token(fake_provider, store, robomail_home):
    store.add(make_record(fake_provider, "cid", ""))
    with pytest.raises(TokenError, match="no Refresh Token yet.*get-refresh-token"):
        token_service(robomail_home, store).get_access_token("rec")
    assert fake_provider.token_requests == []


def test_a_failed_save_of_a_rotated_token_is_reported(fake_provider, confidential, store,
                                                      robomail_home, monkeypatch):
    fake_provider.rotate_refresh_tokens = True

    def broken(name, token):
        raise StoreError("disk full")

    monkeypatch.setattr(store, "set_refresh_token", broken)
    with pytest.raises(StoreError, match="new Refresh Token but it could not be saved"):
        token_service(robomail_home, store).get_access_token("rec")


def test_no_secret_reaches_logs_reprs_or_errors(
    fake_provider, public_oauth_client, store, robomail_home, caplog
):
    caplog.set_level(logging.DEBUG)
    refresh = fake_provider.mint_refresh_token(public_oauth_client, "alice@example.test")
    store.add(make_record(fake_provider, public_oauth_client, "", refresh_token=refresh))
    service = token_service(robomail_home, store)
    fake_provider.rotate_refresh_tokens = True
    fake_provider.fail_next("server_error")
    token = service.get_access_token("rec")
    rotated = store.get("rec").refresh_token
    texts = [repr(token), repr(store.get("rec")), repr(service), json.dumps(caplog.text)]
    fake_provider.fail_next("invalid_grant")
    with pytest.raises(TokenError) as info:
        service.get_access_token("rec", force_refresh=True)
    texts += [str(info.value), repr(info.value), str(info.value.server_reply)]
    store.update(attrs.evolve(store.get("rec"), client_secret=CANARY))
    with pytest.raises(TokenError) as info2:
        service.get_access_token("rec", force_refresh=True)
    texts += [str(info2.value), caplog.text]
    assert "retrying" in caplog.text  # the log did record the work
    for secret in (CANARY, refresh, rotated, token.value):
        for text in texts:
            assert secret not in text
