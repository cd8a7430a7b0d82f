"""An open IMAP connection as a task sees it: the client, the selected folder, error wording.

IMAP Open registers one of these under the connection name; the other IMAP actions look it up.
Every server command goes through ``call`` so a refused command always becomes a
``MailProtocolError`` carrying the server's literal reply, and a dropped connection a
``ConnectFailed`` that says so.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from robomail_plugin import errors
from robomail_plugin.mail.connect import ConnectionSettings

if TYPE_CHECKING:
    from imapclient import IMAPClient

T = TypeVar("T")
KIND = "imap"

_NONEXISTENT_RE = re.compile(r"\[(NONEXISTENT|TRYCREATE)\]|doesn't exist|does not exist", re.I)


def server_reply(exc: BaseException) -> str:
    """The server's words from an imaplib/imapclient error, without the library's wrapping."""
    text = str(exc).split("\n\n", 1)[0].strip()  # imapclient appends advice after a blank line
    wrapped = re.fullmatch(r"""b(["'])(.*)\1""", text)
    if wrapped:
        text = wrapped.group(2)
    m = re.search(r"\b(NO|BAD)\s*\[b?['\"](.*)['\"]\]\s*$", text)
    if m:
        return f"{m.group(1)} {m.group(2)}"
    m = re.search(r"(?:failed|error): (.*)$", text)
    return m.group(1) if m else text


class ImapSession:
    """A logged-in IMAP connection plus what the task selected; ``close()`` logs out only."""

    def __init__(self, client: IMAPClient, settings: ConnectionSettings, account: str) -> None:
        self.client = client
        self.settings = settings
        self.account = account
        self.folder: str | None = None
        self.read_only = False
        self.uidvalidity: int | None = None

    def __repr__(self) -> str:
        where = self.settings.describe()
        return f"ImapSession({where}, account={self.account!r}, folder={self.folder!r})"

    # --- plumbing ----------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs one client call; turns library errors into robomail errors naming ``what``."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            translated = self._translate(what, exc)
            if translated is None:
                raise
            raise translated from None

    def _translate(self, what: str, exc: Exception) -> errors.RobomailError | None:
        """The robomail error for a failed call; None when ``exc`` is not a library or
        connection error (it then propagates as it is)."""
        # Loaded here, not at module level: keeps `hostsim actions` start-up light (a session
        # exists only after connect.open_imap_as has loaded imapclient anyway).
        from imapclient import exceptions as imap_exc

        if isinstance(exc, imap_exc.CapabilityError):
            return errors.MailProtocolError(
                f"{what}: the server {self.settings.describe()} lacks a needed capability ({exc})."
            )
        if isinstance(exc, imap_exc.IMAPClientAbortError):
            return errors.ConnectFailed(
                f"{what}: the connection to {self.settings.describe()} broke ({exc}). "
                "Open it again.",
                server_reply=server_reply(exc),
            )
        if isinstance(exc, imap_exc.IMAPClientError):
            reply = server_reply(exc)
            return errors.MailProtocolError(
                f"{what}: the server refused it (server said: {reply}).", server_reply=reply
            )
        if isinstance(exc, OSError):
            return errors.ConnectFailed(
                f"{what}: the connection to {self.settings.describe()} was lost "
                f"({exc.__class__.__name__}: {exc}). Open it again."
            )
        return None

    def has(self, capability: str) -> bool:
        return bool(self.call("CAPABILITY", self.client.has_capability, capability))

    def close(self) -> None:
        """LOGOUT (no CLOSE, so nothing marked \\Deleted is expunged); never raises."""
        try:
            self.client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                self.client.shutdown()

    # --- folders -----------------------------------------------------------------------------

    def folder_exists(self, folder: str) -> bool:
        return bool(self.call(f"LIST {folder!r}", self.client.folder_exists, folder))

    def create_folder(self, folder: str) -> None:
        self.call(f"CREATE {folder!r}", self.client.create_folder, folder)
        with contextlib.suppress(errors.RobomailError):
            self.call(f"SUBSCRIBE {folder!r}", self.client.subscribe_folder, folder)

    def ensure_folder(self, folder: str, create_if_missing: bool) -> None:
        """Creates ``folder`` when asked and missing; else a FolderNotFound when it is missing."""
        if self.folder_exists(folder):
            return
        if create_if_missing:
            self.create_folder(folder)
            return
        raise errors.FolderNotFound(
            f"the IMAP folder {folder!r} does not exist on {self.settings.describe()}. Check the "
            "name (folders are case-sensitive except INBOX; subfolders use the server's "
            "separator, e.g. 'Archive/2024'), or set create_if_missing: true."
        )

    def select(
        self, folder: str, *, read_only: bool = False, create_if_missing: bool = False
    ) -> dict[str, Any]:
        """SELECT/EXAMINE ``folder``; returns the folder info (total, recent, uidnext...)."""
        from imapclient import exceptions as imap_exc  # loaded with the connection

        # Checked first: a failed SELECT would leave no folder selected at all.
        self.ensure_folder(folder, create_if_missing)
        try:
            resp = self.client.select_folder(folder, readonly=read_only)
        except imap_exc.IMAPClientError as exc:
            reply = server_reply(exc)
            self.folder = None  # the server has left the previous folder
            if _NONEXISTENT_RE.search(reply):
                self.ensure_folder(folder, False)  # raises FolderNotFound with advice
            raise errors.MailProtocolError(
                f"selecting {folder!r} failed (server said: {reply}).", server_reply=reply
            ) from None
        except OSError as exc:
            self.call("SELECT", _raise, exc)
            raise  # unreachable: call() raised
        self.folder = folder
        self.read_only = read_only
        self.uidvalidity = int(resp.get(b"UIDVALIDITY", 0) or 0) or None
        return {
            "folder": folder,
            "total": int(resp.get(b"EXISTS", 0)),
            "recent": int(resp.get(b"RECENT", 0)),
            "uidnext": int(resp.get(b"UIDNEXT", 0) or 0) or None,
            "uidvalidity": self.uidvalidity,
            "read_only": read_only,
            "flags": [_text(f) for f in resp.get(b"FLAGS", ())],
        }

    def require_selected(self, action: str) -> str:
        if self.folder is None:
            raise errors.InvalidParameter(
                f"{action}: no folder is selected on this connection. Give IMAP Open a folder, "
                "or run IMAP Select Mail Folder first."
            )
        return self.folder

    def require_writable(self, action: str) -> None:
        if self.read_only:
            raise errors.InvalidParameter(
                f"{action}: folder {self.folder!r} was selected read-only; select it with "
                "read_only: false to change messages."
            )


def _raise(exc: BaseException) -> None:
    raise exc


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)
