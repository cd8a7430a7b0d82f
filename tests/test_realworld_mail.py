"""Real-world mail that broke robomail: 8-bit names, message/* parts, mixed charsets, Apple Mail
layouts, reused boundaries, comma names, odd dates, files that are not mail, server replies.

Messages are built here as raw bytes, since most of them are malformed on purpose. Where the
stdlib's ``email`` (policy=default) gets a case right, the test compares with it.
"""

from __future__ import annotations

import base64
import email
import email.policy

from corpus.mailtest import pop3_params, run
from imap_helpers import open_step, run_ok, step

from hostsim.host import Host
from robomail_plugin.mail.parse import parse_email

ZIP = b"PK\x05\x06" + b"\x00" * 18  # an empty zip archive
NAME_8BIT = "Счёт_558.zip"


def multipart(*parts: bytes, boundary: bytes = b"B", head: bytes = b"") -> bytes:
    """A multipart/mixed message from raw parts (each: its headers, a blank line, its body)."""
    out = [b"From: Sender <sender@example.test>\r\nTo: rcpt@example.test\r\nSubject: test\r\n"
           b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n" + head
           + b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n']
    out += [b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts]
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


def text_part(body: str, extra: bytes = b"") -> bytes:
    return b"Content-Type: text/plain; charset=utf-8\r\n" + extra + b"\r\n" + body.encode()


def stdlib(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


# --- 1. raw 8-bit file names ---------------------------------------------------------------------


def eight_bit_name() -> bytes:
    quoted = b'"' + NAME_8BIT.encode() + b'"'
    return multipart(
        text_part("see attached"),
        b"Content-Type: application/zip; name=" + quoted + b"\r\n"
        b"Content-Disposition: attachment; filename=" + quoted + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(ZIP),
    )


def test_raw_utf8_file_name_is_read_as_utf8(tmp_path):
    raw = eight_bit_name()
    assert [p.get_filename() for p in stdlib(raw).iter_attachments()] == [NAME_8BIT]
    info = parse_email(raw, attachments_folder=str(tmp_path))
    assert [a["name"] for a in info["attachments"]] == [NAME_8BIT]
    assert (tmp_path / NAME_8BIT).read_bytes() == ZIP


def test_raw_utf8_file_name_in_a_latin1_mailer():
    raw = eight_bit_name().replace(NAME_8BIT.encode(), "Übersicht.zip".encode("cp1252"))
    assert [a["name"] for a in parse_email(raw)["attachments"]] == ["Übersicht.zip"]


def test_raw_utf8_file_name_through_imap_download(host, sandbox, mail_user, tmp_path):
    sandbox.deliver(mail_user.username, eight_bit_name())
    run_ok(host, [open_step(sandbox, mail_user),
                  step("IMAP Download Message", uid="1", folder=str(tmp_path / "eml"),
                       attachments_folder=str(tmp_path / "att"))])
    assert [p.name for p in (tmp_path / "att").iterdir()] == [NAME_8BIT]


def test_raw_utf8_file_name_through_pop3_download(sandbox, mail_user, tmp_path):
    sandbox.deliver(mail_user.username, eight_bit_name())
    user = (mail_user.username, mail_user.password)
    result = run(Host.load(home=tmp_path / "hostsim"), [
        {"action": "POP3 Open", "params": pop3_params(sandbox, user)},
        {"action": "POP3 Download Email", "params": {
            "number": 1, "folder": str(tmp_path / "eml"),
            "attachments_folder": str(tmp_path / "att")}},
    ])
    assert result.ok, result.error
    assert [p.name for p in (tmp_path / "att").iterdir()] == [NAME_8BIT]
