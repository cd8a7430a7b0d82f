"""The round trip and the POP3/SMTP/Parse examples, run as written against the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import simple
from corpus.mailtest import add_oauth_record, new_user

from hostsim.runtime.host import Host

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def user(sandbox):
    return new_user(sandbox)


@pytest.fixture
def host(tmp_path, sandbox, user):
    sandbox.clear(user[0])
    return Host.load(home=tmp_path / "hostsim")


def test_round_trip_smtp_oauth_imap_pop3_parse(host, sandbox, user, fake_provider, tmp_path):
    add_oauth_record(fake_provider, user[0], name="My Mail Account")
    sandbox.seed(user[0], [simple(subject="unrelated")])
    report = tmp_path / "Q3 report.pdf"
    report.write_bytes(b"%PDF-1.4 round trip " * 50)
    out = tmp_path / "out"
    result = host.run_file(EXAMPLES / "smtp-roundtrip.yaml", {
        "Server": sandbox.host, "SmtpPort": sandbox.ports["submission"],
        "ImapPort": sandbox.ports["imaps"], "Pop3Port": sandbox.ports["pop3s"],
        "CaFile": str(sandbox.ca_file), "To": user[0], "Attachment": str(report),
        "OutDir": str(out), "Tag": "rt-1"})
    assert result.ok, (result.error, result.log)
    log = "\n".join(result.log)
    assert "IMAP: 'Report rt-1' with Q3 report.pdf" in log
    assert "POP3: message " in log and ".eml" in log
    saved = out / "attachments" / "Q3 report.pdf"
    assert f"attachment saved to {saved}" in log
    assert saved.read_bytes() == report.read_bytes()
    assert "parsed: 'Report rt-1'" in log
    assert len(list(out.glob("*.eml"))) == 1


def test_pop3_mail_loop_example(host, sandbox, user, tmp_path):
    sandbox.seed(user[0], [
        simple(subject="Invoice 1", attachments=[("inv1.pdf", b"%PDF 1")]),
        simple(subject="Hello"),
        simple(subject="invoice without file"),
    ])
    variables = {"Server": sandbox.host, "Port": sandbox.ports["pop3"], "Security": "starttls",
                 "User": user[0], "Password": user[1], "CaFile": str(sandbox.ca_file),
                 "OutDir": str(tmp_path / "inv")}
    result = host.run_file(EXAMPLES / "pop3-mail-loop.yaml", variables)
    assert result.ok, (result.error, result.log)
    assert (tmp_path / "inv" / "files" / "inv1.pdf").read_bytes() == b"%PDF 1"
    assert "3 message(s) on the server" in "\n".join(result.log)
    result = host.run_file(EXAMPLES / "pop3-mail-loop.yaml", variables)
    assert "2 message(s) on the server" in "\n".join(result.log)  # the invoice was deleted


def test_smtp_send_example(host, sandbox, user, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.pdf").write_bytes(b"%PDF a")
    (tmp_path / "out" / "b.pdf").write_bytes(b"%PDF b")
    result = host.run_file(EXAMPLES / "smtp-send.yaml", {
        "Server": sandbox.host, "Port": sandbox.ports["submission"], "User": user[0],
        "Password": user[1], "CaFile": str(sandbox.ca_file), "To": user[0],
        "Files": str(tmp_path / "out" / "*.pdf"), "CopyTo": str(tmp_path / "sent" / "r.eml")})
    assert result.ok, (result.error, result.log)
    copy = (tmp_path / "sent" / "r.eml").read_bytes()
    assert b'filename="a.pdf"' in copy and b'filename="b.pdf"' in copy
    assert user[1] not in "\n".join(result.log)


def test_parse_email_example(host, tmp_path):
    eml = tmp_path / "m.eml"
    eml.write_bytes(simple(subject="Parse me", sender="Zoë <z@example.test>",
                           attachments=[("../x.txt", b"X"), ("x.txt", b"Y")]))
    result = host.run_file(EXAMPLES / "parse-email.yaml",
                           {"File": str(eml), "OutDir": str(tmp_path / "att")})
    assert result.ok, (result.error, result.log)
    log = "\n".join(result.log)
    assert "'Parse me' from Zoë <z@example.test>" in log
    assert sorted(p.name for p in (tmp_path / "att").iterdir()) == ["x (1).txt", "x.txt"]
