"""Message info: the fields of ACTIONS.md, from whole messages and from headers only."""

from __future__ import annotations

from corpus import CORPUS, simple

from robomail_plugin.message.info import (
    decode_header_value,
    html_to_text,
    message_info,
)


def test_fields_of_a_plain_message():
    raw = simple(subject="Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?=", sender='"Zoë Q." <zoe@example.test>',
                 to="bob@example.test, Carol <carol@example.test>", message_id="<m1@example.test>")
    info = message_info(raw, number=3, uid="abc", folder=None)
    assert info["number"] == 3 and info["uid"] == "abc"
    assert info["message_id"] == "<m1@example.test>"
    assert info["from_address"] == "zoe@example.test"
    assert info["from_name"] == "Zoë Q."
    assert info["subject"] == "Re: Grüße"
    assert info["to"] == "bob@example.test, Carol <carol@example.test>"
    assert info["date"] == "Mon, 01 Jan 2024 10:00:00 +0100"
    assert info["date_iso"] == "2024-01-01T10:00:00+01:00"
    assert info["size"] == len(raw)
    assert info["flags"] is None and info["seen"] is None
    assert info["has_attachments"] is False and info["attachments"] == []
    assert info["body_text"] == "Hello there.\n" and info["body_html"] == ""


def test_imap_flags_set_seen_and_folder():
    info = message_info(simple(), flags=("\\Seen", "\\Flagged"), folder="Archiv/2024", uid=7)
    assert info["seen"] is True and info["flags"] == ["\\Seen", "\\Flagged"]
    assert info["folder"] == "Archiv/2024"
    assert message_info(simple(), flags=())["seen"] is False


def test_headers_only_guesses_attachments_and_has_no_body():
    raw = simple(attachments=[("x.pdf", b"%PDF")])
    head = raw.split(b"\n\n", 1)[0] + b"\n\n"
    info = message_info(head, headers_only=True, size=len(raw))
    assert info["has_attachments"] is True
    assert info["attachments"] == []
    assert "body_text" not in info
    assert info["size"] == len(raw)
    plain = simple().split(b"\n\n", 1)[0] + b"\n\n"
    assert message_info(plain, headers_only=True)["has_attachments"] is False


def test_include_body_false_leaves_body_out():
    info = message_info(simple(), include_body=False)
    assert "body_text" not in info and "body_html" not in info


def test_nested_message():
    info = message_info(CORPUS["nested"])
    assert info["from_name"] == "Jörg"
    assert info["subject"] == "Nested Übersicht"
    assert info["body_text"] == "Grüße aus München"
    assert info["body_html"] == "<p>Grüße</p>"
    names = [a["name"] for a in info["attachments"]]
    assert names == ["", "Inner forwarded.eml", "report.pdf"]
    assert info["attachments"][2] == {"name": "report.pdf", "size": 13,
                                      "content_type": "application/pdf"}


def test_broken_and_unknown_charsets_decode_with_replacement():
    info = message_info(CORPUS["broken_charsets"])
    assert info["subject"] == "nuqneH and =?utf-8?b?!!!notbase64?="
    assert info["body_text"].startswith("caf\ufffd cr\ufffdme")
    info = message_info(CORPUS["unknown_body_charset"])
    assert info["body_text"] == "plain \ufffd body\n" or info["body_text"] == "plain ä body\n"


def test_encoded_words_split_inside_a_character():
    assert decode_header_value("=?utf-8?Q?=E2=82?= =?utf-8?Q?=AC?=") == "€"
    assert decode_header_value("a =?utf-8?q?b?=\r\n =?utf-8?q?c?= d") == "a bc d"
    assert decode_header_value("caf\udce9") == "café"  # raw 8-bit Latin-1 header


def test_html_only_gives_text():
    info = message_info(CORPUS["html_only"])
    assert info["body_text"] == "Title\n\nCafé & crème\n\nline\ntwo"
    assert "<h1>" in info["body_html"]
    assert html_to_text("<p>a&nbsp;b</p><script>bad()</script>") == "a b"


def test_missing_headers_and_bad_date():
    info = message_info(CORPUS["missing_headers"])
    assert info["from"] == "" and info["subject"] == "" and info["date_iso"] is None
    info = message_info(b"Date: the day after tomorrow\r\nFrom: <<<\r\n\r\nx")
    assert info["date"] == "the day after tomorrow" and info["date_iso"] is None


def test_huge_headers_are_quick_and_complete():
    info = message_info(CORPUS["huge_headers"])
    assert info["subject"] == "wörd" * 10000
    assert info["to"].count("@") == 1000
