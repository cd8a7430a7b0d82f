"""Change notices between hosts: a thread LISTENs on the store's channel and passes each changed
Record Name to the subscribers (the token service drops its cached access token).

A lost connection is re-opened by itself with a growing pause; once listening again it tells the
subscribers that everything may have changed (``None``), since notices sent meanwhile are gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

POLL_S = 0.5
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


def payload(names: list[str]) -> str:
    """The notice for these names; one that would not fit in a notice says 'all'."""
    text = json.dumps({"names": names})
    return text if len(text.encode()) < 7000 else json.dumps({"all": True})


def names_of(text: str) -> list[str] | None:
    """The names a notice carries; None for 'all' (or a notice that cannot be read)."""
    try:
        data = json.loads(text)
        names = data.get("names")
    except (ValueError, AttributeError):
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return names


class ChangeListener:
    """A daemon thread holding one LISTEN connection; ``start`` waits until it listens."""

    def __init__(
        self,
        connect: Callable[[], Any],
        channel: str,
        deliver: Callable[[str | None], None],
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._deliver = deliver
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None
        self.reconnects = 0

    def start(self, wait: float = 2.0) -> bool:
        """Starts the thread once; True when it listens within ``wait`` seconds."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="robomail-store-listener", daemon=True
            )
            self._thread.start()
        return self._listening.wait(wait)

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _tell(self, name: str | None) -> None:
        try:
            self._deliver(name)
        except Exception:  # a subscriber's bug must not end the listening
            log.exception("a store change subscriber failed")

    def _run(self) -> None:
        pause = RETRY_FIRST_S
        first = True
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except Exception as exc:
                log.info("store change listener: cannot connect (%s); retrying in %.1f s",
                         type(exc).__name__, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, RETRY_MAX_S)
                continue
            try:
                conn.execute(f"LISTEN {self._channel}")
                if not first:
                    self.reconnects += 1
                    log.info("store change listener: listening again")
                    self._tell(None)  # notices sent while away are lost: forget everything
                first = False
                pause = RETRY_FIRST_S
                self._listening.set()
                while not self._stop.is_set():
                    for notice in conn.notifies(timeout=POLL_S):
                        names = names_of(notice.payload)
                        if names is None:
                            self._tell(None)
                        for name in names or ():
                            self._tell(name)
            except Exception as exc:
                self._listening.clear()
                if not self._stop.is_set():
                    log.info("store change listener: connection lost (%s); reconnecting",
                             type(exc).__name__)
                    self._stop.wait(pause)
            finally:
                with contextlib.suppress(Exception):  # closing a broken one may fail too
                    conn.close()
        self._listening.clear()
