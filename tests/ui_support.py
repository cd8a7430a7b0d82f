"""Helpers for the settings screen's tests: the server in this process, a plain-HTTP visitor
that behaves like the screen's own page, and the second plugin loaded from its source."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from hostsim.runtime.host import Host
from hostsim.ui.server import SettingsServer

ROOT = Path(__file__).resolve().parent.parent
CSRF_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class Log(io.TextIOBase):
    """The server's log, kept for the tests to read (written from the server's threads)."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._parts.append(text)
        return len(text)

    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)


@contextmanager
def running_screen(host: Host) -> Iterator[tuple[SettingsServer, Log]]:
    log = Log()
    server = SettingsServer(host, log=log).start()
    try:
        yield server, log
    finally:
        server.stop()


def second_plugin() -> Any:
    """A fresh instance of tests/second_plugin's plugin, imported from its file (not installed:
    its entry point would register it a second time)."""
    path = ROOT / "tests" / "second_plugin" / "robomail_second" / "plugin.py"
    spec = importlib.util.spec_from_file_location("robomail_second_for_ui", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SecondPlugin()


class Visitor:
    """A plain HTTP client that does what the screen's page does: visits with the token once,
    then sends the cookie, and the CSRF token and Origin on every change."""

    def __init__(self, server: SettingsServer) -> None:
        self.server = server
        self.base = server.guard.origin
        self.http = requests.Session()
        first = self.http.get(server.url, allow_redirects=False, timeout=10)
        assert first.status_code == 200, first.text
        page = self.http.get(self.base + "/", timeout=10)
        assert page.status_code == 200, page.text
        found = CSRF_RE.search(page.text)
        assert found, "the page carries no CSRF token"
        self.csrf = found.group(1)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.base + path, timeout=30, **kwargs)

    def command(
        self,
        record_type: str,
        command: str,
        *,
        record: str = "",
        form: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes]] | None = None,
    ) -> requests.Response:
        return self.http.post(
            f"{self.base}/api/editors/{record_type}/commands/{command}",
            data={"record": record, "form": json.dumps(form or {}),
                  "params": json.dumps(params or {})},
            files=files or None,
            headers={"X-CSRF-Token": self.csrf, "Origin": self.base},
            timeout=30,
        )
