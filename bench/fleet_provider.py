"""A token endpoint that rotates refresh tokens and keeps the books of every rotation chain.

For the fleet figures: it knows, per record, each refresh token it issued in order, so it can
tell a lost rotation (a host presents a token older than one already presented: a committed
rotation was undone) from an orphaned one (a host was killed after the answer and before its
commit; with ``grace`` the previous token is taken once more, as providers with a rotation grace
period do). Loopback only; the books hold tokens, never printed.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


class Chain:
    """One record's refresh tokens in the order issued, and the newest one a host presented."""

    def __init__(self, first: str) -> None:
        self.issued = [first]
        self.presented = 0  # index of the newest token a host presented (hence had committed)

    def index(self, token: str) -> int | None:
        try:
            return self.issued.index(token)
        except ValueError:
            return None


class RotatingProvider:
    """``/token`` (grant_type=refresh_token) on 127.0.0.1; ``lifetime`` seconds per access token."""

    def __init__(self, lifetime: float, *, grace: bool = False, jitter: float = 0.0) -> None:
        self.lifetime = lifetime
        self.grace = grace
        self.jitter = jitter
        self.lock = threading.Lock()
        self.chains: dict[str, Chain] = {}
        self._by_token: dict[str, str] = {}
        self.refreshes = 0
        self.lost = 0  # a token older than one presented before: a committed rotation undone
        self.orphaned = 0  # taken back under grace: the newer one was never committed
        self.refused = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet: lines would hold nothing
                return None

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                status, body = provider.answer(form)
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the asking host was killed: the run's point

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def start(self) -> RotatingProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def new_chain(self, record_name: str) -> str:
        first = secrets.token_urlsafe(24)
        with self.lock:
            self.chains[record_name] = Chain(first)
            self._by_token[first] = record_name
        return first

    def answer(self, form: dict[str, str]) -> tuple[int, dict]:
        if self.jitter:
            time.sleep(random.uniform(0, self.jitter))
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        token = form.get("refresh_token", "")
        with self.lock:
            name = self._by_token.get(token)
            chain = self.chains.get(name or "")
            at = chain.index(token) if chain is not None else None
            if chain is None or at is None:
                self.refused += 1
                return 400, {"error": "invalid_grant", "error_description": "unknown token"}
            newest = len(chain.issued) - 1
            if at < chain.presented:
                self.lost += 1
                self.refused += 1
                return 400, {"error": "invalid_grant", "error_description": "rotated away"}
            if at < newest:
                if not (self.grace and at == newest - 1):
                    self.refused += 1
                    return 400, {"error": "invalid_grant", "error_description": "rotated away"}
                self.orphaned += 1
                chain.issued.pop()  # the orphan is dropped: its chain goes on from here
            chain.presented = at
            fresh = secrets.token_urlsafe(24)
            chain.issued.append(fresh)
            self._by_token[fresh] = name or ""
            self.refreshes += 1
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "refresh_token": fresh,
        }

    def stored_lost(self, stored: dict[str, str]) -> int:
        """Records whose stored token is older than one a host already presented (committed),
        or not from their chain at all."""
        lost = 0
        with self.lock:
            for name, chain in self.chains.items():
                at = chain.index(stored.get(name, ""))
                if at is None or at < chain.presented:
                    lost += 1
        return lost
