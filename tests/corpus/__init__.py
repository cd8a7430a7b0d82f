"""Awkward messages built in code, for Parse Email and the mail loops.

Each builder returns the raw bytes of one message; ``CORPUS`` maps a short name to its bytes.
Messages are written by hand (not by the email package) where the point is to be malformed.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage

CRLF = b"\r\n"


def simple(subject: str = "Hello", body: str = "Hello there.\n", sender: str = "alice@example.test",
           to: str = "bob@example.test", date: str = "Mon, 01 Jan 2024 10:00:00 +0100",
           message_id: str | None = None, attachments: list[tuple[str, bytes]] | None = None
           ) -> bytes:
    """A well-formed message, optionally with attachments."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = message_id or f"<{abs(hash((subject, body, sender)))}@example.test>"
    msg.set_content(body)
    for name, data in attachments or []:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def nested() -> bytes:
    """mixed( alternative(text, related(html, image)), attached message, pdf )."""
    inner = simple(subject="Inner forwarded", body="inner body\n")
    return (
        b"From: =?iso-8859-1?q?J=F6rg?= <joerg@example.test>\r\n"
        b"To: bob@example.test\r\n"
        b"Subject: =?utf-8?B?TmVzdGVkIMOcYmVyc2ljaHQ=?=\r\n"
        b"Date: Tue, 02 Jan 2024 09:00:00 +0000\r\n"
        b"Message-ID: <nested@example.test>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        b"preamble\r\n--outer\r\n"
        b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
        b"quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe aus M=C3=BCnchen\r\n"
        b'--alt\r\nContent-Type: multipart/related; boundary="rel"\r\n\r\n'
        b"--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Gr\xc3\xbc\xc3\x9fe</p>\r\n"
        b"--rel\r\nContent-Type: image/png\r\nContent-ID: <img1>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"\x89PNG fake") + b"\r\n"
        b"--rel--\r\n--alt--\r\n"
        b"--outer\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n"
        b'--outer\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; '
        b'filename="report.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.b64encode(b"%PDF-1.4 fake") + b"\r\n--outer--\r\nepilogue\r\n"
    )


def broken_charsets() -> bytes:
    """Unknown charset in a header word and a body declared as UTF-8 that is Latin-1."""
    return (
        b"From: Someone <s@example.test>\r\n"
        b"Subject: =?x-klingon?q?nuqneH?= and =?utf-8?b?!!!notbase64?=\r\n"
        b"Subject-Raw: caf\xe9 8bit header\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"caf\xe9 cr\xe8me \xff\xfe\r\n"
    )


def unknown_body_charset() -> bytes:
    return (b"From: x@example.test\r\nSubject: unknown charset\r\n"
            b"Content-Type: text/plain; charset=x-does-not-exist\r\n\r\nplain \xe4 body\r\n")


def rfc2231_names() -> bytes:
    """RFC 2231 encoded and continued file names, and an RFC 2047 encoded one (Outlook style)."""
    return (
        b"From: a@example.test\r\nSubject: names\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=UTF-8''%C3%BCbersicht%20%E2%82%AC.txt\r\n"
        b"\r\none\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment;\r\n filename*0*=iso-8859-1''Gr%F6%DFe;\r\n"
        b" filename*1=\"_teil2.csv\"\r\n\r\ntwo\r\n"
        b"--b\r\nContent-Type: application/octet-stream;\r\n"
        b" name=\"=?utf-8?q?R=C3=A9sum=C3=A9.doc?=\"\r\n"
        b"\r\nthree\r\n--b--\r\n"
    )


def hostile_names() -> bytes:
    """Attachment names that try to escape the folder or are otherwise unusable."""
    names = ["../../etc/passwd", "C:\\x", "CON", "", "/abs/evil.sh", "dup.txt", "dup.txt",
             "..", "a\x01b\x7f.txt", "x" * 400 + ".bin"]
    parts = [b"From: a@example.test\r\nSubject: hostile\r\nMIME-Version: 1.0\r\n"
             b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
             b"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"]
    for i, name in enumerate(names):
        parts.append(b"--b\r\nContent-Type: application/octet-stream\r\n"
                     b'Content-Disposition: attachment; filename="' + name.encode() + b'"\r\n\r\n'
                     + f"payload {i}".encode() + b"\r\n")
    parts.append(b"--b--\r\n")
    return b"".join(parts)


HOSTILE_COUNT = 10


def huge_headers() -> bytes:
    """A 200 KB folded Subject, 2,000 Received lines and a To with 1,000 addresses."""
    subject = b"Subject: " + b"\r\n ".join([b"=?utf-8?q?w=C3=B6rd?="] * 10000) + CRLF
    received = b"".join(b"Received: from h%d by mx; Mon, 1 Jan 2024 00:00:00 +0000\r\n" % i
                        for i in range(2000))
    to = b"To: " + b", ".join(b"u%d@example.test" % i for i in range(1000)) + CRLF
    return b"From: a@example.test\r\n" + to + received + subject + b"\r\nbody\r\n"


def missing_headers() -> bytes:
    return b"\r\njust a body, no headers at all\r\n"


def html_only() -> bytes:
    return (b"From: h@example.test\r\nSubject: html\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode("<html><head><style>p{}</style></head><body><h1>Title</h1>"
                               "<p>Caf&eacute; &amp; cr\u00e8me</p><script>x()</script>"
                               "<div>line<br>two</div></body></html>".encode()) + b"\r\n")


def bad_base64_and_boundary() -> bytes:
    """A part with broken base64, and a multipart whose closing boundary is missing."""
    return (b"From: b@example.test\r\nSubject: broken\r\nContent-Type: multipart/mixed; "
            b'boundary="never"\r\n\r\n--never\r\nContent-Type: application/zip\r\n'
            b"Content-Disposition: attachment; filename=z.zip\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n@@@not base 64@@@=\r\n")


def deep_nesting(depth: int = 200) -> bytes:
    """Multiparts nested ``depth`` deep."""
    head = b"From: d@example.test\r\nSubject: deep\r\n"
    body = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for i in range(depth):
        b = b"b%d" % i
        body = (b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b + b"\r\n"
                + body + b"\r\n--" + b + b"--\r\n")
    return head + body


CORPUS: dict[str, bytes] = {
    "simple": simple(attachments=[("a.txt", b"A")]),
    "nested": nested(),
    "broken_charsets": broken_charsets(),
    "unknown_body_charset": unknown_body_charset(),
    "rfc2231_names": rfc2231_names(),
    "hostile_names": hostile_names(),
    "huge_headers": huge_headers(),
    "missing_headers": missing_headers(),
    "html_only": html_only(),
    "bad_base64_and_boundary": bad_base64_and_boundary(),
    "deep_nesting": deep_nesting(),
}
