"""Where the store's encryption key lives: ROBOMAIL_KEY, else the OS keyring, else a key file.

A key source can stage a new key before the store is re-encrypted and commit it after, so a crash
in the middle of a rotation never leaves the store encrypted with a key nobody kept.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Protocol

from robomail_plugin.credentials.crypto import decode_key, encode_key, new_key
from robomail_plugin.errors import StoreError
from robomail_plugin.private_files import flocked, write_private

ENV_KEY = "ROBOMAIL_KEY"
ENV_KEYRING = "ROBOMAIL_KEYRING"  # "0"/"off" disables the OS keyring
KEY_FILE = "store.key"
KEYRING_SERVICE = "robomail"


class KeySource(Protocol):
    """Loads, creates and rotates the store key."""

    description: str
    #: False when robomail cannot write the key (ROBOMAIL_KEY): rotation needs a given key.
    can_store: bool

    def load(self) -> bytes | None: ...

    def create(self) -> bytes: ...

    def pending(self) -> bytes | None: ...

    def stage(self, key: bytes) -> None: ...

    def commit(self, key: bytes) -> None: ...

    def discard_pending(self) -> None: ...


class EnvKeySource:
    """The key given in ROBOMAIL_KEY (urlsafe base64 of 32 bytes); robomail never writes it."""

    description = f"the {ENV_KEY} environment variable"
    can_store = False

    def load(self) -> bytes | None:
        return decode_key(os.environ[ENV_KEY], self.description)

    def create(self) -> bytes:
        key = self.load()
        assert key is not None
        return key

    def pending(self) -> bytes | None:
        return None

    def stage(self, key: bytes) -> None:
        return None

    def commit(self, key: bytes) -> None:
        return None

    def discard_pending(self) -> None:
        return None


def _write_private(path: Path, text: str, *, exclusive: bool) -> None:
    """Writes a 0600 file; exclusive creation, or atomically replacing through a temp file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, text.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
    else:
        write_private(path, text.encode("ascii"))
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileKeySource:
    """A key file (mode 0600) in ROBOMAIL_HOME; the fallback when there is no keyring."""

    can_store = True

    def __init__(self, home: Path) -> None:
        self.path = home / KEY_FILE
        self.pending_path = home / (KEY_FILE + ".new")
        self.description = f"the key file {self.path}"

    def _read(self, path: Path) -> bytes | None:
        try:
            text = path.read_text("ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"Cannot read {path}: {exc.__class__.__name__}.") from None
        return decode_key(text, f"the key file {path}")

    def load(self) -> bytes | None:
        return self._read(self.path)

    def create(self) -> bytes:
        key = new_key()
        try:
            _write_private(self.path, encode_key(key), exclusive=True)
        except FileExistsError:
            existing = self.load()
            assert existing is not None
            return existing
        return key

    def pending(self) -> bytes | None:
        return self._read(self.pending_path)

    def stage(self, key: bytes) -> None:
        _write_private(self.pending_path, encode_key(key), exclusive=False)

    def commit(self, key: bytes) -> None:
        if self.pending() != key:
            self.stage(key)
        os.replace(self.pending_path, self.path)
        _fsync_dir(self.path.parent)

    def discard_pending(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.pending_path.unlink()


class KeyringKeySource:
    """The OS keyring (Secret Service, macOS Keychain, Windows Credential Locker)."""

    can_store = True

    def __init__(self, keyring_module: Any, home: Path) -> None:
        self._kr = keyring_module
        self.username = f"store-key:{home.resolve()}"
        self.description = f"the OS keyring (service {KEYRING_SERVICE!r}, {self.username!r})"

    def _get(self, username: str) -> bytes | None:
        try:
            text = self._kr.get_password(KEYRING_SERVICE, username)
        except Exception as exc:  # keyring backends raise many types
            raise StoreError(
                f"The OS keyring could not be read ({exc.__class__.__name__}). Unlock it, or set "
                f"{ENV_KEY}, or set {ENV_KEYRING}=0 to use a key file."
            ) from None
        return None if text is None else decode_key(text, self.description)

    def _set(self, username: str, key: bytes) -> None:
        try:
            self._kr.set_password(KEYRING_SERVICE, username, encode_key(key))
        except Exception as exc:
            raise StoreError(
                f"The OS keyring could not be written ({exc.__class__.__name__})."
            ) from None

    def load(self) -> bytes | None:
        return self._get(self.username)

    def create(self) -> bytes:
        key = new_key()
        self._set(self.username, key)
        return key

    def pending(self) -> bytes | None:
        return self._get(self.username + ":pending")

    def stage(self, key: bytes) -> None:
        self._set(self.username + ":pending", key)

    def commit(self, key: bytes) -> None:
        self._set(self.username, key)
        self.discard_pending()

    def discard_pending(self) -> None:
        with contextlib.suppress(Exception):
            self._kr.delete_password(KEYRING_SERVICE, self.username + ":pending")


def usable_keyring() -> Any | None:
    """The ``keyring`` module when it is installed, enabled and has a working backend."""
    if os.environ.get(ENV_KEYRING, "").strip().lower() in {"0", "no", "false", "off"}:
        return None
    try:
        import keyring
        import keyring.backends.fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
        if isinstance(backend, keyring.backends.fail.Keyring) or backend.priority <= 0:
            return None
    except Exception:
        return None
    return keyring


def select_key_source(home: Path) -> KeySource:
    """ROBOMAIL_KEY wins; an existing key file is kept; else the keyring, else a new key file."""
    if os.environ.get(ENV_KEY, "").strip():
        return EnvKeySource()
    file_source = FileKeySource(home)
    if file_source.path.exists() or file_source.pending_path.exists():
        return file_source
    kr = usable_keyring()
    if kr is not None:
        return KeyringKeySource(kr, home)
    return file_source


def home_lock(home: Path, name: str = "store.lock") -> contextlib.AbstractContextManager[None]:
    """An exclusive lock (flock) across processes, for key creation and rotation."""
    return flocked(home / name)
