"""Get Refresh Token: the authorization-code flow with PKCE through the system browser.

RFC 8252: the system browser (``webbrowser``, so BROWSER is honoured), a listener on 127.0.0.1
with an OS-chosen port, PKCE S256, a random ``state`` that is checked, and a timeout. The listener
serves connections in parallel with a short timeout each, so an idle connection (a browser's
speculative preconnect) cannot stall it, and ignores answers whose ``state`` does not match, so
any local process cannot end the sign-in with a forged request.
For machines without a browser: print the URL and take the pasted redirect URL, or use the
device-code grant (RFC 8628) where the provider has one. Tokens are redeemed by the token
service's endpoint client, never here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import secrets
import socketserver
import threading
import time
import webbrowser
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
from requests_oauthlib import OAuth2Session

from robomail_plugin.credentials.choices import REDIRECT_HOSTS
from robomail_plugin.credentials.records import OAuthRecord
from robomail_plugin.credentials.tokens import TokenEndpoint, TokenGrant, allow_loopback_http
from robomail_plugin.errors import AuthorizationFailed, RobomailError
from robomail_plugin.private_files import free_port

SUCCESS_TEXT = (
    "Successfully Authenticated. You can now close this tab/window and return to the application."
)
DEFAULT_TIMEOUT_S = 300.0
CONNECTION_TIMEOUT_S = 5.0
IGNORED_TEXT = (
    "This answer does not belong to the sign-in robomail is waiting for (its state does not "
    "match: a stale tab or another program), so it was ignored. Finish signing in from the "
    "window Get Refresh Token opened."
)


@attrs.frozen(kw_only=True)
class AuthorizationRequest:
    """An authorization URL with its state, PKCE verifier and the session that redeems it."""

    url: str
    state: str = attrs.field(repr=False)
    redirect_uri: str
    code_verifier: str = attrs.field(repr=False)
    session: OAuth2Session = attrs.field(repr=False, eq=False)

    def redeem(self, record: OAuthRecord, endpoint: TokenEndpoint, code: str) -> TokenGrant:
        return endpoint.exchange_code(record, self.session, code, code_verifier=self.code_verifier)


def _pkce_pair() -> tuple[str, str]:
    """RFC 7636 S256: a random verifier and its challenge."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _session(record: OAuthRecord, redirect_uri: str, state: str | None = None) -> OAuth2Session:
    return OAuth2Session(
        client_id=record.client_id, redirect_uri=redirect_uri, scope=record.scopes, state=state
    )


def build_request(
    record: OAuthRecord, redirect_uri: str, extra_params: Mapping[str, str] | None = None
) -> AuthorizationRequest:
    """The authorization URL for a record: response_type=code, PKCE S256, a random state."""
    session = _session(record, redirect_uri)
    verifier, challenge = _pkce_pair()
    params = dict(extra_params or {})
    if record.client_account and "login_hint" not in params:
        params["login_hint"] = record.client_account
    with allow_loopback_http(record.authorization_endpoint):
        url, state = session.authorization_url(
            record.authorization_endpoint, code_challenge=challenge,
            code_challenge_method="S256", **params,
        )
    return AuthorizationRequest(
        url=url, state=state, redirect_uri=redirect_uri, code_verifier=verifier, session=session
    )


def save_pending(path: Path, request: AuthorizationRequest) -> None:
    """Keeps a started sign-in (state, PKCE verifier, redirect) for ``--redirect-url`` to finish
    in another run: a private file (0600) that the finishing run deletes."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {"state": request.state, "code_verifier": request.code_verifier,
            "redirect_uri": request.redirect_uri, "url": request.url, "created": time.time()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)


def load_pending(path: Path, record: OAuthRecord, max_age: float) -> AuthorizationRequest:
    """The sign-in ``save_pending`` kept; gone or older than ``max_age``: an error saying what to
    run. The file is removed either way (a code is single-use)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _failed(
            record,
            "no sign-in was started for this record. Run get-refresh-token --no-browser first, "
            "sign in at the URL it prints, then give the redirect URL with --redirect-url.",
        ) from None
    finally:
        path.unlink(missing_ok=True)
    if time.time() - float(data.get("created", 0)) > max_age:
        raise _failed(
            record,
            f"the sign-in was started over {max_age:g} s ago (--timeout). Run get-refresh-token "
            "--no-browser again and give the redirect URL sooner.",
        )
    session = _session(record, data["redirect_uri"], data["state"])
    return AuthorizationRequest(
        url=data["url"], state=data["state"], redirect_uri=data["redirect_uri"],
        code_verifier=data["code_verifier"], session=session,
    )


def finish_with_redirect_url(
    record: OAuthRecord, endpoint: TokenEndpoint, request: AuthorizationRequest, pasted: str
) -> TokenGrant:
    """Redeems the code in a redirect URL copied from the browser's address bar."""
    pasted = pasted.strip()
    if not pasted:
        raise _failed(record, "no redirect URL was given.")
    query = parse_qs(urlsplit(pasted).query, keep_blank_values=True)
    if not query:
        raise _failed(
            record,
            "the text given is not the redirect URL (it has no ?code=...&state=... part).",
        )
    return request.redeem(record, endpoint, _check_answer(record, request, query, endpoint))


def _failed(record: OAuthRecord, what: str) -> AuthorizationFailed:
    return AuthorizationFailed(
        f"Get Refresh Token for OAuth record {record.record_name!r} failed: {what}"
    )


def _state_matches(request: AuthorizationRequest, query: Mapping[str, list[str]]) -> bool:
    state = (query.get("state") or [""])[0]
    return hmac.compare_digest(state.encode(), request.state.encode())


def _check_answer(
    record: OAuthRecord,
    request: AuthorizationRequest,
    query: Mapping[str, list[str]],
    endpoint: TokenEndpoint | None = None,
) -> str:
    """The authorization code from a redirect's query, after checking state and errors (with
    the provider's hints, through ``endpoint``)."""
    if not _state_matches(request, query):
        raise _failed(
            record,
            "the answer's state does not match this request (a stale or forged redirect). "
            "Start Get Refresh Token again and finish it in the browser window it opens.",
        )
    if "error" in query:
        error = query["error"][0][:100]
        if endpoint is not None:
            raise endpoint.authorization_refused(
                record, error, (query.get("error_description") or [""])[0][:2000]
            )
        description = (query.get("error_description") or [""])[0][:300]
        advice = (
            "consent was declined; run Get Refresh Token again and allow access"
            if error == "access_denied"
            else "check the record's Client ID, endpoints, Scope and the app's redirect settings"
        )
        raise _failed(
            record, f"the provider answered {error}" + (f" ({description})" if description else "")
            + f"; {advice}."
        )
    code = (query.get("code") or [""])[0]
    if not code:
        raise _failed(record, "the redirect carries no authorization code.")
    return code


class _Listener(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """The loopback server: a thread per connection; the first answer with the right state wins
    and its handler stores the outcome here."""

    daemon_threads = True
    outcome: TokenGrant | RobomailError | None = None
    done: threading.Event
    claim: threading.Lock  # held by the handler redeeming the one right answer
    count_lock: threading.Lock
    ignored: int = 0  # answers with a wrong state


def authorize_in_browser(
    record: OAuthRecord,
    endpoint: TokenEndpoint,
    *,
    extra_params: Mapping[str, str] | None = None,
    open_url: Callable[[str], bool] = webbrowser.open,
    say: Callable[[str], None] = print,
    timeout: float = DEFAULT_TIMEOUT_S,
    redirect_host: str = "127.0.0.1",
    cancelled: Callable[[], bool] | None = None,
) -> TokenGrant:
    """Runs the browser flow and returns the refresh token (and a first access token).

    ``cancelled`` is the host's Cancel button (``HostContext.cancelled``): the wait stops soon
    after it turns true, and nothing is saved.
    """
    if redirect_host not in REDIRECT_HOSTS:
        raise _failed(record, f"redirect host must be one of {', '.join(REDIRECT_HOSTS)}.")
    server = _Listener(("127.0.0.1", 0), _Handler, bind_and_activate=True)
    server.done = threading.Event()
    server.claim = threading.Lock()
    server.count_lock = threading.Lock()
    port = server.server_address[1]
    request = build_request(record, f"http://{redirect_host}:{port}/", extra_params)
    server.request_ctx = (record, request, endpoint)  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1},
        name="robomail-oauth-listener", daemon=True,
    )
    thread.start()
    try:
        say(
            "Opening the browser to sign in. If it does not open, visit this URL in a browser on "
            f"this machine:\n{request.url}"
        )
        try:
            opened = open_url(request.url)
        except Exception:
            opened = False
        if not opened:
            say("No browser could be started; open the URL above by hand.")
        say(f"Waiting up to {timeout:g} s (--timeout) for you to finish signing in; "
            "Ctrl-C (or Cancel) stops it.")
        finished = _wait_unless_cancelled(server.done, timeout, cancelled)
        if finished is None:
            raise _failed(
                record, "it was cancelled before the sign-in finished; the record is unchanged."
            )
        if not finished and server.claim.locked():  # the right answer came: let it be redeemed
            finished = server.done.wait(endpoint.timeout + 5)
        if not finished:
            ignored = ""
            if server.ignored:
                ignored = (
                    f" {server.ignored} answer{'s' if server.ignored > 1 else ''} whose state "
                    "does not match this sign-in (a stale tab or another program) "
                    f"{'were' if server.ignored > 1 else 'was'} ignored."
                )
            raise _failed(
                record,
                f"no answer from the browser within {timeout:g} s.{ignored} Run it again and "
                "finish signing in sooner, or use --no-browser / --device on a machine without a "
                "browser.",
            )
    finally:
        server.done.set()
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
    outcome = server.outcome
    if isinstance(outcome, RobomailError):
        raise outcome
    assert isinstance(outcome, TokenGrant)
    return outcome


CANCEL_POLL_S = 0.1


def _wait_unless_cancelled(
    done: threading.Event, timeout: float, cancelled: Callable[[], bool] | None
) -> bool | None:
    """Waits for ``done`` up to ``timeout`` s: True when set, False on timeout, None when
    ``cancelled()`` turned true first (checked every 0.1 s, so Cancel feels immediate)."""
    if cancelled is None:
        return done.wait(timeout)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if done.wait(max(0.0, min(left, CANCEL_POLL_S))):
            return True
        if cancelled():
            return None
        if left <= 0:
            return False


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers the provider's redirect once; a wrong state gets 400, anything else 404."""

    server: _Listener
    timeout = CONNECTION_TIMEOUT_S  # per connection: an idle one is dropped, not waited for

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        return None  # the default logs query strings, which carry the code

    def _page(self, status: int, text: str) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.server.done.is_set():
            self._page(410, "This sign-in is over. Return to the application.")
            return
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if parts.path != "/" or not ({"code", "error", "state"} & set(query)):
            self._page(404, "Not found.")
            return
        record, request, endpoint = self.server.request_ctx  # type: ignore[attr-defined]
        if not _state_matches(request, query):
            with self.server.count_lock:
                self.server.ignored += 1
            self._page(400, IGNORED_TEXT)
            return
        if not self.server.claim.acquire(blocking=False):
            self._page(409, "This sign-in is being completed already. Return to the application.")
            return
        try:
            code = _check_answer(record, request, query, endpoint)
            self.server.outcome = request.redeem(record, endpoint, code)
        except RobomailError as exc:
            self.server.outcome = exc
            self._page(400, f"Authentication failed. {exc}")
        else:
            self._page(200, SUCCESS_TEXT)
        finally:
            self.server.done.set()


def authorize_by_paste(
    record: OAuthRecord,
    endpoint: TokenEndpoint,
    *,
    prompt: Callable[[str], str],
    extra_params: Mapping[str, str] | None = None,
    say: Callable[[str], None] = print,
    redirect_host: str = "127.0.0.1",
    timeout: float = DEFAULT_TIMEOUT_S,
) -> TokenGrant:
    """No browser here: print the URL, the user signs in elsewhere and pastes the redirect URL
    (the page that failed to load after sign-in) within ``timeout`` seconds."""
    request = build_request(record, f"http://{redirect_host}:{free_port()}/", extra_params)
    say(
        "Open this URL in any browser and sign in:\n"
        f"{request.url}\n"
        "After signing in, the browser tries to open a 127.0.0.1 (or localhost) page, which may "
        "fail to load; copy the full address from the address bar and paste it here "
        f"(within {timeout:g} s; Ctrl-C cancels)."
    )
    started = time.monotonic()
    pasted = prompt("Redirect URL")
    if time.monotonic() - started > timeout:
        raise _failed(
            record, f"the redirect URL came after more than {timeout:g} s (--timeout); run "
            "Get Refresh Token again."
        )
    return finish_with_redirect_url(record, endpoint, request, pasted)


def authorize_with_device(
    record: OAuthRecord,
    endpoint: TokenEndpoint,
    *,
    device_endpoint: str,
    say: Callable[[str], None] = print,
    timeout: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
    cancelled: Callable[[], bool] | None = None,
) -> TokenGrant:
    """The device-code grant (RFC 8628): show a code, the user enters it on any device, poll.

    ``cancelled`` (the host's Cancel button) is checked between polls.
    """
    record = attrs.evolve(record, device_endpoint=device_endpoint)
    answer = endpoint.start_device(record)
    uri = answer.get("verification_uri") or answer.get("verification_url") or ""
    say(
        f"To sign in, open {uri} on any device and enter the code {answer['user_code']}."
        + (f"\n{answer['message']}" if answer.get("message") else "")
        + f"\nWaiting up to {timeout:g} s (--timeout) for the sign-in; Ctrl-C cancels."
    )
    try:
        interval = max(1.0, float(answer.get("interval", 5)))
    except (TypeError, ValueError):
        interval = 5.0
    try:
        lifetime = float(answer.get("expires_in", timeout))
    except (TypeError, ValueError):
        lifetime = timeout
    deadline = time.monotonic() + min(lifetime, timeout)
    while time.monotonic() < deadline:
        sleep(interval)
        if cancelled is not None and cancelled():
            raise _failed(
                record, "it was cancelled before the sign-in finished; the record is unchanged."
            )
        result = endpoint.poll_device(record, str(answer["device_code"]))
        if isinstance(result, TokenGrant):
            return result
        if result == "slow_down":
            interval += 5
    raise _failed(
        record, "the device code expired before sign-in finished. Run Get Refresh Token again."
    )
