"""What both mail triggers share: the handled-mail state, reconnection backoff, error classes.

State is written through the host (``ctx.save_state``: atomic and durable) and only moves past
a message once its task has started (``ack``), so a crash loses nothing: whatever was not
acknowledged is found again at the next start. Events are acknowledged from the host's task
thread while the trigger's thread goes on reading, hence the locks.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable

from robomail_plugin import errors
from robomail_plugin.schema import TriggerContext

#: Errors a trigger cannot get past by retrying: reported at once when they happen before the
#: first successful connection (a typo in the task); after it, retried (a folder being rebuilt,
#: a password changed on the server), a refused login only at the longest backoff, so a wrong
#: password does not lock the account.
PERMANENT = (
    errors.LoginFailed,
    errors.TokenError,
    errors.RecordNotFound,
    errors.InvalidParameter,
    errors.FolderNotFound,
    errors.StoreError,
)
REFUSED = (errors.LoginFailed, errors.TokenError, errors.RecordNotFound, errors.StoreError)


class Backoff:
    """Waits between reconnection attempts: 1 s doubling up to ``longest``, each with jitter
    (a random 50-100 %), so many watchers of one server do not come back in step."""

    def __init__(self, longest: float, first: float = 1.0) -> None:
        self.first = first
        self.longest = max(first, longest)
        self.attempts = 0

    def reset(self) -> None:
        self.attempts = 0

    def next(self) -> float:
        base = min(self.longest, self.first * 2 ** min(self.attempts, 30))
        self.attempts += 1
        return float(base * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not a secret


def positive_int(name: str, value: int, *, top: int | None = None) -> int:
    """``value`` when it is 1 or more (and at most ``top``), else an InvalidParameter."""
    if value < 1 or (top is not None and value > top):
        limit = f"1 to {top}" if top is not None else "1 or more"
        raise errors.InvalidParameter(f"{name} must be {limit}, not {value}.")
    return value


def describe_error(exc: BaseException) -> str:
    """One line about why a connection ended, without a library's wrapping."""
    if isinstance(exc, errors.RobomailError):
        return str(exc).split("\n", 1)[0]
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc).strip().split("\n", 1)[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class UidTracker:
    """IMAP: the UIDVALIDITY and the highest UID handled in one folder.

    ``scanned`` is how far this process has looked (messages up to it were fired or skipped);
    what is saved is the highest UID below every fired-but-unacknowledged one. After a restart
    the watch starts from the saved UID, so a message whose task never started fires again.
    """

    def __init__(self, ctx: TriggerContext, key: str, uidvalidity: int, last_uid: int) -> None:
        self._ctx = ctx
        self.key = key
        self.uidvalidity = uidvalidity
        self.scanned = last_uid
        self._saved = last_uid
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._active = True

    def save_now(self) -> None:
        with self._lock:
            self._write(max(self._mark(), 0), force=True)

    def retire(self) -> None:
        """The folder's UIDVALIDITY changed: acknowledgements of old events change nothing."""
        with self._lock:
            self._active = False

    def fire(self, uid: int) -> Callable[[], None]:
        """``uid`` is being handed to the host; returns its ``ack``."""
        with self._lock:
            self._pending.add(uid)
            self.scanned = max(self.scanned, uid)
        done = threading.Event()

        def ack() -> None:
            if done.is_set():
                return
            done.set()
            with self._lock:
                self._pending.discard(uid)
                self._write(self._mark())

        return ack

    def skip_to(self, uid: int) -> None:
        """Every message up to ``uid`` has been looked at (none left to fire)."""
        with self._lock:
            self.scanned = max(self.scanned, uid)
            self._write(self._mark())

    def _mark(self) -> int:
        return min(self._pending) - 1 if self._pending else self.scanned

    def _write(self, mark: int, force: bool = False) -> None:
        if not self._active or (mark <= self._saved and not force):
            return
        self._ctx.save_state(self.key, {"uidvalidity": self.uidvalidity, "last_uid": mark})
        self._saved = mark


class UidlTracker:
    """POP3: the UIDLs handled in one mailbox (those still on the server)."""

    def __init__(self, ctx: TriggerContext, key: str, handled: Iterable[str]) -> None:
        self._ctx = ctx
        self.key = key
        self._handled = set(handled)
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def known(self, uidl: str) -> bool:
        with self._lock:
            return uidl in self._handled or uidl in self._pending

    def fire(self, uidl: str) -> Callable[[], None]:
        with self._lock:
            self._pending.add(uidl)
        done = threading.Event()

        def ack() -> None:
            if done.is_set():
                return
            done.set()
            with self._lock:
                self._pending.discard(uidl)
                self._handled.add(uidl)
                self._write()

        return ack

    def settle(self, skipped: Iterable[str], present: set[str]) -> None:
        """Marks ``skipped`` handled and forgets UIDLs no longer on the server; saves."""
        with self._lock:
            self._handled.update(skipped)
            self._handled &= present | self._pending
            self._write()

    def _write(self) -> None:
        self._ctx.save_state(self.key, {"uidls": sorted(self._handled)})
