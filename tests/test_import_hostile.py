"""Hostile import files through `hostsim oauth import`: each is refused quickly with one line that
names the file and says what to do, and the store is left as it was.

The CLI runs in a child process with a memory cap and a timeout, so a regression (reading a device
forever, a 4 GiB key derivation, a FIFO that blocks) fails the test instead of hurting the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from robomail_plugin.credentials import transfer
from robomail_plugin.credentials.records import OAuthRecord

MEMORY_CAP = 1 << 30  # far more than an import needs, far less than a 4 GiB scrypt
TIMEOUT_S = 60


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def oauth(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hostsim.cli.main", "oauth", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        preexec_fn=_cap_memory,
    )


def record(name: str) -> OAuthRecord:
    return OAuthRecord(
        record_name=name,
        client_account=f"{name}@example.test",
        client_id=f"id-{name}",
        client_secret=f"secret-{name}",
        refresh_token=f"refresh-{name}",
        authorization_endpoint="https://auth.example.test/authorize",
        token_endpoint="https://auth.example.test/token",
        scope="mail offline_access",
    )


@pytest.fixture
def listing():
    """The store holds one record, added as a user would; returns `oauth list` output."""
    added = oauth(
        "add", "kept", "--account", "kept@example.test", "--client-id", "id-kept",
        "--auth-endpoint", "https://auth.example.test/authorize",
        "--token-endpoint", "https://auth.example.test/token", "--scope", "mail",
    )
    assert added.returncode == 0, added.stderr
    out = oauth("list")
    assert out.returncode == 0 and "kept" in out.stdout
    return out.stdout


def refused(path: Path, listing: str, *extra: str, named: bool = True) -> str:
    """Runs the import, checks it failed with one clear line and changed nothing; returns it.

    The line names the file, except for the sealed part (found after the editor has read it).
    """
    proc = oauth("import", str(path), *extra)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    line = lines[0]
    assert "Traceback" not in line and (str(path) in line or not named)
    assert "Nothing was imported" in line
    assert oauth("list").stdout == listing
    return line


def test_deeply_nested_json_is_refused(listing, tmp_path):
    path = tmp_path / "deep.json"
    depth = 200_000
    path.write_text(
        '{"format": "robomail-oauth", "version": 1, "secrets": "none", "records": ['
        + "[" * depth + "]" * depth + "]}"
    )
    line = refused(path, listing)
    assert line.startswith("error [import_invalid]") and "nested" in line


def _encrypted(path: Path, **encryption: object) -> None:
    doc = transfer.build_document([record("new")], include_secrets=True, passphrase="pw")
    doc["encryption"].update(encryption)
    transfer.write_export(path, doc)


@pytest.mark.parametrize(
    "n, r, p",
    [
        (2**20, 32, 16),  # the largest the importer used to accept: 4 GiB and 16 passes
        (2**16, 8, 1),
        (2**15, 9, 1),
        (2**15, 8, 2),
        ("32768", 8, 1),
    ],
)
def test_scrypt_parameters_above_what_export_writes_are_refused(listing, tmp_path, n, r, p):
    path = tmp_path / "costly.json"
    _encrypted(path, n=n, r=r, p=p)
    line = refused(path, listing, "--passphrase", "pw")
    assert line.startswith("error [import_invalid]") and "scrypt" in line
    assert "n=32768, r=8, p=1" in line
    # what export writes is still read
    _encrypted(path)
    proc = oauth("import", str(path), "--passphrase", "pw")
    assert proc.returncode == 0, proc.stderr
    assert "added 'new'" in proc.stdout


def test_deeply_nested_sealed_secrets_are_refused(listing, tmp_path):
    """The sealed part is checked like the visible part (its author knows the passphrase)."""
    path = tmp_path / "deep-secrets.json"
    doc = transfer.build_document([record("new")], include_secrets=True, passphrase="pw")
    enc = doc["encryption"]
    salt = transfer._unb64(enc["salt"], "salt")
    key = transfer._derive("pw", salt, enc["n"], enc["r"], enc["p"])
    depth = 200_000
    plain = ('{"new": ' + "[" * depth + "]" * depth + "}").encode()
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plain, transfer._aad(doc))
    enc.update(nonce=transfer._b64(nonce), ciphertext=transfer._b64(sealed))
    transfer.write_export(path, doc)
    line = refused(path, listing, "--passphrase", "pw", named=False)
    assert line.startswith("error [import_invalid]") and "nested" in line


def test_a_character_device_is_refused_without_reading_it(listing):
    line = refused(Path("/dev/zero"), listing)
    assert line.startswith("error [file_error]") and "not a regular file" in line


def test_a_fifo_is_refused_without_blocking(listing, tmp_path):
    path = tmp_path / "pipe.json"
    os.mkfifo(path)
    line = refused(path, listing)
    assert line.startswith("error [file_error]") and "not a regular file" in line


def test_a_symlink_to_a_device_is_refused(listing, tmp_path):
    path = tmp_path / "link.json"
    path.symlink_to("/dev/zero")
    line = refused(path, listing)
    assert "not a regular file" in line


def test_a_file_larger_than_any_export_is_refused(listing, tmp_path):
    path = tmp_path / "huge.json"
    with path.open("wb") as fh:
        fh.truncate(transfer.MAX_FILE_BYTES + 1)  # sparse: costs no disk space
    line = refused(path, listing)
    assert line.startswith("error [import_invalid]") and "10 MiB" in line

