"""The settings screen's guard: who may talk to it, and what its pages may do in a browser.

The screen changes credentials, so on a shared machine it must refuse other local users, web
pages open in the same browser (CSRF, DNS rebinding) and framing (clickjacking):

- a per-launch token: in the printed URL once, then an HttpOnly, SameSite=Strict cookie;
- the Host header must be 127.0.0.1:PORT (a rebinding attacker's name is refused);
- an Origin header, when sent, must be the screen's own; a request that changes something
  must send it, and a CSRF token that only the screen's own pages know;
- a Content-Security-Policy without inline script, no framing, no Referer, no caching.
"""

from __future__ import annotations

import hmac
import html
import secrets
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, request
from werkzeug.wrappers import Response as BaseResponse

LOOPBACK = "127.0.0.1"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD"})

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Guard:
    """The per-launch secrets and the checks every request passes before a view runs."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(32)
        self.csrf_token = secrets.token_urlsafe(32)
        self.port = 0  # set once the server has bound its socket

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://{self.host}"

    @property
    def url(self) -> str:
        """The address to open: the only place the launch token is shown."""
        return f"{self.origin}/?{urlencode({'token': self.token})}"

    @property
    def cookie_name(self) -> str:
        # cookies ignore ports: two screens on one machine must not overwrite each other's
        return f"hostsim_ui_{self.port}"

    def install(self, app: Flask) -> None:
        app.before_request(self.check)
        app.after_request(self.add_headers)

    def check(self) -> BaseResponse | None:
        """None when the request may proceed, else the refusal."""
        if request.host != self.host:
            return _refuse(400, f"This screen answers only at {self.origin}.")
        origin = request.headers.get("Origin")
        if origin is not None and origin != self.origin:
            return _refuse(403, "Requests from other sites are refused.")
        if not _same(request.cookies.get(self.cookie_name), self.token):
            if request.method in SAFE_METHODS and _same(request.args.get("token"), self.token):
                return self._welcome()
            return _refuse(
                403, "Open the address `hostsim ui` printed (with its token) to use this screen."
            )
        if request.method not in SAFE_METHODS:
            if origin is None:
                return _refuse(403, "A request that changes something must carry its Origin.")
            if not _same(request.headers.get(CSRF_HEADER), self.csrf_token):
                return _refuse(403, "The request lacks this screen's CSRF token: reload the page.")
        return None

    def _welcome(self) -> BaseResponse:
        """First visit: keep the token in a cookie and leave the address that carries it.

        A page that moves on by itself, not a redirect: when the visit started elsewhere (the
        launcher file, another program), a redirect would stay cross-site and the browser would
        hold back the SameSite=Strict cookie; a step taken from this page is same-site.
        """
        rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
        target = html.escape(request.path + (f"?{urlencode(rest)}" if rest else ""), quote=True)
        response = Response(
            '<!doctype html><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0;url={target}">'
            f'<title>hostsim settings</title><p><a href="{target}">Continue</a></p>\n',
            mimetype="text/html",
        )
        response.set_cookie(
            self.cookie_name, self.token, httponly=True, samesite="Strict", path="/"
        )
        return response

    def add_headers(self, response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response


def _refuse(status: int, message: str) -> Response:
    if request.path.startswith("/api/"):
        response = jsonify({"ok": False, "error": {"code": "refused", "message": message}})
    else:
        response = Response(message + "\n", mimetype="text/plain")
    response.status_code = status
    return response
