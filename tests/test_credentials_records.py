"""Record validation: every OAuthRecord that exists is valid, with messages that say what to fix."""

from __future__ import annotations

import attrs
import pytest
from credentials_support import CANARY

from robomail_plugin.credentials.records import OAuthRecord, record_from_mapping
from robomail_plugin.errors import RecordInvalid

GOOD = dict(
    record_name="Work Gmail",
    client_account="me@example.com",
    client_id="cid.apps.example",
    client_secret=CANARY,
    refresh_token=CANARY + "-rt",
    authorization_endpoint="https://accounts.example.com/auth",
    token_endpoint="https://oauth2.example.com/token",
    scope="https://mail.google.com/",
)


def test_a_good_record_hides_its_secrets_in_repr():
    record = OAuthRecord(**GOOD)
    assert CANARY not in repr(record)
    assert record.public_dict()["client_secret"] == "***"
    assert record.public_dict()["refresh_token"] == "***"
    assert record.scopes == ["https://mail.google.com/"]


@pytest.mark.parametrize("name", ["", "   ", " padded", "two\nlines", "x" * 201])
def test_bad_record_names_are_refused(name):
    with pytest.raises(RecordInvalid, match="Record Name"):
        OAuthRecord(**{**GOOD, "record_name": name})


@pytest.mark.parametrize(
    "url",
    [
        "http://accounts.example.com/auth",
        "ftp://accounts.example.com/auth",
        "accounts.example.com/auth",
        "http://10.0.0.1/auth",
        "",
    ],
)
def test_endpoints_must_be_https(url):
    with pytest.raises(RecordInvalid, match="Authorization Endpoint") as info:
        OAuthRecord(**{**GOOD, "authorization_endpoint": url})
    assert "Work Gmail" in str(info.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/token", "http://localhost/token", "http://[::1]:9/token"]
)
def test_plain_http_is_allowed_on_loopback(url):
    assert OAuthRecord(**{**GOOD, "token_endpoint": url}).token_endpoint == url


@pytest.mark.parametrize("scope", ["", "   "])
def test_blank_scope_is_refused(scope):
    with pytest.raises(RecordInvalid, match="Scope is required"):
        OAuthRecord(**{**GOOD, "scope": scope})


def test_client_id_and_account_are_required():
    with pytest.raises(RecordInvalid, match="Client ID"):
        OAuthRecord(**{**GOOD, "client_id": ""})
    with pytest.raises(RecordInvalid, match="Client Account"):
        OAuthRecord(**{**GOOD, "client_account": " "})


def test_the_client_secret_is_optional_and_the_device_endpoint_is_checked():
    record = OAuthRecord(**{**GOOD, "client_secret": ""})
    assert record.client_secret == ""
    with pytest.raises(RecordInvalid, match="Device Authorization Endpoint"):
        attrs.evolve(record, device_endpoint="http://example.com/device")


def test_an_invalid_record_error_never_shows_a_secret():
    with pytest.raises(RecordInvalid) as info:
        OAuthRecord(**{**GOOD, "scope": ""})
    assert CANARY not in str(info.value)


def test_record_from_mapping_refuses_unknown_fields_and_wrong_types():
    assert record_from_mapping(dict(GOOD)).record_name == "Work Gmail"
    with pytest.raises(RecordInvalid, match="unknown field"):
        record_from_mapping({**GOOD, "password": "x"})
    with pytest.raises(RecordInvalid, match="expected text"):
        record_from_mapping({**GOOD, "client_id": 12})
    with pytest.raises(RecordInvalid):
        record_from_mapping(["not", "a", "dict"])
