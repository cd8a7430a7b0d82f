"""A stand-in for the system browser, so the OAuth browser flow runs unattended in tests and demos.

Use it as ``BROWSER="<python> -m hostsim.devservers.fakebrowser %s"`` or call ``follow(url)``.
It opens the
authorization URL without following redirects, then follows the ``Location`` to the loopback
listener as a real browser does, and prints (and returns) the page the listener shows.

Run as a command it returns at once and does the work in a detached process, like a real browser
that hands the URL to an already running window: Python's ``webbrowser`` waits for the command,
and a caller that starts serving its listener only after ``webbrowser.open`` returns would
otherwise deadlock. ``--wait`` keeps it in the foreground. If ``FAKEBROWSER_LOG`` names a file,
the final page text is appended to it (tests read it from there).
"""

from __future__ import annotations

import os
import subprocess
import sys

import requests

MAX_HOPS = 10


class FakeBrowserError(RuntimeError):
    """The authorization URL could not be opened or answered with an error page."""


def follow(url: str, timeout: float = 10.0) -> str:
    """Open ``url`` like a browser would and return the text of the final page.

    Raises FakeBrowserError if a page answers with an HTTP error (the text is in the message).
    """
    current = url
    with requests.Session() as session:
        for _ in range(MAX_HOPS):
            try:
                resp = session.get(current, allow_redirects=False, timeout=timeout)
            except requests.RequestException as exc:
                raise FakeBrowserError(f"cannot open {_short(current)}: {exc}") from exc
            if resp.is_redirect and "Location" in resp.headers:
                current = requests.compat.urljoin(current, resp.headers["Location"])
                continue
            if resp.status_code >= 400:
                raise FakeBrowserError(
                    f"{_short(current)} answered HTTP {resp.status_code}: {resp.text.strip()}"
                )
            return resp.text
    raise FakeBrowserError(f"more than {MAX_HOPS} redirects starting at {_short(url)}")


def _short(url: str) -> str:
    """The URL without its query (which may carry a code or state)."""
    return url.split("?", 1)[0]


def _log(text: str) -> None:
    path = os.environ.get("FAKEBROWSER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m hostsim.devservers.fakebrowser [--wait] URL``."""
    args = list(sys.argv[1:] if argv is None else argv)
    wait = "--wait" in args
    urls = [a for a in args if a != "--wait"]
    if len(urls) != 1:
        print("usage: python -m hostsim.devservers.fakebrowser [--wait] URL", file=sys.stderr)
        return 2
    if not wait:
        subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "hostsim.devservers.fakebrowser", "--wait", urls[0]],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return 0
    try:
        text = follow(urls[0])
    except FakeBrowserError as exc:
        print(f"fakebrowser: {exc}", file=sys.stderr)
        _log(f"ERROR {exc}")
        return 1
    print(text)
    _log(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
