"""A fake OAuth 2.0 provider for development and tests, on loopback, built on pytest-httpserver.

It does what real providers do where robomail depends on it (authorization code with PKCE S256
and auto-consent, single-use codes, public vs confidential clients, refresh with optional
rotation, the device flow, RFC 7662 introspection for Dovecot) and can misbehave on demand
(``fail_next``, ``introspection_down``, ``expires_in_as_string``...), so the token service and the
mail code can be tested end to end without the internet.

A persona (``FakeProvider(persona="google" | "microsoft")``) makes it answer the way that
provider does where users get stuck: its paths, token answers and error shapes, the refresh-token
rules, app-registration mistakes (``register_client`` options) and which access tokens its mail
servers accept (introspection). A settable clock (``advance``) makes time-based expiry testable.
The personas are simulations written from the providers' documented behaviour; nothing here
talks to a real provider.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

FAIL_KINDS = ("invalid_grant", "invalid_client", "server_error", "rate_limited", "slow")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_USER = "alice@example.test"
DEFAULT_SCOPE = "mail offline_access"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")

PERSONAS = ("generic", "google", "microsoft")
GOOGLE_MAIL_SCOPE = "https://mail.google.com/"
GOOGLE_EXPIRED = "Token has been expired or revoked."
OUTLOOK = "https://outlook.office.com/"
MICROSOFT_SCOPE = (
    f"{OUTLOOK}IMAP.AccessAsUser.All {OUTLOOK}POP.AccessAsUser.All {OUTLOOK}SMTP.Send "
    "offline_access"
)
GRAPH = "https://graph.microsoft.com/"
TENANT_ALIASES = ("common", "organizations", "consumers")
TESTING_REFRESH_LIFETIME = 7 * 86400  # Google: a consent screen in "Testing"
MICROSOFT_REFRESH_LIFETIME = 90 * 86400
_OIDC = frozenset({"openid", "profile", "email", "offline_access"})
_PERSONA_SCOPE = {"generic": DEFAULT_SCOPE, "google": GOOGLE_MAIL_SCOPE,
                  "microsoft": MICROSOFT_SCOPE}
_PATHS = {
    "generic": {"authorize": "/authorize", "token": "/token", "device": "/device"},
    "google": {"authorize": "/o/oauth2/v2/auth", "token": "/token", "device": "/device/code"},
    "microsoft": {
        "authorize": "/{tenant}/oauth2/v2.0/authorize",
        "token": "/{tenant}/oauth2/v2.0/token",
        "device": "/{tenant}/oauth2/v2.0/devicecode",
    },
}
_TENANT_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9.-]{0,99}"

# Werkzeug's request log would print query strings (``/introspect?token=...``): keep it quiet.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


class OAuthError(Exception):
    """An RFC 6749 error answer (``{"error": ..., "error_description": ...}``).

    ``aadsts`` is the Microsoft persona's error number (shown as ``AADSTS<n>: ...``)."""

    def __init__(
        self, error: str, description: str, status: int = 400, *, aadsts: int | None = None,
        suberror: str | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status
        self.aadsts = aadsts
        self.suberror = suberror


@dataclass
class _App:
    """A registered client and the app-registration settings users get wrong."""

    secret: str | None
    testing: bool = False  # Google: OAuth consent screen left in "Testing"
    public_client_flows: bool = False  # Microsoft: "Allow public client flows"
    tenant: str | None = None  # Microsoft: a single-tenant app's tenant (None: multi-tenant)
    redirect_uris: tuple[str, ...] = ("http://localhost",)  # Microsoft: registered redirects


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    username: str
    scope: str
    expires_at: float
    refresh: bool = True


@dataclass
class _Access:
    username: str
    client_id: str | None
    scope: str
    expires_at: float


@dataclass
class _Refresh:
    client_id: str
    username: str
    scope: str
    expires_at: float | None = None
    issued_at: float = 0.0


@dataclass
class _Device:
    client_id: str
    user_code: str
    scope: str
    expires_at: float
    approved: bool = False
    polls: int = 0
    used: bool = False


@dataclass
class _State:
    apps: dict[str, _App] = field(default_factory=dict)
    codes: dict[str, _Code] = field(default_factory=dict)
    access: dict[str, _Access] = field(default_factory=dict)
    refresh: dict[str, _Refresh] = field(default_factory=dict)
    devices: dict[str, _Device] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    consents: set[tuple[str, str]] = field(default_factory=set)  # (client_id, username)


def _challenge_s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _is_loopback_http(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme == "http" and parts.netloc != "" and parts.hostname in LOOPBACK_HOSTS


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    all_headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})}
    return Response(
        json.dumps(body), status=status, mimetype="application/json", headers=all_headers
    )


def _page(text: str, status: int = 200) -> Response:
    return Response(text, status=status, mimetype="text/plain")


def _resource_scopes(scope: str) -> list[str]:
    return [s for s in scope.split() if s not in _OIDC]


def microsoft_audience(scope: str) -> str:
    """The resource a Microsoft access token is for: Outlook when every resource scope is an
    outlook.office.com one, else Microsoft Graph (unprefixed scopes such as Mail.Read are
    Graph's)."""
    wanted = _resource_scopes(scope)
    if wanted and all(s.startswith(OUTLOOK) for s in wanted):
        return OUTLOOK.rstrip("/")
    return GRAPH.rstrip("/")


class FakeProvider:
    """A running fake OAuth provider; see the module docstring and docs/sandbox.md."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, persona: str = "generic"):
        if persona not in PERSONAS:
            raise ValueError(f"unknown persona {persona!r}; use one of {', '.join(PERSONAS)}")
        self.persona = persona
        self._server = HTTPServer(host=host, port=port, threaded=True)
        self._lock = threading.RLock()
        self._state = _State()
        self._failures: list[str] = []
        self.token_requests: list[dict[str, str]] = []
        self.last_authorize_params: dict[str, str] | None = None
        self._set_defaults()

    def _set_defaults(self) -> None:
        self.consent_user = DEFAULT_USER
        self.rotate_refresh_tokens = self.persona == "microsoft"
        self.expires_in_as_string = False
        self.deny_consent = False
        self.introspection_down = False
        self.slow_seconds = 2.0
        self.access_token_lifetime = 3600 if self.persona == "generic" else 3599
        self.device_auto_approve = True
        self.device_interval = 1
        self.clock_offset = 0.0
        # Microsoft: refreshes fail with interaction_required ("mfa" or "conditional_access")
        # until the user signs in interactively again.
        self.interaction_required: str | None = None

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Listen on an OS-chosen loopback port and answer every endpoint."""
        srv = self._server
        paths = _PATHS[self.persona]

        def uri(kind: str) -> str | re.Pattern[str]:
            path = paths[kind]
            if "{tenant}" not in path:
                return path
            return re.compile("^" + re.escape(path).replace(r"\{tenant\}", _TENANT_SEGMENT) + "$")

        srv.expect_request(uri("authorize"), method="GET").respond_with_handler(self._authorize)
        srv.expect_request(uri("token"), method="POST").respond_with_handler(self._token)
        srv.expect_request("/introspect").respond_with_handler(self._introspect)
        srv.expect_request(uri("device"), method="POST").respond_with_handler(self._device)
        srv.expect_request("/device/verify", method="GET").respond_with_handler(self._verify)
        srv.no_handler_status_code = 404
        srv.start()
        return self

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._server.is_running():
            self._server.stop()
        self._server.clear()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        running = self._server.is_running()
        persona = "" if self.persona == "generic" else f" {self.persona}"
        return f"<FakeProvider{persona} {self.base_url if running else 'stopped'}>"

    # --- addresses ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._server.url_for("/").rstrip("/")

    def _url(self, kind: str, tenant: str = "common") -> str:
        return self.base_url + _PATHS[self.persona][kind].replace("{tenant}", tenant)

    @property
    def authorize_url(self) -> str:
        return self._url("authorize")

    @property
    def token_url(self) -> str:
        return self._url("token")

    @property
    def introspect_url(self) -> str:
        return self.base_url + "/introspect"

    @property
    def device_url(self) -> str:
        return self._url("device")

    @property
    def verification_url(self) -> str:
        return self.base_url + "/device/verify"

    @property
    def default_scope(self) -> str:
        """The scope a record for this persona asks for (the provider preset's)."""
        return _PERSONA_SCOPE[self.persona]

    # --- the clock ------------------------------------------------------------------------------

    def now(self) -> float:
        """The provider's time: the real time plus ``clock_offset`` (for expiry tests)."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float = 0.0, *, days: float = 0.0) -> None:
        """Move the provider's clock forward; ``reset()`` puts it back."""
        with self._lock:
            self.clock_offset += seconds + days * 86400

    # --- test hooks -----------------------------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        client_secret: str | None = None,
        *,
        testing: bool = False,
        public_client_flows: bool = False,
        tenant: str | None = None,
        redirect_uris: tuple[str, ...] = ("http://localhost",),
    ) -> None:
        """Register a client; ``client_secret=None`` makes it public (it must not send a secret).

        Persona settings: ``testing`` (Google: the consent screen is in "Testing", so refresh
        tokens end after 7 days), ``public_client_flows`` (Microsoft: needed by the device flow),
        ``tenant`` (Microsoft: a single-tenant app, refused on /common) and ``redirect_uris``
        (Microsoft: the registered redirects; ``http://localhost`` matches any port).
        """
        with self._lock:
            self._state.apps[client_id] = _App(
                client_secret, testing, public_client_flows, tenant, tuple(redirect_uris)
            )

    def mint_access_token(
        self, username: str, lifetime: int = 3600, client_id: str | None = None,
        scope: str | None = None,
    ) -> str:
        """Issue an access token that introspection (so Dovecot) accepts for ``username``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._state.access[token] = _Access(
                username, client_id, scope or self.default_scope, self.now() + lifetime
            )
        return token

    def mint_refresh_token(
        self, client_id: str, username: str, scope: str | None = None
    ) -> str:
        """Issue a refresh token for a registered client, as if the user had consented."""
        with self._lock:
            self._state.consents.add((client_id, username))
            return self._new_refresh(client_id, username, scope or self.default_scope)

    def withdraw_consent(self, client_id: str, username: str = DEFAULT_USER) -> None:
        """Microsoft: the user's (or an admin's) consent is gone; refreshes fail with
        AADSTS65001 until the user signs in and consents again. Google: the next sign-in counts
        as a first one again."""
        with self._lock:
            self._state.consents.discard((client_id, username))

    def revoke(self, token: str) -> None:
        """Make an access or refresh token invalid from now on."""
        with self._lock:
            self._state.revoked.add(token)

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` token-endpoint requests fail the given way (see FAIL_KINDS)."""
        if kind not in FAIL_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; use one of {', '.join(FAIL_KINDS)}")
        with self._lock:
            self._failures.extend([kind] * count)

    def approve_device(self, user_code: str) -> None:
        """Approve a pending device authorization, as the user would on the verification page."""
        with self._lock:
            for dev in self._state.devices.values():
                if dev.user_code == user_code:
                    dev.approved = True
                    return
        raise KeyError(f"no pending device authorization with user code {user_code!r}")

    def reset(self, *, forget: bool = False) -> None:
        """Restore the switches (and the clock) to their defaults and clear the records and
        queued failures.

        Registered clients and issued tokens stay (they are random, tests cannot collide) unless
        ``forget`` is true.
        """
        with self._lock:
            self._set_defaults()
            self._failures.clear()
            self.token_requests.clear()
            self.last_authorize_params = None
            if forget:
                self._state = _State()
        self._server.clear_log()

    def is_active(self, token: str) -> bool:
        """Whether introspection would call ``token`` active (for the persona's mail servers)."""
        with self._lock:
            acc = self._active(token)
            return acc is not None and self._mail_accepts(acc)

    # --- persona shapes -------------------------------------------------------------------------

    def _error_body(self, exc: OAuthError) -> dict[str, Any]:
        """The error JSON as the persona's provider writes it."""
        if self.persona != "microsoft":
            return {"error": exc.error, "error_description": exc.description}
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.now()))
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        text = f"AADSTS{exc.aadsts}: {exc.description}" if exc.aadsts else exc.description
        body: dict[str, Any] = {
            "error": exc.error,
            "error_description": (
                f"{text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\n"
                f"Timestamp: {stamp}"
            ),
            "error_codes": [exc.aadsts] if exc.aadsts else [],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
        }
        if exc.aadsts:
            body["error_uri"] = f"https://login.microsoftonline.com/error?code={exc.aadsts}"
        if exc.suberror:
            body["suberror"] = exc.suberror
        return body

    def _error(self, exc: OAuthError, headers: dict[str, str] | None = None) -> Response:
        if exc.status == 401 and headers is None:
            headers = {"WWW-Authenticate": "Basic"}
        return _json(self._error_body(exc), exc.status, headers)

    def _injected(self, kind: str) -> OAuthError:
        """A ``fail_next`` failure in the persona's words."""
        if kind == "invalid_grant":
            if self.persona == "google":
                return OAuthError("invalid_grant", GOOGLE_EXPIRED)
            if self.persona == "microsoft":
                return OAuthError(
                    "invalid_grant",
                    "The refresh token has been revoked (injected).",
                    aadsts=50173,
                )
            return OAuthError("invalid_grant", "Injected: grant is invalid.")
        if self.persona == "google":
            return OAuthError("invalid_client", "Unauthorized", 401)
        if self.persona == "microsoft":
            return OAuthError("invalid_client", "Client authentication failed (injected).", 401,
                              aadsts=7000215)
        return OAuthError("invalid_client", "Injected: bad client.", 401)

    def _mail_accepts(self, acc: _Access) -> bool:
        """Whether the persona's mail servers take this token (Gmail wants the mail scope,
        Outlook a token for outlook.office.com, not Microsoft Graph)."""
        if self.persona == "google":
            return GOOGLE_MAIL_SCOPE in acc.scope.split()
        if self.persona == "microsoft":
            return microsoft_audience(acc.scope) == OUTLOOK.rstrip("/")
        return True

    # --- endpoint handlers ----------------------------------------------------------------------

    def _active(self, token: str) -> _Access | None:
        acc = self._state.access.get(token)
        if acc is None or token in self._state.revoked or acc.expires_at <= self.now():
            return None
        return acc

    @staticmethod
    def _tenant(request: Request) -> str:
        return request.path.split("/")[1] if request.path.count("/") >= 2 else ""

    def _authorize(self, request: Request) -> Response:
        params = dict(request.args.items())
        with self._lock:
            self.last_authorize_params = dict(params)
            found = self._authorize_client(request, params)
            if isinstance(found, Response):
                return found
            redirect_uri = params.get("redirect_uri", "")
            state = {"state": params["state"]} if "state" in params else {}
            refused = self._authorize_refusal(request, params, found)
            if refused is not None:
                return self._error_redirect(redirect_uri, state, *refused)
            code = self._issue_code(params)
        target = _with_query(redirect_uri, {"code": code, **state})
        return Response(status=302, headers={"Location": target})

    def _authorize_client(self, request: Request, params: dict[str, str]) -> _App | Response:
        """The registered app, or the error page shown instead: while the client or its
        redirect_uri is in doubt the provider must not redirect anywhere, so the person sees the
        error (in the persona's words) in the browser."""
        client_id = params.get("client_id", "")
        app = self._state.apps.get(client_id)
        if app is None:
            if self.persona == "microsoft":
                return _page(
                    f"AADSTS700016: Application with identifier '{client_id}' was not found "
                    f"in the directory '{self._tenant(request)}'.",
                    400,
                )
            return _page(f"Error: unknown client_id {client_id!r}.", 400)
        redirect_uri = params.get("redirect_uri", "")
        if not _is_loopback_http(redirect_uri):
            return _page("Error: redirect_uri must be a loopback http:// URL.", 400)
        if self.persona == "microsoft" and not self._redirect_registered(app, redirect_uri):
            return _page(
                f"AADSTS50011: The redirect URI '{redirect_uri}' specified in the request "
                "does not match the redirect URIs configured for the application "
                f"'{client_id}'.",
                400,
            )
        return app

    def _authorize_refusal(
        self, request: Request, params: dict[str, str], app: _App
    ) -> tuple[str, str] | None:
        """Why a request from a known client is refused, as (error, description): these errors
        go back to the app on its redirect_uri, the way it would learn them from a real
        provider."""
        if self.persona == "microsoft":
            refused = self._tenant_refusal(app, params.get("client_id", ""), self._tenant(request))
            if refused is not None:
                return refused.error, self._error_body(refused)["error_description"]
        if params.get("response_type") != "code":
            return "unsupported_response_type", "response_type must be code"
        if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
            return "invalid_request", "PKCE with code_challenge_method=S256 is required"
        if self.deny_consent:
            return "access_denied", "The user declined consent."
        return None

    @staticmethod
    def _error_redirect(
        redirect_uri: str, state: dict[str, str], error: str, description: str
    ) -> Response:
        """Sends the browser back to the app with ``error`` (and the app's ``state``)."""
        target = _with_query(redirect_uri, {"error": error, "error_description": description})
        if state:
            target = _with_query(target, state)
        return Response(status=302, headers={"Location": target})

    def _issue_code(self, params: dict[str, str]) -> str:
        """Records the consent and a new authorization code holding what the token endpoint
        checks when the app redeems it; returns the code."""
        client_id = params.get("client_id", "")
        scope = params.get("scope", self.default_scope)
        key = (client_id, self.consent_user)
        first = key not in self._state.consents
        refresh = self._code_gets_refresh(params, scope, first_consent=first)
        if self.persona == "microsoft":
            self.interaction_required = None  # the user just signed in interactively
        self._state.consents.add(key)
        code = secrets.token_urlsafe(24)
        self._state.codes[code] = _Code(
            client_id=client_id,
            redirect_uri=params.get("redirect_uri", ""),
            challenge=params["code_challenge"],
            username=self.consent_user,
            scope=scope,
            expires_at=self.now() + 600,
            refresh=refresh,
        )
        return code

    def _code_gets_refresh(
        self, params: dict[str, str], scope: str, *, first_consent: bool
    ) -> bool:
        """Whether redeeming the code also yields a refresh token, by the persona's rules:
        Google only for offline access, and for an account that consented before only when
        consent is asked for again; Microsoft only with the offline_access scope."""
        if self.persona == "google":
            return params.get("access_type") == "offline" and (
                first_consent or "consent" in params.get("prompt", "").split()
            )
        if self.persona == "microsoft":
            return "offline_access" in scope.split()
        return True

    @staticmethod
    def _redirect_registered(app: _App, redirect_uri: str) -> bool:
        """Microsoft matches a registered http://localhost redirect on any port."""
        given = urlsplit(redirect_uri)
        for registered in app.redirect_uris:
            want = urlsplit(registered)
            if (want.scheme, want.hostname) == (given.scheme, given.hostname) and (
                want.path or "/"
            ) == (given.path or "/"):
                return True
        return False

    @staticmethod
    def _tenant_refusal(app: _App, client_id: str, tenant: str) -> OAuthError | None:
        if app.tenant and tenant in TENANT_ALIASES:
            return OAuthError(
                "invalid_request",
                f"Application '{client_id}'(robomail test app) is not configured as a "
                "multi-tenant application. Usage of the /common endpoint is not supported for "
                "such applications created after '10/15/2018'. Use a tenant-specific endpoint "
                "or configure the application to be multi-tenant.",
                aadsts=50194,
            )
        return None

    def _token(self, request: Request) -> Response:
        form = dict(request.form.items())
        with self._lock:
            self.token_requests.append(dict(form))
            failure = self._failures.pop(0) if self._failures else None
        if failure == "slow":
            time.sleep(self.slow_seconds)
        elif failure in ("invalid_grant", "invalid_client"):
            return self._error(self._injected(failure))
        elif failure == "server_error":
            return _json({"error": "server_error", "error_description": "Injected: oops."}, 500)
        elif failure == "rate_limited":
            return _json(
                {"error": "temporarily_unavailable", "error_description": "Injected: slow down."},
                429,
                {"Retry-After": "1"},
            )
        try:
            with self._lock:
                return _json(self._grant(request, form))
        except OAuthError as exc:
            return self._error(exc)

    def _client(self, request: Request, form: dict[str, str]) -> str:
        """Authenticate the client the way the persona's provider does; returns its client_id."""
        auth = request.authorization
        client_id = form.get("client_id")
        secret = form.get("client_secret")
        if auth is not None and auth.type == "basic":
            client_id, secret = auth.username, auth.password
        app = self._state.apps.get(client_id or "")
        if self.persona == "google":
            return self._google_client(client_id, secret, app)
        if self.persona == "microsoft":
            return self._microsoft_client(request, form, client_id, secret, app)
        if not client_id or app is None:
            raise OAuthError("invalid_client", "Unknown or missing client_id.", 401)
        expected = app.secret
        if expected is None and secret:
            raise OAuthError(
                "invalid_client",
                "AADSTS700025: Client is public so neither 'client_assertion' nor "
                "'client_secret' should be presented.",
                401,
            )
        if expected is not None and not (secret and secrets.compare_digest(secret, expected)):
            raise OAuthError("invalid_client", "Client authentication failed.", 401)
        return client_id

    @staticmethod
    def _google_client(client_id: str | None, secret: str | None, app: _App | None) -> str:
        if not client_id or app is None:
            raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
        if app.secret is not None:
            if not secret:
                raise OAuthError("invalid_request", "client_secret is missing.")
            if not secrets.compare_digest(secret, app.secret):
                raise OAuthError("invalid_client", "Unauthorized", 401)
        return client_id

    def _microsoft_client(
        self, request: Request, form: dict[str, str], client_id: str | None,
        secret: str | None, app: _App | None,
    ) -> str:
        tenant = self._tenant(request)
        if not client_id or app is None:
            raise OAuthError(
                "unauthorized_client",
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant.",
                aadsts=700016,
            )
        refused = self._tenant_refusal(app, client_id, tenant)
        if refused is not None:
            raise refused
        if secret:
            if app.secret is None:
                raise OAuthError(
                    "invalid_client",
                    "Client is public so neither 'client_assertion' nor 'client_secret' should "
                    "be presented.",
                    401,
                    aadsts=700025,
                )
            if not secrets.compare_digest(secret, app.secret):
                raise OAuthError(
                    "invalid_client",
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID, for a secret added to "
                    f"app '{client_id}'.",
                    401,
                    aadsts=7000215,
                )
            return client_id
        device = form.get("grant_type") == DEVICE_GRANT
        if app.public_client_flows or (app.secret is None and not device):
            return client_id
        raise OAuthError(
            "invalid_client",
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
            401,
            aadsts=7000218,
        )

    def _grant(self, request: Request, form: dict[str, str]) -> dict[str, Any]:
        grant = form.get("grant_type", "")
        if grant not in ("authorization_code", "refresh_token", DEVICE_GRANT):
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported.")
        client_id = self._client(request, form)
        if grant == "authorization_code":
            return self._code_grant(client_id, form)
        if grant == "refresh_token":
            return self._refresh_grant(client_id, form)
        return self._device_grant(client_id, form)

    def _bad_grant(self, generic: str) -> OAuthError:
        if self.persona == "google":
            return OAuthError("invalid_grant", "Bad Request")
        if self.persona == "microsoft":
            return OAuthError(
                "invalid_grant", "The provided authorization code or refresh token has expired "
                "due to inactivity, is invalid or was already used.", aadsts=70000,
            )
        return OAuthError("invalid_grant", generic)

    def _code_grant(self, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        code = self._state.codes.pop(form.get("code", ""), None)
        if code is None or code.expires_at <= self.now() or code.client_id != client_id:
            raise self._bad_grant("The code is invalid, expired or already used.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise self._bad_grant("redirect_uri differs from the authorize one.")
        verifier = form.get("code_verifier", "")
        if not verifier or not secrets.compare_digest(_challenge_s256(verifier), code.challenge):
            raise self._bad_grant("PKCE code_verifier does not match.")
        return self._issue(client_id, code.username, code.scope, new_refresh=code.refresh)

    def _refresh_grant(self, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        old = form.get("refresh_token", "")
        ref = self._state.refresh.get(old)
        if ref is None or old in self._state.revoked or ref.client_id != client_id:
            if self.persona == "google":
                raise OAuthError("invalid_grant", GOOGLE_EXPIRED)
            if self.persona == "microsoft":
                raise OAuthError(
                    "invalid_grant",
                    "The refresh token has expired or is invalid due to sign-in frequency "
                    "checks by conditional access, or it was already used.",
                    aadsts=70000,
                )
            raise OAuthError("invalid_grant", "The refresh token is invalid or revoked.")
        if ref.expires_at is not None and ref.expires_at <= self.now():
            if self.persona == "microsoft":
                issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ref.issued_at))
                raise OAuthError(
                    "invalid_grant",
                    f"The refresh token has expired due to inactivity. The token was issued on "
                    f"{issued} and was inactive for 90.00:00:00.",
                    aadsts=700082,
                )
            raise OAuthError("invalid_grant", GOOGLE_EXPIRED)
        if self.persona == "microsoft":
            if (client_id, ref.username) not in self._state.consents:
                raise OAuthError(
                    "invalid_grant",
                    f"The user or administrator has not consented to use the application with "
                    f"ID '{client_id}' named 'robomail test app'. Send an interactive "
                    "authorization request for this user and resource.",
                    aadsts=65001,
                    suberror="consent_required",
                )
            if self.interaction_required:
                raise self._interaction_error()
        rotate = self.rotate_refresh_tokens
        if rotate:
            del self._state.refresh[old]
        return self._issue(client_id, ref.username, ref.scope, rotate)

    def _interaction_error(self) -> OAuthError:
        if self.interaction_required == "conditional_access":
            return OAuthError(
                "interaction_required",
                "Access has been blocked by Conditional Access policies. The access policy does "
                "not allow token issuance.",
                aadsts=53003,
            )
        return OAuthError(
            "interaction_required",
            "Due to a configuration change made by your administrator, or because you moved to "
            "a new location, you must use multi-factor authentication to access "
            "'https://outlook.office.com'.",
            aadsts=50076,
        )

    def _device_grant(self, client_id: str, form: dict[str, str]) -> dict[str, Any]:
        microsoft = self.persona == "microsoft"
        dev = self._state.devices.get(form.get("device_code", ""))
        if dev is None or dev.used or dev.client_id != client_id:
            raise OAuthError("invalid_grant", "Unknown or used device_code.",
                             aadsts=70000 if microsoft else None)
        if dev.expires_at <= self.now():
            raise OAuthError("expired_token", "The device code expired.",
                             aadsts=70020 if microsoft else None)
        if self.deny_consent:
            if microsoft:
                raise OAuthError("authorization_declined", "The end user denied the "
                                 "authorization request.")
            raise OAuthError("access_denied", "The user declined consent.")
        dev.polls += 1
        if not dev.approved:
            if self.device_auto_approve and dev.polls >= 2:
                dev.approved = True
            else:
                raise OAuthError(
                    "authorization_pending",
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling."
                    if microsoft else "The user has not approved yet.",
                    aadsts=70016 if microsoft else None,
                )
        dev.used = True
        self._state.consents.add((client_id, self.consent_user))
        refresh = not microsoft or "offline_access" in dev.scope.split()
        return self._issue(client_id, self.consent_user, dev.scope, new_refresh=refresh)

    def _new_refresh(self, client_id: str, username: str, scope: str) -> str:
        now = self.now()
        expires_at = None
        app = self._state.apps.get(client_id)
        if self.persona == "google" and app is not None and app.testing:
            expires_at = now + TESTING_REFRESH_LIFETIME
        elif self.persona == "microsoft":
            expires_at = now + MICROSOFT_REFRESH_LIFETIME
        token = secrets.token_urlsafe(32)
        self._state.refresh[token] = _Refresh(client_id, username, scope, expires_at, now)
        return token

    def _issue(self, client_id: str, username: str, scope: str, new_refresh: bool) -> dict:
        lifetime = self.access_token_lifetime
        access = secrets.token_urlsafe(32)
        self._state.access[access] = _Access(username, client_id, scope, self.now() + lifetime)
        expires_in: int | str = str(lifetime) if self.expires_in_as_string else lifetime
        body: dict[str, Any]
        if self.persona == "microsoft":
            body = {"token_type": "Bearer", "scope": scope, "expires_in": expires_in,
                    "ext_expires_in": expires_in, "access_token": access}
        else:
            body = {"access_token": access, "token_type": "Bearer", "expires_in": expires_in,
                    "scope": scope}
        if new_refresh:
            body["refresh_token"] = self._new_refresh(client_id, username, scope)
        return body

    def _introspect(self, request: Request) -> Response:
        if self.introspection_down:
            return _json({"error": "server_error"}, 500)
        token = request.form.get("token") or request.args.get("token") or ""
        auth = request.headers.get("Authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        with self._lock:
            acc = self._active(token)
            if acc is None or not self._mail_accepts(acc):
                return _json({"active": False})
            body = {
                "active": True,
                "username": acc.username,
                "scope": acc.scope,
                "client_id": acc.client_id,
                "token_type": "Bearer",
                "exp": int(acc.expires_at),
            }
            if self.persona == "microsoft":
                body["aud"] = microsoft_audience(acc.scope)
            return _json(body)

    def _device(self, request: Request) -> Response:
        form = dict(request.form.items())
        with self._lock:
            client_id = form.get("client_id", "")
            scope = form.get("scope", self.default_scope)
            if client_id not in self._state.apps:
                if self.persona == "microsoft":
                    return self._error(OAuthError(
                        "unauthorized_client",
                        f"Application with identifier '{client_id}' was not found in the "
                        f"directory '{self._tenant(request)}'.",
                        aadsts=700016,
                    ))
                return _json(
                    {"error": "invalid_client", "error_description": "Unknown client_id."}, 401
                )
            if self.persona == "google":
                # Google's device flow allows a short list of scopes; Gmail's are not on it.
                mail = [s for s in scope.split()
                        if s == GOOGLE_MAIL_SCOPE or "/auth/gmail" in s]
                if mail:
                    return _json({"error": "invalid_scope",
                                  "error_description": f"Invalid device flow scope: {mail[0]}"},
                                 400)
            device_code = secrets.token_urlsafe(24)
            user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
            self._state.devices[device_code] = _Device(
                client_id, user_code, scope, self.now() + 900
            )
        uri_key = "verification_url" if self.persona == "google" else "verification_uri"
        body: dict[str, Any] = {
            "device_code": device_code,
            "user_code": user_code,
            uri_key: self.verification_url,
            "expires_in": 900,
            "interval": self.device_interval,
        }
        if self.persona == "microsoft":
            body["message"] = (
                f"To sign in, use a web browser to open the page {self.verification_url} and "
                f"enter the code {user_code} to authenticate."
            )
        elif self.persona == "generic":
            body["verification_uri_complete"] = f"{self.verification_url}?user_code={user_code}"
            body["message"] = f"Open {self.verification_url} and enter {user_code}."
        return _json(body)

    def _verify(self, request: Request) -> Response:
        user_code = request.args.get("user_code", "")
        try:
            self.approve_device(user_code)
        except KeyError:
            return _page("Unknown code.", 404)
        return _page(f"Device approved for {self.consent_user}. You can close this page.")


@contextmanager
def running_provider(**switches: Any) -> Iterator[FakeProvider]:
    """A started FakeProvider with some switches set; stopped on exit."""
    persona = switches.pop("persona", "generic")
    provider = FakeProvider(persona=persona)
    for name, value in switches.items():
        setattr(provider, name, value)
    with provider:
        yield provider


def serve_forever(
    port: int = 0,
    client_id: str = "demo-client",
    client_secret: str | None = None,
    public_client_id: str = "demo-public-client",
    persona: str = "generic",
) -> None:
    """Run a provider in the foreground (``hostsim fake-provider``) until Ctrl-C, SIGTERM or
    SIGHUP; every clean stop removes the folder that holds the client secret."""
    import contextlib
    import shutil

    from hostsim.devservers.foreground import StopSignals, write_secrets_file

    secret = client_secret or secrets.token_urlsafe(18)
    provider = FakeProvider(port=port, persona=persona)
    provider.register_client(client_id, secret)
    provider.register_client(public_client_id, None, public_client_flows=True)
    folder: Path | None = None
    with StopSignals() as stop:
        try:
            provider.start()
            folder = Path(tempfile.mkdtemp(prefix="rm-provider-"))
            secrets_file = write_secrets_file(
                folder / "credentials.json", {"clients": {client_id: secret}}
            )
            as_who = "" if persona == "generic" else f" answering as {persona.capitalize()}"
            print(f"Fake OAuth provider{as_who} at {provider.base_url}")
            print(f"  authorize:     {provider.authorize_url}")
            print(f"  token:         {provider.token_url}")
            print(f"  device:        {provider.device_url}")
            print(f"  introspection: {provider.introspect_url}")
            print(
                f"  confidential client: client_id={client_id} (secret in {secrets_file}, "
                "mode 0600)"
            )
            print(f"  public client:       client_id={public_client_id} (no secret)")
            print(f"  signs in as: {provider.consent_user} (consent is automatic)")
            if persona != "generic":
                print(f"  scope:         {provider.default_scope}")
            print("Press Ctrl-C to stop.", flush=True)
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop.stopping()
            provider.stop()
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
                with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                    print(f"Fake provider stopped: removed {folder}.", flush=True)
