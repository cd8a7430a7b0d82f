"""An open IMAP connection as a task sees it: the client, the selected folder, error wording.

IMAP Open registers one of these under the connection name; the other IMAP actions look it up.
Every server command goes through ``call`` so a refused command always becomes a
``MailProtocolError`` carrying the server's literal reply, and a dropped connection a
``ConnectFailed`` that says so.

Round trips are what a loop costs over a real network, so the session remembers what it has
learnt: the folders known to exist (asked once per connection, forgotten when a command says one
is gone; INBOX always exists, in any case) and the message a loop is on (its flags, and its bytes
when the loop fetched them), so an action in the loop body needs one command, or none.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from robomail_plugin import errors
from robomail_plugin.message.wire_text import wire_text
from robomail_plugin.schema import ActionContext, ActionFailed
from robomail_plugin.transport.connect import ConnectionSettings

if TYPE_CHECKING:
    from email.message import Message

    from imapclient import IMAPClient

T = TypeVar("T")
KIND = "imap"


def wire(client: IMAPClient) -> Any:
    """imapclient's own imaplib connection: the one place robomail reaches past imapclient's
    API. It offers no way to read the untagged answers a command left (COPYUID, EXPUNGE, ALERT)
    or to send a SEARCH with literals, and it turns imaplib's debug formatting on."""
    return client._imap

_NONEXISTENT_RE = re.compile(r"\[(NONEXISTENT|TRYCREATE)\]|doesn't exist|does not exist", re.I)
#: Longest UID set put in one command. Servers limit a command line (Dovecot 64 KB, others 8 KB;
#: RFC 7162 asks clients to stay under 8,192 octets); consecutive UIDs become ranges first.
MAX_SET_CHARS = 7000


def is_inbox(folder: str) -> bool:
    """INBOX is case-insensitive (RFC 3501 5.1); other names are compared as written."""
    return folder.upper() == "INBOX"


def folder_name(folder: str) -> str:
    """The name to send and remember: INBOX in capitals, anything else unchanged."""
    return "INBOX" if is_inbox(folder) else folder


def uid_sets(uids: list[int | str], max_chars: int | None = None) -> list[str]:
    """Compact IMAP UID sets (``1:5,9,12:14``), each at most ``max_chars`` (MAX_SET_CHARS) long.

    Consecutive UIDs become ranges; ranges given as text (``10:*``) are kept as they are.
    """
    max_chars = max_chars or MAX_SET_CHARS
    numbers = sorted({u for u in uids if isinstance(u, int)})
    parts: list[str] = []
    at = 0
    while at < len(numbers):
        end = at
        while end + 1 < len(numbers) and numbers[end + 1] == numbers[end] + 1:
            end += 1
        lo, hi = numbers[at], numbers[end]
        parts.append(str(lo) if lo == hi else f"{lo}:{hi}")
        at = end + 1
    parts += [u for u in uids if isinstance(u, str)]
    sets: list[str] = []
    current = ""
    for part in parts:
        if current and len(current) + 1 + len(part) > max_chars:
            sets.append(current)
            current = ""
        current = f"{current},{part}" if current else part
    if current:
        sets.append(current)
    return sets


@attrs.define
class CurrentMessage:
    """The message a loop is on: what it fetched, so its body's actions need not ask again."""

    folder: str
    uidvalidity: int | None
    uid: int
    number: int | None = None
    #: its flags as last reported by the server; None when a range STORE may have changed them
    flags: set[str] | None = None
    raw: bytes | None = attrs.field(default=None, repr=False)
    msg: Message | None = attrs.field(default=None, repr=False)


def server_reply(exc: BaseException) -> str:
    """The server's words from an imaplib/imapclient error, without the library's wrapping.

    For commands after login; a refused login goes through ``connect._clean_imap_reply``, which
    cleans differently (its docstring says how)."""
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
        #: why the connection was dropped (it broke), or None while it is usable
        self.dropped: str | None = None
        #: folders known to exist on this connection (INBOX always does)
        self.known_folders: set[str] = set()
        #: the message the innermost running loop is on, or None
        self.current: CurrentMessage | None = None
        # The capabilities the server sent with its login answer, kept now: imapclient drops
        # untagged answers at SELECT and would ask again (one more round trip) at the first
        # command that consults them.
        with contextlib.suppress(Exception):
            client.capabilities()
        # imapclient sets imaplib's debug level to 5 and sends its messages to a logger, so
        # imaplib formats the repr of every answer (a 100 KB message included) for a log line
        # that is then dropped: a third of a download loop's time. Kept when someone logs it.
        if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
            with contextlib.suppress(AttributeError):
                wire(client).debug = 0

    def __repr__(self) -> str:
        where = self.settings.describe()
        return f"ImapSession({where}, account={self.account!r}, folder={self.folder!r})"

    # --- plumbing ----------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs one client call; turns library errors into robomail errors naming ``what``."""
        if self.dropped is not None:
            raise self.dropped_error(what)
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
        if isinstance(exc, imap_exc.IMAPClientAbortError | imap_exc.ProtocolError):
            self.drop(f"{exc.__class__.__name__}: {exc}")
            return errors.ConnectFailed(
                f"{what}: the connection to {self.settings.describe()} broke ({exc}), so it "
                "is closed. Open it again with IMAP Open.",
                server_reply=server_reply(exc),
            )
        if isinstance(exc, imap_exc.IMAPClientError):
            reply = server_reply(exc)
            return errors.MailProtocolError(
                f"{what}: the server refused it (server said: {reply}).", server_reply=reply
            )
        if isinstance(exc, OSError):
            self.drop(f"{exc.__class__.__name__}: {exc}")
            return errors.ConnectFailed(
                f"{what}: the connection to {self.settings.describe()} was lost "
                f"({exc.__class__.__name__}: {exc}), so it is closed. Open it again with IMAP "
                "Open."
            )
        return None

    def drop(self, why: str) -> None:
        """Closes the connection after it broke (a timeout, an answer that breaks the protocol):
        client and server no longer agree where the conversation is, and a late answer would be
        read as the answer to the next command. Later calls fail saying so."""
        if self.dropped is None:
            self.dropped = why
        with contextlib.suppress(Exception):
            self.client.shutdown()

    def dropped_error(self, what: str) -> errors.ConnectFailed:
        return errors.ConnectFailed(
            f"{what}: the connection to {self.settings.describe()} was dropped after an earlier "
            f"error ({self.dropped}). Open it again with IMAP Open."
        )

    @staticmethod
    def release_dropped(ctx: ActionContext, name: str) -> None:
        """Lets go of connection ``name`` if it was dropped, so IMAP Open can use the name."""
        try:
            old = ctx.connection(name, KIND)
        except ActionFailed:
            return
        if isinstance(old, ImapSession) and old.dropped is not None:
            ctx.close_connection(name, KIND)

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
        """Whether ``folder`` exists: LIST once per folder and connection, INBOX never."""
        folder = folder_name(folder)
        if folder == "INBOX" or folder in self.known_folders:
            return True
        found = bool(self.call(f"LIST {folder!r}", self.client.folder_exists, folder))
        if found:
            self.known_folders.add(folder)
        return found

    def folder_gone(self, folder: str) -> None:
        """A command said ``folder`` does not exist (deleted meanwhile): ask again next time."""
        self.known_folders.discard(folder_name(folder))

    def create_folder(self, folder: str) -> None:
        self.call(f"CREATE {folder!r}", self.client.create_folder, folder)
        self.known_folders.add(folder_name(folder))
        with contextlib.suppress(errors.RobomailError):
            self.call(f"SUBSCRIBE {folder!r}", self.client.subscribe_folder, folder)

    def folder_not_found(self, folder: str) -> errors.FolderNotFound:
        self.folder_gone(folder)
        return errors.FolderNotFound(
            f"the IMAP folder {folder!r} does not exist on {self.settings.describe()}. Check the "
            "name (folders are case-sensitive except INBOX; subfolders use the server's "
            "separator, e.g. 'Archive/2024'), or set create_if_missing: true."
        )

    def ensure_folder(self, folder: str, create_if_missing: bool) -> None:
        """Creates ``folder`` when asked and missing; else a FolderNotFound when it is missing."""
        if self.folder_exists(folder):
            return
        if create_if_missing:
            self.create_folder(folder)
            return
        raise self.folder_not_found(folder)

    def select(
        self, folder: str, *, read_only: bool = False, create_if_missing: bool = False
    ) -> dict[str, Any]:
        """SELECT/EXAMINE ``folder``; returns the folder info (total, recent, uidnext...)."""
        from imapclient import exceptions as imap_exc  # loaded with the connection

        folder = folder_name(folder)
        # Checked first (once per connection): a failed SELECT would leave no folder selected.
        self.ensure_folder(folder, create_if_missing)
        try:
            resp = self.client.select_folder(folder, readonly=read_only)
        except imap_exc.IMAPClientError as exc:
            reply = server_reply(exc)
            self.folder = None  # the server has left the previous folder
            if is_nonexistent(reply):
                self.folder_gone(folder)
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
            "flags": [wire_text(f) for f in resp.get(b"FLAGS", ())],
        }

    # --- the message a loop is on ------------------------------------------------------------

    def current_message(self, uid: int) -> CurrentMessage | None:
        """What the running loop fetched of ``uid`` in the selected folder, or None."""
        cur = self.current
        if (
            cur is not None
            and cur.uid == uid
            and cur.folder == self.folder
            and cur.uidvalidity == self.uidvalidity
        ):
            return cur
        return None

    def flags_changed(self, uid: int, flags: Any) -> None:
        """The server told the flags of ``uid`` (a FETCH answer): keeps the loop's copy right."""
        cur = self.current_message(uid)
        if cur is not None:
            cur.flags = {wire_text(f) for f in flags}

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


def is_nonexistent(reply: str) -> bool:
    """Whether a refusal says the folder does not exist ([NONEXISTENT], [TRYCREATE])."""
    return bool(_NONEXISTENT_RE.search(reply or ""))


def _raise(exc: BaseException) -> None:
    raise exc
