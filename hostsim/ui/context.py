"""The HostContext an editor command sees when it runs from the settings screen.

Nobody is at a terminal: ``prompt`` fails with a message that says where to give the value
instead (the page asks for passphrases as command fields). Log lines are kept, masked, for the
page; ``open_url`` hands a sign-in URL to the page instead of starting a browser on the server;
the page's Cancel button sets ``cancel``.
"""

from __future__ import annotations

import threading

from hostsim.runtime.variables import Masker
from robomail_plugin.schema import ActionFailed

MAX_LINES = 200


class WebContext:
    interactive = False

    def __init__(self) -> None:
        self.masker = Masker()
        self.cancel = threading.Event()
        self.changed = threading.Event()  # set whenever a line or a URL arrives
        self.lines: list[str] = []
        self.url: str | None = None
        self._lock = threading.Lock()

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def log(self, message: str, level: str = "info") -> None:
        prefix = "" if level == "info" else f"{level.upper()}: "
        with self._lock:
            self.lines = [*self.lines, self.masker.mask(prefix + message)][-MAX_LINES:]
        self.changed.set()

    def add_secret(self, value: str) -> None:
        self.masker.add(value)

    def prompt(self, text: str, *, secret: bool = False) -> str:
        raise ActionFailed(
            f"{text}: the settings screen cannot ask while a command runs; give it in the "
            "command's fields instead.",
            code="invalid_parameter",
        )

    def open_url(self, url: str) -> bool:
        """The page opens ``url`` in a new tab (and shows it as a link)."""
        self.url = url
        self.changed.set()
        return True

    def log_lines(self) -> list[str]:
        with self._lock:
            return list(self.lines)
