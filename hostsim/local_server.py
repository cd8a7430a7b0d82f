"""What the private mail servers (Dovecot's sandbox, GNU Mailutils) share: a folder of their
own, files owned by the mail user when running as root, a throw-away CA clients trust, and a
context-manager life cycle. Each server class adds its daemons and configuration."""

from __future__ import annotations

import os
import ssl
import threading
from pathlib import Path
from typing import Any

MAIL_UID = 5000  # the uid/gid mail files belong to when the servers run as root


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

    def ssl_context(self) -> ssl.SSLContext:
        """A default (strict) client context that trusts this server's throw-away CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))
