"""The example tasks in examples/ run as written against the sandbox (only variables differ)."""

from __future__ import annotations

from pathlib import Path

from imap_helpers import client, flags_by_subject
from mail_fixtures import make_message

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def sandbox_vars(sandbox, user, record):
    return {
        "Server": sandbox.host,
        "Port": sandbox.ports["imaps"],
        "CaFile": str(sandbox.ca_file),
        "User": user.username,
        "Password": user.password,
        "Record": record,
    }


def test_mail_loop_example(host, sandbox, mail_user, oauth_record):
    sandbox.deliver(mail_user.username, make_message("Invoice 12", sender="shop@x.test"))
    sandbox.deliver(mail_user.username, make_message("Weekly", sender="newsletter@x.test"))
    sandbox.deliver(mail_user.username, make_message("[news] Spring", sender="club@x.test"))
    sandbox.deliver(mail_user.username, make_message("Hi", sender="friend@x.test"))
    variables = sandbox_vars(sandbox, mail_user, oauth_record)
    for security, port, sasl in (("ssl", "imaps", "xoauth2"), ("starttls", "imap", "oauthbearer")):
        variables.update(Security=security, Port=sandbox.ports[port], Sasl=sasl)
        result = host.run_file(EXAMPLES / "imap-mail-loop.yaml", variables)
        assert result.ok, (result.error, result.log)
    text = "\n".join(result.log)
    assert "INBOX now holds 2 messages, 2 unread" in text
    assert flags_by_subject(sandbox, mail_user) == {"Invoice 12": {"\\Flagged"}, "Hi": set()}
    assert set(flags_by_subject(sandbox, mail_user, "Newsletters")) == {"Weekly", "[news] Spring"}


def test_folders_and_flags_example(host, sandbox, mail_user):
    for i in range(3):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    with client(sandbox, mail_user) as c:
        c.add_flags([1, 2], ["\\Seen"])
        c.add_flags([3], ["\\Deleted"])
    result = host.run_file(EXAMPLES / "imap-folders-and-flags.yaml",
                           sandbox_vars(sandbox, mail_user, ""))
    assert result.ok, (result.error, result.log)
    assert "purged 1 deleted message(s)" in "\n".join(result.log)
    assert flags_by_subject(sandbox, mail_user) == {}
    assert set(flags_by_subject(sandbox, mail_user, "Archive/Read")) == {"m0", "m1"}


def test_download_example(host, sandbox, mail_user, oauth_record, tmp_path):
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    sandbox.deliver(mail_user.username, make_message("with file", date=now,
                                                     attachment=("plan.pdf", b"%PDF-1")))
    sandbox.deliver(mail_user.username, make_message("plain", date=now))
    variables = sandbox_vars(sandbox, mail_user, oauth_record)
    variables["SaveTo"] = str(tmp_path / "dl")
    result = host.run_file(EXAMPLES / "imap-download.yaml", variables)
    assert result.ok, (result.error, result.log)
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["1 with file.eml",
                                                                   "attachments"]
    assert (tmp_path / "dl" / "attachments" / "plan.pdf").read_bytes() == b"%PDF-1"
    assert flags_by_subject(sandbox, mail_user)["with file"] == {"\\Seen"}


def test_check_for_email_example(host, sandbox, mail_user, oauth_record):
    variables = sandbox_vars(sandbox, mail_user, oauth_record)
    sandbox.deliver(mail_user.username, make_message("one"))
    first = host.run_file(EXAMPLES / "check-for-email.yaml", variables)
    assert first.ok, (first.error, first.log)
    sandbox.deliver(mail_user.username, make_message("two"))
    second = host.run_file(EXAMPLES / "check-for-email.yaml", variables)
    assert second.ok, (second.error, second.log)
    assert "1 new message(s)" in "\n".join(first.log)
    assert "new: two from" in "\n".join(second.log)
    assert "new: one" not in "\n".join(second.log)
