"""A fake OAuth 2.0 provider for development and tests, on loopback, built on pytest-httpserver.

It does what real providers do where robomail depends on it (authorization code with PKCE S256
and auto-consent, single-use codes, public vs confidential clients, refresh with optional
rotation, the device flow, RFC 7662 introspection for Dovecot) and can misbehave on demand
(``fail_next``, ``introspection_down``, ``expires_in_as_string``...), so the token service and the
mail code can be tested end to end without the internet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import tempfile
import threading
import time
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

# Werkzeug's request log would print query strings (``/introspect?token=...``): keep it quiet.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


class OAuthError(Exception):
    """An RFC 6749 error answer (``{"error": ..., "error_description": ...}``)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    username: str
    scope: str
    expires_at: float


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
    clients: dict[str, str | None] = field(default_factory=dict)
    codes: dict[str, _Code] = field(default_factory=dict)
    access: dict[str, _Access] = field(default_factory=dict)
    refresh: dict[str, _Refresh] = field(default_factory=dict)
    devices: dict[str, _Device] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)


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


class FakeProvider:
    """A running fake OAuth provider; see the module docstring and docs/sandbox.md."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = HTTPServer(host=host, port=port, threaded=True)
        self._lock = threading.RLock()
        self._state = _State()
        self._failures: list[str] = []
        self.token_requests: list[dict[str, str]] = []
        self.last_authorize_params: dict[str, str] | None = None
        self._set_defaults()

    def _set_defaults(self) -> None:
        self.consent_user = DEFAULT_USER
        self.rotate_refresh_tokens = False
        self.expires_in_as_string = False
        self.deny_consent = False
        self.introspection_down = False
        self.slow_seconds = 2.0
        self.access_token_lifetime = 3600
        self.device_auto_approve = True
        self.device_interval = 1

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Listen on an OS-chosen loopback port and answer every endpoint."""
        srv = self._server
        srv.expect_request("/authorize", method="GET").respond_with_handler(self._authorize)
        srv.expect_request("/token", method="POST").respond_with_handler(self._token)
        srv.expect_request("/introspect").respond_with_handler(self._introspect)
        srv.expect_request("/device", method="POST").respond_with_handler(self._device)
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
        return f"<FakeProvider {self.base_url if running else 'stopped'}>"

    # --- addresses ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._server.url_for("/").rstrip("/")

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def introspect_url(self) -> str:
        return self.base_url + "/introspect"

    @property
    def device_url(self) -> str:
        return self.base_url + "/device"

    @property
    def verification_url(self) -> str:
        return self.base_url + "/device/verify"

    # --- test hooks -----------------------------------------------------------------------------

    def register_client(self, client_id: str, client_secret: str | None = None) -> None:
        """Register a client; ``client_secret=None`` makes it public (it must not send a secret)."""
        with self._lock:
            self._state.clients[client_id] = client_secret

    def mint_access_token(
        self, username: str, lifetime: int = 3600, client_id: str | None = None
    ) -> str:
        """Issue an access token that introspection (so Dovecot) accepts for ``username``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._state.access[token] = _Access(
                username, client_id, DEFAULT_SCOPE, time.time() + lifetime
            )
        return token

    def mint_refresh_token(self, client_id: str, username: str, scope: str = DEFAULT_SCOPE) -> str:
        """Issue a refresh token for a registered client, as if the user had consented."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._state.refresh[token] = _Refresh(client_id, username, scope)
        return token

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
        """Restore the switches to their defaults and clear the records and queued failures.

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
        """Whether introspection would call ``token`` active."""
        with self._lock:
            return self._active(token) is not None

    # --- endpoint handlers ----------------------------------------------------------------------

    def _active(self, token: str) -> _Access | None:
        acc = self._state.access.get(token)
        if acc is None or token in self._state.revoked or acc.expires_at <= time.time():
            return None
        return acc

    def _authorize(self, request: Request) -> Response:
        params = dict(request.args.items())
        with self._lock:
            self.last_authorize_params = dict(params)
            client_id = params.get("client_id", "")
            if client_id not in self._state.clients:
                return _page(f"Error: unknown client_id {client_id!r}.", 400)
            redirect_uri = params.get("redirect_uri", "")
            if not _is_loopback_http(redirect_uri):
                return _page("Error: redirect_uri must be a loopback http:// URL.", 400)
            state = {"state": params["state"]} if "state" in params else {}

            def error(code: str, text: str) -> Response:
                target = _with_query(redirect_uri, {"error": code, "error_description": text})
                if state:
                    target = _with_query(target, state)
                return Response(status=302, headers={"Location": target})

            if params.get("response_type") != "code":
                return error("unsupported_response_type", "response_type must be code")
            if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
                return error("invalid_request", "PKCE with code_challenge_method=S256 is required")
            if self.deny_consent:
                return error("access_denied", "The user declined consent.")
            code = secrets.token_urlsafe(24)
            self._state.codes[code] = _Code(
                client_id=client_id,
                redirect_uri=redirect_uri,
                challenge=params["code_challenge"],
                username=self.consent_user,
                scope=params.get("scope", DEFAULT_SCOPE),
                expires_at=time.time() + 600,
            )
        target = _with_query(redirect_uri, {"code": code, **state})
        return Response(status=302, headers={"Location": target})

    def _token(self, request: Request) -> Response:
        form = dict(request.form.items())
        with self._lock:
            self.token_requests.append(dict(form))
            failure = self._failures.pop(0) if self._failures else None
        if failure == "slow":
            time.sleep(self.slow_seconds)
        elif failure == "invalid_grant":
            return _json(
                {"error": "invalid_grant", "error_description": "Injected: grant is invalid."}, 400
            )
        elif failure == "invalid_client":
            return _json(
                {"error": "invalid_client", "error_description": "Injected: bad client."}, 401
            )
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
            headers = {"WWW-Authenticate": "Basic"} if exc.status == 401 else None
            return _json(
                {"error": exc.error, "error_description": exc.description}, exc.status, headers
            )

    def _client(self, request: Request, form: dict[str, str]) -> str:
        """Authenticate the client the way Microsoft and Google do; returns its client_id."""
        auth = request.authorization
        client_id = form.get("client_id")
        secret = form.get("client_secret")
        if auth is not None and auth.type == "basic":
            client_id, secret = auth.username, auth.password
        if not client_id or client_id not in self._state.clients:
            raise OAuthError("invalid_client", "Unknown or missing client_id.", 401)
        expected = self._state.clients[client_id]
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

    def _grant(self, request: Request, form: dict[str, str]) -> dict[str, Any]:
        grant = form.get("grant_type", "")
        if grant not in ("authorization_code", "refresh_token", DEVICE_GRANT):
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported.")
        client_id = self._client(request, form)
        if grant == "authorization_code":
            code = self._state.codes.pop(form.get("code", ""), None)
            if code is None or code.expires_at <= time.time() or code.client_id != client_id:
                raise OAuthError("invalid_grant", "The code is invalid, expired or already used.")
            if form.get("redirect_uri") != code.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri differs from the authorize one.")
            verifier = form.get("code_verifier", "")
            if not verifier or not secrets.compare_digest(
                _challenge_s256(verifier), code.challenge
            ):
                raise OAuthError("invalid_grant", "PKCE code_verifier does not match.")
            return self._issue(client_id, code.username, code.scope, new_refresh=True)
        if grant == "refresh_token":
            old = form.get("refresh_token", "")
            ref = self._state.refresh.get(old)
            if ref is None or old in self._state.revoked or ref.client_id != client_id:
                raise OAuthError("invalid_grant", "The refresh token is invalid or revoked.")
            if self.rotate_refresh_tokens:
                del self._state.refresh[old]
            return self._issue(client_id, ref.username, ref.scope, self.rotate_refresh_tokens)
        dev = self._state.devices.get(form.get("device_code", ""))
        if dev is None or dev.used or dev.client_id != client_id:
            raise OAuthError("invalid_grant", "Unknown or used device_code.")
        if dev.expires_at <= time.time():
            raise OAuthError("expired_token", "The device code expired.")
        if self.deny_consent:
            raise OAuthError("access_denied", "The user declined consent.")
        dev.polls += 1
        if not dev.approved:
            if self.device_auto_approve and dev.polls >= 2:
                dev.approved = True
            else:
                raise OAuthError("authorization_pending", "The user has not approved yet.")
        dev.used = True
        return self._issue(client_id, self.consent_user, dev.scope, new_refresh=True)

    def _issue(self, client_id: str, username: str, scope: str, new_refresh: bool) -> dict:
        lifetime = self.access_token_lifetime
        access = secrets.token_urlsafe(32)
        self._state.access[access] = _Access(username, client_id, scope, time.time() + lifetime)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": str(lifetime) if self.expires_in_as_string else lifetime,
            "scope": scope,
        }
        if new_refresh:
            refresh = secrets.token_urlsafe(32)
            self._state.refresh[refresh] = _Refresh(client_id, username, scope)
            body["refresh_token"] = refresh
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
            if acc is None:
                return _json({"active": False})
            return _json(
                {
                    "active": True,
                    "username": acc.username,
                    "scope": acc.scope,
                    "client_id": acc.client_id,
                    "token_type": "Bearer",
                    "exp": int(acc.expires_at),
                }
            )

    def _device(self, request: Request) -> Response:
        form = dict(request.form.items())
        with self._lock:
            client_id = form.get("client_id", "")
            if client_id not in self._state.clients:
                return _json(
                    {"error": "invalid_client", "error_description": "Unknown client_id."}, 401
                )
            device_code = secrets.token_urlsafe(24)
            user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
            self._state.devices[device_code] = _Device(
                client_id, user_code, form.get("scope", DEFAULT_SCOPE), time.time() + 900
            )
        return _json(
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": self.verification_url,
                "verification_uri_complete": f"{self.verification_url}?user_code={user_code}",
                "expires_in": 900,
                "interval": self.device_interval,
                "message": f"Open {self.verification_url} and enter {user_code}.",
            }
        )

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
    provider = FakeProvider()
    for name, value in switches.items():
        setattr(provider, name, value)
    with provider:
        yield provider


def serve_forever(
    port: int = 0,
    client_id: str = "demo-client",
    client_secret: str | None = None,
    public_client_id: str = "demo-public-client",
) -> None:
    """Run a provider in the foreground (``hostsim fake-provider``) until Ctrl-C, SIGTERM or
    SIGHUP; every clean stop removes the folder that holds the client secret."""
    import contextlib
    import shutil

    from hostsim.sandbox import StopSignals, write_secrets_file

    secret = client_secret or secrets.token_urlsafe(18)
    provider = FakeProvider(port=port)
    provider.register_client(client_id, secret)
    provider.register_client(public_client_id, None)
    folder: Path | None = None
    with StopSignals() as stop:
        try:
            provider.start()
            folder = Path(tempfile.mkdtemp(prefix="rm-provider-"))
            secrets_file = write_secrets_file(
                folder / "credentials.json", {"clients": {client_id: secret}}
            )
            print(f"Fake OAuth provider at {provider.base_url}")
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
