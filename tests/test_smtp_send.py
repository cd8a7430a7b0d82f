"""SMTP Send Email against the real Dovecot submission service; delivered copies read from the
recipients' Maildirs."""

from __future__ import annotations

import email
import email.policy
import socket
from pathlib import Path

import pytest
from corpus.mailtest import add_oauth_record, delivered, new_user, run, smtp_params, var

from hostsim.runtime.host import Host
from robomail_plugin.message.info import message_info


@pytest.fixture(scope="module")
def users(sandbox):
    return [new_user(sandbox) for _ in range(4)]


@pytest.fixture
def host(tmp_path, sandbox, users):
    for u in users:
        sandbox.clear(u[0])
    return Host.load(home=tmp_path / "hostsim")


def send(host, params, **extra):
    return run(host, [{"action": "SMTP Send Email", "params": {**params, **extra}}])


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.mark.parametrize("fmt", ["text", "html", "html+text"])
def test_body_formats(host, sandbox, users, fmt):
    a, b = users[:2]
    body = "<p>Grüße &amp; <b>hello</b></p>" if fmt != "text" else "Grüße, hello\n"
    result = send(host, smtp_params(sandbox, a), to=b[0], subject=f"Format {fmt} ✓",
                  body=body, body_format=fmt, save_message_id_to="MID")
    assert result.ok, result.error
    (raw,) = delivered(sandbox, b[0])
    info = message_info(raw)
    assert info["subject"] == f"Format {fmt} ✓"
    assert info["message_id"] == result.variables["MID"]
    assert info["from_address"] == a[0]
    msg = parsed(raw)
    if fmt == "text":
        assert msg.get_content_type() == "text/plain" and info["body_text"] == "Grüße, hello\n"
    elif fmt == "html":
        assert msg.get_content_type() == "text/html" and "<b>hello</b>" in info["body_html"]
    else:
        assert msg.get_content_type() == "multipart/alternative"
        assert info["body_text"].strip() == "Grüße & hello"
        assert "<b>hello</b>" in info["body_html"]
    assert a[1] not in "\n".join(result.log)


def test_cc_bcc_attachments_and_extras(host, sandbox, users, tmp_path):
    a, b, c, d = users
    files = tmp_path / "out"
    files.mkdir()
    (files / "r€port.pdf").write_bytes(b"%PDF-1.4 test")
    (files / "data.csv").write_text("a,b\n1,2\n")
    (files / "skip.txt").write_text("not attached")
    body_file = tmp_path / "body.txt"
    body_file.write_text("Body from a file: ünïcödé\n", encoding="utf-8")
    copy = tmp_path / "copies" / "sent.eml"
    result = send(host, smtp_params(sandbox, a, security="ssl"),
                  **{"from": f"Sender Ä <{a[0]}>"}, to=b[0], cc=f'"Doe, C" <{c[0]}>',
                  bcc=d[0], reply_to="replies@example.test", subject="Extras",
                  body_file=str(body_file), attachments=[str(files / "*.pdf"),
                                                          str(files / "data.csv")],
                  priority="high", read_receipt=True, headers={"X-Ticket": "T-42"},
                  save_copy_to=str(copy))
    assert result.ok, result.error
    copies = {u[0]: delivered(sandbox, u[0]) for u in (b, c, d)}
    assert all(len(v) == 1 for v in copies.values())  # bcc (d) got it too
    for copy_of in (b, c):  # bcc is nowhere in the headers of the delivered copies
        head = copies[copy_of[0]][0].split(b"\r\n\r\n", 1)[0]
        assert d[0].encode() not in head and b"\nBcc:" not in head
    assert d[0].encode() in copies[d[0]][0]  # d's own copy says "for <d>" in Received
    info = message_info(copies[b[0]][0])
    msg = parsed(copies[b[0]][0])
    assert info["from_name"] == "Sender Ä"
    assert info["cc"] == f'"Doe, C" <{c[0]}>'
    assert info["reply_to"] == "replies@example.test"
    assert info["body_text"] == "Body from a file: ünïcödé\n"
    assert [(x["name"], x["size"]) for x in info["attachments"]] == [
        ("r€port.pdf", 13), ("data.csv", 8)]
    assert msg["X-Priority"] == "1 (Highest)" and msg["Importance"] == "High"
    assert a[0] in msg["Disposition-Notification-To"]
    assert msg["X-Ticket"] == "T-42"
    saved = copy.read_bytes()
    assert b"Subject: Extras" in saved and b"Bcc" not in saved


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("extra", "code", "words"), [
    ({"attachments": "/no/such/file.pdf"}, "file_error", "does not exist"),
    ({"attachments": ["/no/such/*.pdf"]}, "file_error", "no file matches"),
    ({"subject": "Hi\r\nBcc: victim@example.test"}, "invalid_parameter", "line break"),
    ({"headers": {"X-A": "1\nX-B: 2"}}, "invalid_parameter", "line break"),
    ({"headers": {"Bad Name": "1"}}, "invalid_parameter", "not a valid header name"),
    ({"headers": {"To": "x@example.test"}}, "invalid_parameter", "own parameter"),
    ({"to": "not-an-address"}, "invalid_parameter", "is not an e-mail address"),
    ({"to": ""}, "invalid_parameter", "at least one recipient"),
    ({"charset": "no-such-charset"}, "invalid_parameter", "unknown"),
    ({"charset": "ascii", "body": "Grüße"}, "invalid_parameter", "cannot hold"),
    ({"body_file": "/no/body.txt"}, "file_error", "does not exist"),
])
def test_bad_parameters_fail_before_connecting(host, users, extra, code, words):
    # Nothing listens on the port: any attempt to connect would give connect_failed instead.
    params = {"server": "127.0.0.1", "port": unused_port(), "security": "none", "auth": "none",
              "from": users[0][0], "to": users[1][0], "subject": "x", "body": "y", **extra}
    result = send(host, params)
    assert not result.ok
    assert result.error.code == code, result.error
    assert words in result.error.description


@pytest.mark.parametrize(("security", "mech"), [("ssl", "xoauth2"), ("starttls", "oauthbearer")])
def test_oauth_send(host, sandbox, users, fake_provider, security, mech):
    a, b = users[:2]
    add_oauth_record(fake_provider, a[0])
    result = send(host, smtp_params(sandbox, None, security=security, oauth=mech),
                  to=b[0], subject=f"OAuth {mech}", body="hi")
    assert result.ok, result.error
    (raw,) = delivered(sandbox, b[0])
    assert message_info(raw)["from_address"] == a[0]  # from = the record's Client Account


def test_oauth_rejected_token(host, sandbox, users, fake_provider):
    a, b, c = users[:3]
    add_oauth_record(fake_provider, a[0])
    # The provider vouches for the token, but for another user: Dovecot refuses the login.
    from robomail_plugin.plugin import plugin
    record = plugin.services.store.get("Mail")
    wrong = fake_provider.mint_refresh_token(record.client_id, c[0])
    plugin.services.store.set_refresh_token("Mail", wrong)
    result = send(host, smtp_params(sandbox, None, oauth="xoauth2"), to=b[0], body="x")
    assert result.error.code == "login_failed", result.error
    assert "535" in result.error.description
    assert wrong not in result.error.description
    assert delivered(sandbox, b[0], count=0) == []


def test_oauth_revoked_refresh_token(host, sandbox, users, fake_provider):
    a, b = users[:2]
    refresh = add_oauth_record(fake_provider, a[0])
    fake_provider.revoke(refresh)
    result = send(host, smtp_params(sandbox, None, oauth="xoauth2"), to=b[0], body="x")
    assert result.error.code == "token_refused", result.error
    assert refresh not in result.error.description


def test_oauth_temporary_failure(host, sandbox, users, fake_provider):
    a, b = users[:2]
    add_oauth_record(fake_provider, a[0])
    fake_provider.introspection_down = True
    result = send(host, smtp_params(sandbox, None, oauth="oauthbearer"), to=b[0], body="x")
    assert result.error.code == "login_temporary", result.error
    assert "454" in result.error.description


def test_wrong_password(host, sandbox, users):
    a, b = users[:2]
    result = send(host, {**smtp_params(sandbox, a), "password": "nope-nope"}, to=b[0], body="x")
    assert result.error.code == "login_failed"
    assert "nope-nope" not in result.error.description + "\n".join(result.log)


def test_message_id_and_copy_variables(host, sandbox, users, tmp_path):
    a, b = users[:2]
    result = send(host, smtp_params(sandbox, a), to=b[0], body="x",
                  headers={"Message-ID": "<fixed-1@example.test>"},
                  save_message_id_to="MID", save_copy_to=str(tmp_path / "c.eml"))
    assert result.ok, result.error
    assert var(result, "MID") == "<fixed-1@example.test>"
    assert message_info(Path(tmp_path / "c.eml").read_bytes())["message_id"] == (
        "<fixed-1@example.test>")
