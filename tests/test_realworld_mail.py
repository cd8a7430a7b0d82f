"""Real-world mail that broke robomail: 8-bit names, message/* parts, mixed charsets, Apple Mail
layouts, reused boundaries, comma names, odd dates, files that are not mail, server replies.

Messages are built here as raw bytes, since most of them are malformed on purpose. Where the
stdlib's ``email`` (policy=default) gets a case right, the test compares with it.
"""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import string
from pathlib import Path

import pytest
from corpus.mailtest import pop3_params, run
from hypothesis import given, settings
from hypothesis import strategies as st
from imap_helpers import open_step, run_ok, step

from hostsim.runtime.host import Host
from robomail_plugin.message.info import address_list, decode_header_value
from robomail_plugin.parse.commands import parse_email

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


# --- 2 and 8. message/* parts: their content, byte for byte ---------------------------------------

INNER = (
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test; s=sel;\r\n"
    b"\th=From:To:Subject:Date; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
    b"\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSwganVzdCBhIGxvbmcgdmFsdWU=\r\n"
    b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.test>\r\n"
    b"To: rcpt@example.test\r\n"
    b"Subject: Forwarded =?utf-8?q?=C3=9Cbersicht?=\r\n"
    b"Date: Mon, 01 Jan 2024 09:00:00 +0000\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Gr\xc3\xbc\xc3\x9fe,\r\n"
    b"From the forwarded message\r\n"
    b"\r\n"
)
DELIVERY_STATUS = (
    b"Reporting-MTA: dns; mx.example.test\r\n"
    b"Arrival-Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"\r\n"
    b"Final-Recipient: rfc822; nobody@example.test\r\n"
    b"Action: failed\r\n"
    b"Status: 5.1.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
)
FEEDBACK = (b"Feedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
            b"Original-Rcpt-To: <rcpt@example.test>\r\n")
DISPOSITION = (b"Reporting-UA: mail.example.test; Mailer\r\n"
               b"Final-Recipient: rfc822; rcpt@example.test\r\n"
               b"Original-Message-ID: <orig@example.test>\r\n"
               b"Disposition: manual-action/MDN-sent-manually; displayed\r\n")
HEADERS_ONLY = INNER.split(b"\r\n\r\n", 1)[0] + b"\r\n"

MESSAGE_PARTS = {
    "message/rfc822": (INNER, "Forwarded Übersicht.eml"),
    "message/global": (INNER.replace(b"=?utf-8?q?=C3=9Cbersicht?=", "Übersicht".encode()),
                       "Forwarded Übersicht.eml"),
    "message/news": (INNER, "Forwarded Übersicht.eml"),
    "message/delivery-status": (DELIVERY_STATUS, "delivery-status.txt"),
    "message/feedback-report": (FEEDBACK, "feedback-report.txt"),
    "message/disposition-notification": (DISPOSITION, "disposition-notification.txt"),
    "message/rfc822-headers": (HEADERS_ONLY, "rfc822-headers.txt"),
}


@pytest.mark.parametrize("ctype", sorted(MESSAGE_PARTS))
def test_message_parts_are_saved_with_their_original_bytes(tmp_path, ctype):
    content, name = MESSAGE_PARTS[ctype]
    raw = multipart(text_part("report"), b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + content,
                    head=b"X-Report: yes\r\n")
    info = parse_email(raw, attachments_folder=str(tmp_path))
    [entry] = info["attachments"]
    assert (entry["name"], entry["content_type"]) == (name, ctype)
    assert entry["size"] == len(content)
    assert Path(entry["path"]).read_bytes() == content
    assert info["body_text"] == "report"


def test_attached_message_keeps_its_signed_headers_and_line_ends(tmp_path):
    """The stdlib re-serialises an attached message (folding, line ends); the saved file must be
    the bytes the DKIM signature was made over."""
    raw = multipart(text_part("fwd"), b"Content-Type: message/rfc822\r\n\r\n" + INNER)
    inner = stdlib(raw).get_payload()[1].get_payload()[0]
    assert inner.as_bytes() != INNER  # what robomail used to save
    info = parse_email(raw, attachments_folder=str(tmp_path))
    assert Path(info["attachments"][0]["path"]).read_bytes() == INNER


def test_base64_encoded_attached_message_is_decoded(tmp_path):
    raw = multipart(text_part("fwd"), b"Content-Type: message/rfc822\r\n"
                    b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(INNER))
    info = parse_email(raw, attachments_folder=str(tmp_path))
    assert info["attachments"][0]["name"] == "Forwarded Übersicht.eml"
    assert Path(info["attachments"][0]["path"]).read_bytes() == INNER


# --- 3. one bad byte in UTF-8 ---------------------------------------------------------------------

MIXED = "Grüße aus München".encode() + b" \xff Ende"


def test_one_bad_byte_in_a_utf8_header_replaces_only_that_byte():
    raw = b"From: x@example.test\r\nSubject: " + MIXED + b"\r\n\r\nbody\r\n"
    assert stdlib(raw)["subject"] == "Grüße aus München \ufffd Ende"
    assert parse_email(raw)["subject"] == "Grüße aus München \ufffd Ende"
    # Windows-1252 holds no valid UTF-8 sequence: it stays Windows-1252
    raw = b"From: x@example.test\r\nSubject: caf\xe9 cr\xe8me \x80 5\r\n\r\nGr\xfc\xdfe\r\n"
    info = parse_email(raw)
    assert (info["subject"], info["body_text"]) == ("café crème € 5", "Grüße\n")


@pytest.mark.parametrize("ctype", [b"", b"Content-Type: text/plain\r\n",
                                   b"Content-Type: text/plain; charset=us-ascii\r\n"])
def test_one_bad_byte_in_an_undeclared_utf8_body_replaces_only_that_byte(ctype):
    raw = b"From: x@example.test\r\nSubject: s\r\n" + ctype + b"\r\n" + MIXED + b"\r\n"
    assert parse_email(raw)["body_text"] == "Grüße aus München \ufffd Ende\n"


# --- 4. inline text parts belong to the body ------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0 fake jpeg"


def image_part(disposition: bytes = b"inline") -> bytes:
    return (b"Content-Disposition: " + disposition + b"; filename=photo.jpg\r\n"
            b'Content-Type: image/jpeg; x-unix-mode=0644; name="photo.jpg"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(JPEG))


@pytest.mark.parametrize("disposition", [b"", b"Content-Disposition: inline; filename=a.txt\r\n"])
def test_the_only_text_part_is_the_body_even_with_a_file_name(disposition):
    named = text_part("Hello from a named part\n", disposition).replace(
        b"charset=utf-8", b'charset=utf-8; name="a.txt"')
    raw = multipart(named, image_part(b"attachment"))
    assert stdlib(raw).get_body(("plain",)).get_content() == "Hello from a named part\n"
    info = parse_email(raw)
    assert info["body_text"] == "Hello from a named part\n"
    # it is still a file the sender attached
    assert [a["name"] for a in info["attachments"]] == ["a.txt", "photo.jpg"]


def test_apple_mail_text_image_text_is_one_body_and_one_attachment(tmp_path):
    raw = multipart(text_part("Hello, here is the photo:\n"), image_part(),
                    text_part("\nRegards, Anna\n"), boundary=b"Apple-Mail=_A1B2")
    info = parse_email(raw, attachments_folder=str(tmp_path / "att"))
    assert info["body_text"] == "Hello, here is the photo:\n\nRegards, Anna\n"
    assert [(a["name"], a["content_type"]) for a in info["attachments"]] == [
        ("photo.jpg", "image/jpeg")]
    assert sorted(p.name for p in (tmp_path / "att").iterdir()) == ["photo.jpg"]


def test_apple_mail_html_layout_joins_the_html_parts():
    related = (b'Content-Type: multipart/mixed; boundary="M"\r\n\r\n'
               b"--M\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Before</p>\r\n"
               b"--M\r\n" + image_part() + b"\r\n"
               b"--M\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>After</p>\r\n--M--")
    alternative = (b'Content-Type: multipart/alternative; boundary="A"\r\n\r\n'
                   b"--A\r\n" + text_part("Before\n\nAfter\n") + b"\r\n--A\r\n" + related
                   + b"\r\n--A--")
    raw = multipart(alternative)
    info = parse_email(raw)
    assert info["body_text"] == "Before\n\nAfter\n"
    assert info["body_html"] == "<p>Before</p>\n<p>After</p>"
    assert [a["name"] for a in info["attachments"]] == ["photo.jpg"]


def test_a_mailing_list_footer_joins_the_text_body():
    alternative = (b'Content-Type: multipart/alternative; boundary="A"\r\n\r\n'
                   b"--A\r\n" + text_part("The post\n") + b"\r\n--A\r\n"
                   b"Content-Type: text/html\r\n\r\n<p>The post</p>\r\n--A--")
    raw = multipart(alternative, text_part("-- \nlist footer\n",
                                           b"Content-Disposition: inline\r\n"))
    info = parse_email(raw)
    assert info["body_text"] == "The post\n-- \nlist footer\n"
    assert info["attachments"] == []


# --- 5. a nested multipart reusing its parent's boundary -------------------------------------------


def pdf_part(name: str, data: bytes) -> bytes:
    return (b"Content-Type: application/pdf; name=" + name.encode() + b"\r\n"
            b"Content-Disposition: attachment; filename=" + name.encode() + b"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(data))


def test_reused_boundary_recovers_later_attachments_and_says_so(tmp_path):
    alternative = (b'Content-Type: multipart/alternative; boundary="X"\r\n\r\n'
                   b"--X\r\n" + text_part("plain body") + b"\r\n"
                   b"--X\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html body</p>\r\n"
                   b"--X--")
    raw = multipart(alternative, pdf_part("a.pdf", b"%PDF-a"), pdf_part("b.pdf", b"%PDF-b"),
                    boundary=b"X")
    assert list(stdlib(raw).iter_attachments()) == []  # the stdlib loses both
    info = parse_email(raw, attachments_folder=str(tmp_path / "att"))
    assert (info["body_text"], info["body_html"]) == ("plain body", "<p>html body</p>")
    assert [(a["name"], a["size"]) for a in info["attachments"]] == [("a.pdf", 6), ("b.pdf", 6)]
    assert (tmp_path / "att" / "b.pdf").read_bytes() == b"%PDF-b"
    [warning] = info["warnings"]
    assert "boundary" in warning and '"X"' in warning and "2 part(s)" in warning


def test_a_message_cut_short_is_reported():
    raw = multipart(text_part("body"), pdf_part("a.pdf", b"%PDF-a")).rsplit(b"--B--", 1)[0]
    info = parse_email(raw[:-20])
    assert info["attachments"][0]["name"] == "a.pdf"
    assert any("closing boundary" in w for w in info["warnings"])


# --- 6. a comma in a decoded display name ---------------------------------------------------------

COMMA_TO = b"=?utf-8?q?M=C3=BCller=2C_Anna?= <anna@example.test>, bob@example.test"
COMMA_CC = b'"Doe, John" <john@example.test>'


def comma_message() -> bytes:
    return (b"From: =?utf-8?q?M=C3=BCller=2C_Anna?= <anna@example.test>\r\nTo: " + COMMA_TO
            + b"\r\nCc: " + COMMA_CC + b"\r\nReply-To: list@example.test\r\nSubject: names\r\n"
            b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n")


def test_address_lists_keep_a_comma_inside_a_name():
    info = parse_email(comma_message())
    ref = stdlib(comma_message())
    for field in ("from", "to", "cc", "reply_to"):
        expected = [{"name": a.display_name, "address": a.addr_spec}
                    for a in ref[field.replace("_", "-")].addresses]
        assert info[f"{field}_list"] == expected, field
    assert info["to_list"][0] == {"name": "Müller, Anna", "address": "anna@example.test"}
    assert info["cc_list"] == [{"name": "Doe, John", "address": "john@example.test"}]


ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
_atom = st.text(alphabet=ATEXT, min_size=1, max_size=6)
_address = st.builds(lambda lp, d: f"{lp}@{d}.test", _atom, st.text(
    alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=6))
_name = st.lists(st.text(alphabet=ATEXT + ".", min_size=1, max_size=6), max_size=3).map(" ".join)
_space = st.sampled_from(["", " ", "  ", "\t"])
_one = st.one_of(st.builds(lambda s, n, a: f"{s}{n} <{a}>{s}", _space, _name, _address),
                 st.builds(lambda s, a: f"{s}{a}{s}", _space, _address))
_pieces = st.text(alphabet=ATEXT + ". \t<>@\"(),;:[]\\", max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_one, min_size=1, max_size=4).map(",".join), _pieces))
def test_address_lists_split_as_the_stdlib_splits_them(value):
    """robomail splits lists of the usual forms itself (quick); they must agree with the stdlib."""
    ours = [(e["name"], e["address"]) for e in address_list(value)]
    # a header's value is read stripped (as a parsed message gives it): compare on that text
    theirs = [(decode_header_value(n), a) for n, a in email.utils.getaddresses([value.strip()])
              if n or a]
    if "\"" not in value and "(" not in value:  # quoting and comments: the stdlib's own way
        assert ours == theirs


CONDITION_CASES = [
    ("to", "equals", "Müller, Anna", True),
    ("to", "equals", "Anna", False),
    ("to", "equals", "bob@example.test", True),
    ("to", "starts_with", "müller, a", True),
    ("cc", "equals", "doe, john", True),
    ("cc", "equals", "John", False),
    ("from", "equals", "Müller, Anna", True),
    ("from", "ends_with", "@example.test", True),
]


def test_conditions_use_the_address_lists():
    from robomail_plugin.message.conditions import parse_conditions

    info = parse_email(comma_message())
    results = [parse_conditions([{"field": f, "op": op, "value": v}]).matches(info)
               for f, op, v, _expected in CONDITION_CASES]
    assert results == [expected for *_case, expected in CONDITION_CASES]


def test_imap_loop_condition_on_a_name_with_a_comma(host, sandbox, mail_user):
    sandbox.deliver(mail_user.username, comma_message())
    result = run_ok(host, [open_step(sandbox, mail_user), step(
        "IMAP Mail Loop", conditions=[{"field": "to", "op": "equals", "value": "Müller, Anna"}],
        do=[step("Log Message", message="S:{json:Msg.to_list}")])])
    assert [line for line in result.log if "S:" in line][0].endswith(
        'S:[{"name": "Müller, Anna", "address": "anna@example.test"}, '
        '{"name": "", "address": "bob@example.test"}]')


# --- 7. dates whose offset was lost ----------------------------------------------------------------


@pytest.mark.parametrize(("date", "iso"), [
    ("Mon, 01 Jan 2024 10:00:00 -0000", "2024-01-01T10:00:00+00:00"),
    ("Mon, 1 Jan 2024 10:00:00 (EDT) -0400", "2024-01-01T10:00:00-04:00"),
    ("Mon, 1 Jan 2024 23:30:00 (EDT)", "2024-01-01T23:30:00-04:00"),
])
def test_date_iso_keeps_the_offset(date, iso):
    raw = b"From: x@example.test\r\nDate: " + date.encode() + b"\r\nSubject: d\r\n\r\nbody\r\n"
    assert parse_email(raw)["date_iso"] == iso


# --- 8. files that are not a message ---------------------------------------------------------------

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 16 + b">\x00\x03\x00\xfe\xff" + b"\x00" * 64
NOT_MESSAGES = {
    "outlook.msg": (OLE2, "Outlook .msg"),
    "photo.png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40, "PNG image"),
    "photo.jpg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40, "JPEG image"),
    "note.txt": (b"Hello Bob,\r\nsee you tomorrow.\r\n", "first line"),
    "header-then-binary.bin": (b"Key: value\r\n\x00\x01\x02\x03 binary\r\n", "NUL"),
}


@pytest.mark.parametrize("name", sorted(NOT_MESSAGES))
def test_a_file_that_is_not_a_message_is_a_parse_error(tmp_path, name):
    data, reason = NOT_MESSAGES[name]
    path = tmp_path / name
    path.write_bytes(data)
    result = run(Host.load(home=tmp_path / "hostsim"), [
        {"action": "Parse Email", "params": {"file": str(path)}}])
    assert not result.ok and result.error.code == "parse_error"
    assert "not an RFC 5322 message" in result.error.description
    assert reason in result.error.description


ODD_BUT_REAL = {
    "mbox From line": b"From sender@example.test Mon Jan  1 10:00:00 2024\r\nFrom: a@example.test\r\n"
                      b"Subject: odd\r\n\r\nbody\r\n",
    "no space after the colon": b"Subject:odd\r\nFrom:a@example.test\r\n\r\nbody\r\n",
    "space before the colon": b"Subject : odd\r\nFrom: a@example.test\r\n\r\nbody\r\n",
    "unusual header name": b"X-Spam_Score!#: 1\r\nFrom: a@example.test\r\nSubject: odd\r\n\r\nb\r\n",
    "no headers": b"\r\njust a body\r\n",
    "binary attachment early": multipart(b"Content-Type: application/octet-stream\r\n"
                                         b"Content-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02"),
    "byte order mark": b"\xef\xbb\xbfFrom: a@example.test\r\nSubject: odd\r\n\r\nbody\r\n",
}


def test_real_messages_with_odd_first_lines_still_parse():
    froms = {name: parse_email(data)["from"] for name, data in ODD_BUT_REAL.items()}
    assert froms == {**{name: "a@example.test" for name in ODD_BUT_REAL},
                     "no headers": "", "binary attachment early": "Sender <sender@example.test>",
                     # obsolete syntax the stdlib's parser (and so robomail's) reads as a body
                     "space before the colon": ""}


# --- 13. login replies as the server wrote them ----------------------------------------------------

LOGIN_REPLIES = [
    # imaplib raises LOGIN's NO with the reply's bytes; imapclient passes on str() of that
    ("b'[AUTHENTICATIONFAILED] Authentication failed.'",
     "[AUTHENTICATIONFAILED] Authentication failed."),  # Dovecot
    ("b'Login failed: authentication failure'", "Login failed: authentication failure"),  # Cyrus
    ("b'Authentication failed'", "Authentication failed"),  # GNU Mailutils
    ('b"Can\'t log in right now"', "Can't log in right now"),
    ("b'Anmeldung f\\xc3\\xbcr Bob fehlgeschlagen'", "Anmeldung für Bob fehlgeschlagen"),
    ("LOGIN command error: BAD [b'Invalid characters in atom']",
     "BAD Invalid characters in atom"),
    ("authenticate failed: [AUTHENTICATIONFAILED] Token rejected",
     "[AUTHENTICATIONFAILED] Token rejected"),
]


def test_imap_login_replies_lose_their_python_wrappers():
    from robomail_plugin.transport.connect import _clean_imap_reply

    cleaned = [_clean_imap_reply(message) for message, _expected in LOGIN_REPLIES]
    assert cleaned == [expected for _message, expected in LOGIN_REPLIES]


def test_dovecot_login_refusal_reads_as_dovecot_wrote_it(sandbox, mail_user):
    from robomail_plugin import errors
    from robomail_plugin.transport.connect import ConnectionSettings, open_imap

    settings = ConnectionSettings.from_params("imap", {
        "server": sandbox.host, "port": sandbox.ports["imaps"], "security": "ssl",
        "ca_file": str(sandbox.ca_file), "timeout": 20, "username": mail_user.username,
        "password": "wrong-password"})
    with pytest.raises(errors.LoginFailed) as info:
        open_imap(settings, None)
    assert info.value.server_reply == "[AUTHENTICATIONFAILED] Authentication failed."
    assert "b'" not in str(info.value)


def test_reused_boundary_without_a_final_close_still_recovers_the_last_part():
    alternative = (b'Content-Type: multipart/alternative; boundary="X"\r\n\r\n'
                   b"--X\r\n" + text_part("plain body") + b"\r\n--X--")
    raw = multipart(alternative, pdf_part("a.pdf", b"%PDF-a"), boundary=b"X").removesuffix(
        b"--X--\r\n")
    info = parse_email(raw)
    assert [(a["name"], a["size"]) for a in info["attachments"]] == [("a.pdf", 6)]
    assert "1 part(s)" in info["warnings"][0]
