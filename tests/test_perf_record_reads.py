"""An OAuth IMAP Open (or SMTP Send Email) reads its record from the encrypted store once.

Each read is an SQLite transaction plus an AES-GCM decryption; with a cached access token the
login needs the record only for its Client Account, so a second read is pure overhead (it showed
in the cached-token login benchmark). The store is the real one; the test only counts calls.
"""

from __future__ import annotations

import pytest
from corpus.mailtest import delivered
from imap_helpers import open_step, run_ok, step

from robomail_plugin.credentials.store import SQLiteCredentialStore


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The Record Names the real store is asked for, in order."""
    names: list[str] = []
    real_get = SQLiteCredentialStore.get

    def counting_get(self, record_name):
        names.append(record_name)
        return real_get(self, record_name)

    monkeypatch.setattr(SQLiteCredentialStore, "get", counting_get)
    return names


def test_oauth_imap_open_reads_the_record_once(
    host, sandbox, mail_user, oauth_record, reads
):
    steps = [
        open_step(sandbox, mail_user, auth="oauth", record=oauth_record, folder="INBOX"),
        step("IMAP Close"),
    ]
    run_ok(host, steps)  # the first login also fetches the access token (one more read)
    reads.clear()
    result = run_ok(host, steps)  # cached token: only the login's own read is left
    assert reads == [oauth_record]
    # the session still knows whose mailbox it is (the record's Client Account)
    assert any(f"as {mail_user.username!r}" in line for line in result.log), result.log


def test_oauth_smtp_send_without_from_reads_the_record_once(
    host, sandbox, mail_user, oauth_record, reads
):
    """The record's Client Account is both the default sender and the login's user."""
    send = step(
        "SMTP Send Email",
        server=sandbox.host,
        port=sandbox.ports["submission"],
        security="starttls",
        ca_file=str(sandbox.ca_file),
        auth="oauth",
        oauth_record=oauth_record,
        to=mail_user.username,
        subject="from the record",
        body="hello",
    )
    run_ok(host, [send])  # the first send also fetches the access token (one more read)
    reads.clear()
    run_ok(host, [send])
    assert reads == [oauth_record]
    arrived = delivered(sandbox, mail_user.username, count=2)
    assert len(arrived) == 2
    # the sender is the record's Client Account (the test user's address)
    assert all(f"From: {mail_user.username}".encode() in raw for raw in arrived)
