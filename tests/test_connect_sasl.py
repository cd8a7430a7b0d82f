"""SASL initial responses and error challenges: the exact bytes the servers expect."""

from __future__ import annotations

import base64
import json

import pytest

from robomail_plugin.transport import sasl


def test_xoauth2_response_format():
    assert sasl.xoauth2_response("a@x.test", "tok") == b"user=a@x.test\x01auth=Bearer tok\x01\x01"


def test_oauthbearer_has_authzid_host_and_port():
    raw = sasl.oauthbearer_response("a,b=c@x.test", "tok", "mail.x.test", 993)
    assert raw == (
        b"n,a=a=2Cb=3Dc@x.test,\x01host=mail.x.test\x01port=993\x01auth=Bearer tok\x01\x01"
    )


def test_initial_response_rejects_unknown_mechanism():
    with pytest.raises(ValueError, match="xoauth2, oauthbearer"):
        sasl.initial_response("plain", "u", "t")


@pytest.mark.parametrize("wire", [True, False])
def test_decode_error_challenge(wire):
    payload = json.dumps({"status": "401", "schemes": "bearer", "scope": "mail"}).encode()
    challenge = base64.b64encode(payload) if wire else payload
    decoded = sasl.decode_error_challenge(challenge)
    assert decoded is not None
    assert decoded.status == "401"
    assert decoded.describe() == "status 401 (schemes=bearer, scope=mail)"


@pytest.mark.parametrize("junk", [b"", b"not base64 !!", base64.b64encode(b"[1, 2]")])
def test_decode_error_challenge_junk_is_none(junk):
    assert sasl.decode_error_challenge(junk) is None


def test_mechanism_answers_error_challenge_with_empty_response():
    mech = sasl.OAuthMechanism(b"initial")
    assert mech(b"") == b"initial"
    assert mech(json.dumps({"status": "invalid_token"}).encode()) == b""
    assert mech.error is not None and mech.error.status == "invalid_token"
    assert "initial" not in repr(mech)
