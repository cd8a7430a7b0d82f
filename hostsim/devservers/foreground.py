"""Running a development server in the foreground (``hostsim sandbox``, ``fake-provider``,
``ui``, ``python -m hostsim.devservers.mailutils``): how it stops, and where its throw-away
secrets go."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path


def write_secrets_file(path: Path, secrets_by_kind: dict[str, dict[str, str]]) -> Path:
    """Writes throw-away secrets to a file only its owner can read, so no terminal shows them."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(secrets_by_kind, fh, indent=2)
    return path


class StopSignals:
    """Ctrl-C, SIGTERM (kill, service managers) and SIGHUP (terminal closed) all stop a foreground
    server the same clean way, so its folders and records go with it and it exits 0.

    While it starts, a signal raises KeyboardInterrupt (the start undoes itself); once it waits,
    a signal only ends ``wait()``; once it stops, signals are ignored so cleaning up finishes.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._interruptible = True
        self._saved: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            for sig in self.SIGNALS:
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._saved.items():
            signal.signal(sig, old)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: object) -> None:
        if self._interruptible:
            raise KeyboardInterrupt
        self._stop.set()

    def wait(self) -> None:
        """Until a stop signal arrives."""
        self._interruptible = False
        self._stop.wait()

    def stopping(self) -> None:
        """From now on signals do not interrupt (cleaning up must finish)."""
        self._interruptible = False
        self._stop.set()
