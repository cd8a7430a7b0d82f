"""Serving the settings screen on 127.0.0.1: in a thread (tests, other hosts) or in the
foreground until Ctrl-C or SIGTERM (``hostsim ui``).

werkzeug's threaded WSGI server carries the HTTP; its own request log is silenced because it
would print the first visit's query (the launch token): the app logs paths only. The system
browser is started on a private launcher file, not on the URL: a command line is visible to every
user of the machine (``ps``), a file of mode 0600 is not.
"""

from __future__ import annotations

import contextlib
import html
import os
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server

from hostsim.runtime.host import Host
from hostsim.ui.app import create_app
from hostsim.ui.files import Downloads
from hostsim.ui.jobs import Jobs
from hostsim.ui.security import LOOPBACK, Guard


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return None  # a malformed request line could carry the token


class SettingsServer:
    """The settings screen of ``host``, bound to 127.0.0.1:``port`` (0: the OS picks)."""

    def __init__(self, host: Host, *, port: int = 0, log: TextIO | None = None) -> None:
        self.guard = Guard()
        self.jobs = Jobs()
        self.app = create_app(host, self.guard, jobs=self.jobs, downloads=Downloads(), log=log)
        self._server = make_server(
            LOOPBACK, port, self.app, threaded=True, request_handler=_QuietHandler
        )
        self.guard.port = self._server.server_port
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.guard.port

    @property
    def url(self) -> str:
        """Where to open the screen: it carries the launch token."""
        return self.guard.url

    def start(self) -> SettingsServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="hostsim-ui", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Cancels running commands (Get Refresh Token), stops serving, frees the port."""
        self.jobs.stop_all()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SettingsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_launcher(folder: Path, url: str) -> Path:
    """A page only this user can read that forwards the browser to ``url`` (token included).

    It lives in the host's own folder, not /tmp: sandboxed browsers (snap) cannot read /tmp.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"open-settings-screen-{urlsplit(url).port}.html"
    path.unlink(missing_ok=True)  # left by a launch that did not stop cleanly
    target = html.escape(url, quote=True)
    page = (
        '<!doctype html><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={target}">'
        f'<title>hostsim settings</title><p><a href="{target}">Open the settings screen</a></p>\n'
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(page)
    return path


def serve_forever(
    host: Host, *, port: int = 0, open_browser: bool = True, out: TextIO = sys.stdout
) -> None:
    """``hostsim ui``: serve until Ctrl-C, SIGTERM or SIGHUP, then stop cleanly (exit 0)."""
    from hostsim.devservers.foreground import StopSignals

    launcher: Path | None = None
    with StopSignals() as stop:
        try:
            server = SettingsServer(host, port=port, log=sys.stderr).start()
        except KeyboardInterrupt:
            return
        try:
            print(f"Settings screen: {server.url}", file=out, flush=True)
            print("Press Ctrl-C to stop.", file=out, flush=True)
            if open_browser:  # in a thread: some browsers' launchers wait until they exit
                launcher = write_launcher(host.home / "ui", server.url)
                threading.Thread(
                    target=webbrowser.open, args=(launcher.as_uri(),), daemon=True
                ).start()
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop.stopping()
            server.stop()
            if launcher is not None:
                launcher.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                print("Settings screen stopped.", file=out, flush=True)
