"""An OAuth IMAP Open reads its record from the encrypted store once per login.

Each read is an SQLite transaction plus an AES-GCM decryption; with a cached access token the
login needs the record only for its Client Account, so a second read is pure overhead (it showed
in the cached-token login benchmark). The store is the real one; the test only counts calls.
"""

from __future__ import annotations

from imap_helpers import open_step, run_ok, step

from robomail_plugin.credentials.store import SQLiteCredentialStore


def test_oauth_imap_open_reads_the_record_once(
    host, sandbox, mail_user, oauth_record, monkeypatch
):
    reads: list[str] = []
    real_get = SQLiteCredentialStore.get

    def counting_get(self, record_name):
        reads.append(record_name)
        return real_get(self, record_name)

    monkeypatch.setattr(SQLiteCredentialStore, "get", counting_get)
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
