"""Authenticated encryption of stored secrets (AES-256-GCM), bound to record and field.

The associated data names the record and the field, so a value copied to another record or field
fails to decrypt instead of silently becoming someone else's secret.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from robomail_plugin.errors import StoreError

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = b"\x01"
_AAD_PREFIX = b"robomail-store-v1\x00"


class DecryptError(Exception):
    """A value does not decrypt with this key and associated data (wrong key or tampered)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def encode_key(key: bytes) -> str:
    """The text form of a key (urlsafe base64), as ROBOMAIL_KEY and the key file hold it."""
    return base64.urlsafe_b64encode(key).decode("ascii")


def decode_key(text: str, source: str) -> bytes:
    """Parses a key's text form; the message names the source, never the value."""
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii") + b"==")
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise StoreError(
            f"The key in {source} is not valid: it must be {KEY_BYTES} random bytes in urlsafe "
            "base64 (44 characters). Generate one with: python -c \"import base64,os;"
            "print(base64.urlsafe_b64encode(os.urandom(32)).decode())\""
        )
    return raw


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key, to tell keys apart in messages."""
    return hashlib.sha256(b"robomail-key-id\x00" + key).hexdigest()[:12]


def _aad(record_name: str, field: str) -> bytes:
    return _AAD_PREFIX + record_name.encode("utf-8") + b"\x00" + field.encode("utf-8")


class SecretBox:
    """Encrypts and decrypts the secret fields of records with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise StoreError(f"An encryption key must be {KEY_BYTES} bytes.")
        self._aead = AESGCM(key)
        self.key_id = key_id(key)

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"

    def encrypt(self, plaintext: str, record_name: str, field: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        ct = self._aead.encrypt(nonce, plaintext.encode("utf-8"), _aad(record_name, field))
        return VERSION + nonce + ct

    def decrypt(self, blob: bytes, record_name: str, field: str) -> str:
        if not isinstance(blob, bytes | bytearray | memoryview):
            raise DecryptError("not an encrypted value")
        blob = bytes(blob)
        if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != VERSION:
            raise DecryptError("not an encrypted value")
        nonce, ct = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ct, _aad(record_name, field)).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise DecryptError("integrity check failed") from None
