"""Export and import: round trips with and without secrets and passphrase, conflicts, and
malformed files that change nothing."""

from __future__ import annotations

import json
import stat

import attrs
import pytest
from credentials_support import CANARY

from robomail_plugin.credentials import transfer
from robomail_plugin.credentials.records import OAuthRecord
from robomail_plugin.credentials.store import SQLiteCredentialStore
from robomail_plugin.errors import ImportFileInvalid, InvalidParameter, RecordExists


def rec(name: str, **kw) -> OAuthRecord:
    fields = dict(
        record_name=name,
        client_account=f"{name}@example.test",
        client_id=f"id-{name}",
        client_secret=f"{CANARY}-secret-{name}",
        refresh_token=f"{CANARY}-refresh-{name}",
        authorization_endpoint="https://auth.example.test/authorize",
        token_endpoint="https://auth.example.test/token",
        scope="mail offline_access",
    )
    fields.update(kw)
    return OAuthRecord(**fields)


@pytest.fixture
def source(robomail_home):
    store = SQLiteCredentialStore(robomail_home / "source")
    for name in ("a", "b"):
        store.add(rec(name))
    return store


@pytest.fixture
def target(robomail_home):
    return SQLiteCredentialStore(robomail_home / "target")


def export(source, path, **kw):
    doc = transfer.build_document(source.list(), **kw)
    transfer.write_export(path, doc)
    return doc


def load(path, passphrase=None):
    return transfer.parse_export(transfer.read_document(path), passphrase)


def test_round_trip_without_secrets(source, target, tmp_path):
    path = tmp_path / "out.json"
    doc = export(source, path, include_secrets=False, passphrase=None)
    assert doc["format"] == "robomail-oauth" and doc["version"] == 1 and doc["secrets"] == "none"
    assert CANARY not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    report = transfer.import_records(target, load(path))
    assert report.added == ("a", "b")
    got = target.get("a")
    assert got == attrs.evolve(rec("a"), client_secret="", refresh_token="")


def test_secrets_are_never_exported_in_plain_text(source, tmp_path):
    path = tmp_path / "out.json"
    with pytest.raises(InvalidParameter, match="only encrypted"):
        export(source, path, include_secrets=True, passphrase=None)
    assert not path.exists()


def test_round_trip_with_a_passphrase(source, target, tmp_path):
    path = tmp_path / "out.json"
    doc = export(source, path, include_secrets=False, passphrase="correct horse")
    assert doc["secrets"] == "encrypted" and doc["encryption"]["kdf"] == "scrypt"
    assert CANARY not in path.read_text()
    assert "id-a" in path.read_text()  # the non-secret part stays readable
    with pytest.raises(ImportFileInvalid, match="give the passphrase"):
        load(path)
    with pytest.raises(ImportFileInvalid, match="Wrong passphrase") as info:
        load(path, "wrong horse")
    assert CANARY not in str(info.value)
    transfer.import_records(target, load(path, "correct horse"))
    assert target.list() == source.list()


def test_editing_the_visible_part_of_an_encrypted_export_is_detected(source, tmp_path):
    path = tmp_path / "out.json"
    doc = export(source, path, include_secrets=True, passphrase="pw")
    doc["records"][0]["token_endpoint"] = "https://evil.example.test/token"
    path.write_text(json.dumps(doc))
    with pytest.raises(ImportFileInvalid, match="altered"):
        load(path, "pw")


def test_conflicts(source, target, tmp_path):
    target.add(rec("a", client_id="old-id", refresh_token="old-refresh"))
    path = tmp_path / "out.json"
    export(source, path, include_secrets=False, passphrase=None)
    parsed = load(path)
    with pytest.raises(RecordExists, match="nothing was changed.*'a'"):
        transfer.import_records(target, parsed, "error")
    assert [r.record_name for r in target.list()] == ["a"]

    report = transfer.import_records(target, parsed, "rename")
    assert report.renamed == (("a", "a (2)"),) and report.added == ("a (2)", "b")
    assert target.get("a").client_id == "old-id"
    assert target.get("a (2)").client_id == "id-a"

    report = transfer.import_records(target, parsed, "overwrite")
    assert set(report.overwritten) == {"a", "b"}
    assert target.get("a").client_id == "id-a"
    # a file without secrets keeps the secrets already stored
    assert target.get("a").refresh_token == "old-refresh"


def test_overwrite_with_secrets_replaces_them(source, target, tmp_path):
    target.add(rec("a", refresh_token="old-refresh"))
    path = tmp_path / "out.json"
    export(source, path, include_secrets=True, passphrase="pw")
    transfer.import_records(target, load(path, "pw"), "overwrite")
    assert target.get("a").refresh_token == f"{CANARY}-refresh-a"


def _document(**changes):
    doc = transfer.build_document([rec("a"), rec("b")], include_secrets=False, passphrase=None)
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a robomail OAuth export"),
        (json.dumps({"format": "something-else", "version": 1}), "not a robomail OAuth export"),
        (json.dumps(_document(version=2)), "version 2"),
        (json.dumps(_document(records={"a": 1})), "must be a list"),
        (json.dumps(_document(secrets="maybe")), "none or encrypted"),
        (json.dumps(_document(records=[{**_document()["records"][0],
                                         "token_endpoint": "http://evil.example/t"}])),
         "record #1 \\('a'\\) is invalid.*https"),
        (json.dumps(_document(records=[_document()["records"][0]] * 2)), "names 'a' twice"),
        (json.dumps(_document(records=[{**_document()["records"][0], "extra": 1}])),
         "unexpected field"),
        (json.dumps(_document(records=[{**_document()["records"][0], "scope": " "}])),
         "Scope is required"),
        (json.dumps(_document(records=["a"])), "not an object"),
    ],
)
def test_malformed_files_change_nothing(content, message, target, tmp_path):
    target.add(rec("kept"))
    before = target.list()
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ImportFileInvalid, match=message) as info:
        transfer.import_records(target, load(path), "overwrite")
    assert CANARY not in str(info.value)
    assert target.list() == before


def test_a_file_that_fails_half_way_changes_nothing(target, monkeypatch, tmp_path):
    """The store applies an import in one transaction: a late failure rolls back the rest."""
    target.add(rec("a"))
    parsed = transfer.ParsedExport(records=(rec("new1"), rec("new2")), has_secrets=True)
    real_insert = type(target)._insert
    calls = []

    def failing_insert(self, conn, record):
        calls.append(record.record_name)
        if record.record_name == "new2":
            raise RecordExists("simulated clash")
        return real_insert(self, conn, record)

    with monkeypatch.context() as m:
        m.setattr(type(target), "_insert", failing_insert)
        with pytest.raises(RecordExists):
            transfer.import_records(target, parsed, "error")
    assert calls == ["new1", "new2"]
    assert [r.record_name for r in target.list()] == ["a"]


def test_a_missing_file_is_a_file_error(tmp_path):
    from robomail_plugin.errors import FileError

    with pytest.raises(FileError, match="Cannot read"):
        transfer.read_document(tmp_path / "nope.json")
