"""What the private mail servers (Dovecot's sandbox, GNU Mailutils) share: a folder of their
own, files owned by the mail user when running as root, a throw-away CA clients trust, and a
context-manager life cycle. Each server class adds its daemons and configuration."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

MAIL_UID = 5000  # the uid/gid mail files belong to when the servers run as root
READY_TIMEOUT = 15.0  # seconds a freshly started server has to accept on every port


class LocalMailServer:
    """The shared part of a private mail server on 127.0.0.1."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self.base: Path | None = None
        self.ca_file: Path = Path()
        self._lock = threading.Lock()
        self._seq = 0
        self._root = os.geteuid() == 0
        self._uid = MAIL_UID if self._root else os.getuid()
        self._gid = MAIL_UID if self._root else os.getgid()

    def start(self) -> Any:  # pragma: no cover - every server defines it
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - every server defines it
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _own(self, path: Path) -> None:
        """Mail files belong to the mail user the daemons run as (when we are root)."""
        if self._root:
            os.chown(path, self._uid, self._gid)

    def _ports_accept(self, ports: Iterable[int], alive: Callable[[], bool]) -> bool:
        """Whether every port accepts a connection within READY_TIMEOUT while ``alive()``: a
        daemon that died (a port taken, a bad config) ends the wait at once."""
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(ports)
        while pending and time.monotonic() < deadline:
            if not alive():
                return False
            try:
                with socket.create_connection((self.host, pending[0]), timeout=1):
                    pending.pop(0)
            except OSError:
                time.sleep(0.02)
        return not pending

    def ssl_context(self) -> ssl.SSLContext:
        """A default (strict) client context that trusts this server's throw-away CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))
