"""The token service: the one place that talks to token endpoints (through requests-oauthlib).

It turns a record's Refresh Token into an access token in hidden mode, keeps it in memory until
shortly before it expires (never on disk), refreshes one record at a time across threads and
processes, saves a rotated refresh token, and classifies failures: the user must act
(``TokenError``) or it is worth trying later (``TokenTemporaryError``). A failed refresh never
touches the stored refresh token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, urljoin, urlsplit

import attrs
import requests
from oauthlib.oauth2 import DeviceClient, OAuth2Error
from requests_oauthlib import OAuth2Session

from robomail_plugin.credentials.doctor import ErrorJournal
from robomail_plugin.credentials.presets import builtin_presets, refusal_hints
from robomail_plugin.credentials.records import OAuthRecord
from robomail_plugin.errors import (
    AuthorizationFailed,
    RobomailError,
    StoreError,
    TokenError,
    TokenTemporaryError,
)
from robomail_plugin.private_files import flocked
from robomail_plugin.schema import ProviderPreset

log = logging.getLogger(__name__)

EARLY_REFRESH_S = 60.0
DEFAULT_LIFETIME_S = 3600.0
MAX_LIFETIME_S = 365 * 86400.0
TEMPORARY = frozenset({"temporarily_unavailable", "server_error"})
_AADSTS_RE = re.compile(r"\b(AADSTS\d+)\b")
_CORRELATION_RE = re.compile(r"Correlation ID:\s*([0-9A-Fa-f-]{8,})")
_TRACE_RE = re.compile(r"Trace ID:\s*([0-9A-Fa-f-]{8,})")
# Line breaks, NUL, escapes and other control characters: a token holding one would break the
# store's listings, log lines and SASL strings.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_WHOLE_RE = re.compile(r"\s*\+?\d{1,30}\s*")
_E = TypeVar("_E", bound=RobomailError)


class _QuietDebug(logging.Filter):
    """requests-oauthlib and oauthlib log request bodies and tokens at DEBUG: drop those lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


for _name in ("requests_oauthlib.oauth2_session", "oauthlib"):
    logging.getLogger(_name).addFilter(_QuietDebug())


@attrs.frozen(kw_only=True)
class AccessToken:
    """A short-lived access token; kept in memory only."""

    value: str = attrs.field(repr=False)
    expires_at: float
    record_name: str = ""
    obtained_at: float = attrs.field(factory=time.time)

    def fresh(self, margin: float = EARLY_REFRESH_S, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) < self.expires_at - margin


@attrs.frozen(kw_only=True)
class TokenGrant:
    """What an authorization (code or device) gives: a refresh token and a first access token."""

    refresh_token: str = attrs.field(repr=False)
    access_token: AccessToken


# --- http on loopback ---------------------------------------------------------------------------

_insecure_lock = threading.Lock()
_insecure_users = 0
_insecure_was_set = False


@contextlib.contextmanager
def allow_loopback_http(url: str) -> Iterator[None]:
    """oauthlib refuses http://; records only allow it on loopback (validated), so relax it there.

    The relaxation lasts only while a loopback request is in flight.
    """
    global _insecure_users, _insecure_was_set
    if not url.lower().startswith("http://"):
        yield
        return
    with _insecure_lock:
        if _insecure_users == 0:
            _insecure_was_set = "OAUTHLIB_INSECURE_TRANSPORT" in os.environ
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        _insecure_users += 1
    try:
        yield
    finally:
        with _insecure_lock:
            _insecure_users -= 1
            if _insecure_users == 0 and not _insecure_was_set:
                os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)


# --- classification -----------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth retrying (429, 5xx, network); carries a short reason, no secrets."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Refused(Exception):
    """The endpoint answered with an OAuth error or an unusable answer."""

    def __init__(
        self, error: str, description: str, status: int | None = None, source: str = ""
    ) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status
        self.source = source  # the URL that answered, when it matters (redirects)


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, for messages (no path, query or user info)."""
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme, parts.hostname, parts.port
    except ValueError:
        scheme, host, port = "", None, None
    if not scheme or not host:
        return "an address that cannot be read"
    scheme = _CONTROL_RE.sub("", scheme)[:20]
    host = _CONTROL_RE.sub("", host)[:200]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def _refuse_redirect(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """A 3xx is an error, never followed: token requests carry the Client Secret and the Refresh
    Token, and a redirect (307/308 keep the body) would hand them to wherever it points.

    Also a requests response hook, which runs before requests would follow the redirect.
    """
    if 300 <= response.status_code < 400:
        target = _origin(urljoin(response.url or "", response.headers.get("Location", "")))
        response.close()
        source = _endpoint_label(response.url or "")
        raise _Refused("redirected", target, response.status_code, source)
    return response


def _no_redirects(session: requests.Session) -> None:
    """Makes a session stop at the first redirect, before anything is sent again."""
    session.max_redirects = 0
    if _refuse_redirect not in session.hooks["response"]:
        session.hooks["response"].append(_refuse_redirect)


def _check_response(response: requests.Response) -> requests.Response:
    """Compliance hook: 429/5xx are transient; a non-OAuth error page is a refusal with status."""
    _refuse_redirect(response)
    status = response.status_code
    if status == 429 or status >= 500:
        retry_after = None
        with contextlib.suppress(TypeError, ValueError):
            retry_after = float(response.headers.get("Retry-After", ""))
        raise _Transient(f"HTTP {status}", retry_after)
    if status >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (isinstance(body, dict) and isinstance(body.get("error"), str)):
            raise _Refused("http_error", f"HTTP {status} without an OAuth error answer", status)
        if body["error"] in TEMPORARY:
            raise _Transient(f"{body['error']} (HTTP {status})")
    return response


def _json_kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "true/false/null"
    kinds: dict[type, str] = {dict: "object", list: "array", str: "string"}
    return kinds.get(type(value), "number")


def _lifetime(raw: Any) -> float:
    """Seconds from expires_in: missing means one hour, more than a year is capped at a year
    (a later rejection refreshes anyway); anything else unusable is a protocol error."""
    if raw is None or raw == "":
        return DEFAULT_LIFETIME_S
    shown = (repr(raw) if isinstance(raw, str) else json.dumps(raw, default=str))[:40]
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _Refused("invalid_response", f"expires_in {shown} is not a number of seconds")
    if isinstance(raw, str):
        if not _WHOLE_RE.fullmatch(raw):
            raise _Refused("invalid_response", f"expires_in {shown} is not a number of seconds")
        raw = int(raw)
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _Refused("invalid_response", f"expires_in {shown} is not a finite number")
    if raw <= 0:
        raise _Refused(
            "invalid_response",
            f"expires_in {shown} is not positive (the access token would be expired already)",
        )
    return float(min(raw, MAX_LIFETIME_S))


def _expires_at(token: Mapping[str, Any], now: float) -> float:
    return now + _lifetime(token.get("expires_in"))


def _check_token_values(token: Any) -> dict[str, Any]:
    """A token answer robomail can keep: a JSON object whose access_token is a non-empty
    single-line string, whose refresh_token (if any) is a single-line string and whose
    expires_in is usable. Checked before anything is cached or stored."""
    if not isinstance(token, dict):
        raise _Refused(
            "invalid_response", f"the answer is a JSON {_json_kind(token)}, not a JSON object"
        )
    access = token.get("access_token")
    if access is None or access == "":
        raise _Refused("invalid_response", "the answer has no access_token")
    for key in ("access_token", "refresh_token"):
        value = token.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _Refused(
                "invalid_response", f"the {key} in the answer is a JSON {_json_kind(value)}, "
                "not a string",
            )
        if _CONTROL_RE.search(value):
            raise _Refused(
                "invalid_response", f"the {key} in the answer contains a line break or another "
                "control character",
            )
    _lifetime(token.get("expires_in"))
    return token


def _check_token_answer(response: requests.Response) -> requests.Response:
    """Compliance hook for token answers: status first, then the values of a 2xx answer, before
    oauthlib parses them (it would fail on some with a traceback, e.g. expires_in 1e999)."""
    _check_response(response)
    if not 200 <= response.status_code < 300:
        return response
    try:
        body = json.loads(response.text)
    except ValueError:
        return response  # oauthlib tries form encoding; its result is checked after parsing
    if isinstance(body, dict) and "error" in body:
        return response  # oauthlib raises the OAuth error
    _check_token_values(body)
    return response


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """Masks secrets, also as a server may echo them: percent-encoded (any hex case)."""
    forms: set[str] = set()
    for s in secrets:
        if s and len(s) >= 4:
            forms.update({s, quote(s), quote(s, safe=""), quote_plus(s), quote_plus(s, safe="/")})
    for form in sorted(forms, key=len, reverse=True):
        if "%" in form:
            text = re.sub(re.escape(form), "***", text, flags=re.IGNORECASE)
        else:
            text = text.replace(form, "***")
    return text


def _diagnostics(description: str) -> tuple[list[str], str]:
    """AADSTS codes and correlation/trace ids (Microsoft), shown as diagnostics only."""
    codes = list(dict.fromkeys(_AADSTS_RE.findall(description)))
    bits = list(codes)
    for label, rx in (("correlation id", _CORRELATION_RE), ("trace id", _TRACE_RE)):
        m = rx.search(description)
        if m:
            bits.append(f"{label} {m.group(1)}")
    return codes, ", ".join(bits)


def _hints(
    presets: Mapping[str, ProviderPreset], record: OAuthRecord, error: str, codes: Sequence[str],
    description: str = "",
) -> list[str]:
    """The provider's hints: found by the token host, else by the error's shape (AADSTS codes,
    Google's "Token has been expired or revoked."), so a proxy or a persona gets them too."""
    return refusal_hints(presets, record.token_endpoint, error, description, list(codes))


_ADVICE = {
    "invalid_grant": (
        "the Refresh Token expired or was revoked (the provider answered invalid_grant)"
    ),
    "interaction_required": (
        "the provider requires the user to sign in again (interaction_required), so the Refresh "
        "Token expired or was revoked for silent use"
    ),
    "consent_required": "the user must consent again (consent_required)",
    "login_required": "the user must sign in again (login_required)",
    "invalid_client": (
        "the provider rejected the client (invalid_client): check the Client ID and Client "
        "Secret (a public client must have no Client Secret)"
    ),
    "unauthorized_client": (
        "the client may not use this grant (unauthorized_client): check the app registration"
    ),
}


def refusal_error(
    refused: _Refused,
    record: OAuthRecord,
    presets: Mapping[str, ProviderPreset],
    *,
    during: str = "refresh",
) -> RobomailError:
    """The user-facing error for a refused token request: what, what to do, hints, diagnostics."""
    description = _scrub(refused.description or "", (record.refresh_token, record.client_secret))
    codes, diag = _diagnostics(description)
    name = record.record_name
    cls = TokenError if during == "refresh" else AuthorizationFailed
    kept = " The stored Refresh Token was kept." if during == "refresh" else ""
    if refused.error == "redirected":
        field, option, url = "Access Token Endpoint", "--token-endpoint", record.token_endpoint
        if record.device_endpoint and refused.source == _endpoint_label(record.device_endpoint):
            field, option = "Device Authorization Endpoint", "--device-endpoint"
            url = record.device_endpoint
        return cls(
            f"OAuth record {name!r}: the endpoint {_endpoint_label(url)} redirected (HTTP "
            f"{refused.status}) to {description}. Token requests carry the Client Secret and "
            "the Refresh Token, so robomail does not follow redirects. Put the final URL in the "
            f"record's {field} (hostsim oauth edit {shlex.quote(name)} {option} URL).{kept}",
            server_reply=f"redirected (HTTP {refused.status})",
        )
    if refused.error == "invalid_response":
        return cls(
            f"OAuth record {name!r}: the token endpoint gave an answer robomail cannot use "
            f"(invalid_response: {description[:300]}).{kept} Check that the Access Token "
            "Endpoint is the provider's token endpoint; if it is, the provider is misbehaving: "
            "try again later.",
            server_reply="invalid_response",
        )
    rerun = f"Run Get Refresh Token again (hostsim oauth get-refresh-token {shlex.quote(name)})."
    if during == "refresh":
        what = _ADVICE.get(refused.error)
        if what is None:
            detail = "" if codes else f": {description[:300]}" if description else ""
            what = (
                f"the token endpoint refused the refresh ({refused.error}{detail}); check the "
                "record's Access Token Endpoint and Scope"
            )
        message = f"OAuth record {name!r}: {what}. {rerun}"
    else:
        detail = "" if codes else (f": {description[:300]}" if description else "")
        message = (
            f"OAuth record {name!r}: the token endpoint refused the authorization "
            f"({refused.error}{detail}). Check Client ID, Client Secret and the endpoints, then "
            "try Get Refresh Token again."
        )
    hints = _hints(presets, record, refused.error, codes, description)
    for hint in hints:
        message += f" Hint: {hint}"
    if diag:
        message += f" Diagnostics: {diag}."
    error = cls(message, server_reply=f"{refused.error}" + (f" ({diag})" if diag else ""))
    return _tagged(error, refused.error, codes, hints)


def _tagged(error: _E, oauth_error: str, codes: list[str], hints: list[str]) -> _E:
    """Keeps the OAuth error, AADSTS codes and hints on the exception, for the journal."""
    error.oauth_error = oauth_error  # type: ignore[attr-defined]
    error.oauth_codes = codes  # type: ignore[attr-defined]
    error.hints = hints  # type: ignore[attr-defined]
    return error


def redirect_refusal(
    record: OAuthRecord, presets: Mapping[str, ProviderPreset], error: str, description: str
) -> AuthorizationFailed:
    """Get Refresh Token's error for a provider that answered the sign-in with an error in the
    redirect (access_denied, AADSTS50194...): what to do, the provider's hints, diagnostics."""
    error = _CONTROL_RE.sub("", error)[:100]
    description = _scrub(description, (record.client_secret,))
    codes, diag = _diagnostics(description)
    hints = _hints(presets, record, error, codes, description)
    first_line = _CONTROL_RE.split(description.strip(), 1)[0][:300] if description else ""
    detail = f" ({first_line})" if first_line and not hints else ""
    advice = (
        "consent was declined; run Get Refresh Token again and allow access"
        if error == "access_denied"
        else "check the record's Client ID, endpoints, Scope and the app's redirect settings"
    )
    message = (
        f"Get Refresh Token for OAuth record {record.record_name!r} failed: the provider "
        f"answered {error}{detail}; {advice}."
    )
    for hint in hints:
        message += f" Hint: {hint}"
    if diag:
        message += f" Diagnostics: {diag}."
    failed = AuthorizationFailed(message, server_reply=error + (f" ({diag})" if diag else ""))
    return _tagged(failed, error, codes, hints)


# --- the endpoint -------------------------------------------------------------------------------


@attrs.frozen
class Deadline:
    """The time a step allows for getting a token, lock waits, requests and retries included."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def left(self) -> float:
        return self.at - time.monotonic()


def _out_of_time(name: str, deadline: Deadline, why: str) -> TokenTemporaryError:
    return TokenTemporaryError(
        f"OAuth record {name!r}: could not get an access token within {deadline.seconds:g} s "
        f"(the step's timeout): {why}. Try again later or raise the step's timeout. The stored "
        "Refresh Token was kept."
    )


@attrs.define
class TokenEndpoint:
    """Requests to token (and device) endpoints with bounded retries on transient failures."""

    presets: Callable[[], Mapping[str, ProviderPreset]] = attrs.field(
        factory=lambda: lambda: {p.key: p for p in builtin_presets()}
    )
    timeout: float = 30.0
    retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0)
    retry_after_cap: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    #: where refusals and successes are noted for ``hostsim oauth doctor`` (the token service
    #: sets it)
    journal: ErrorJournal | None = None

    def _refusal(self, refused: _Refused, record: OAuthRecord, during: str) -> RobomailError:
        """The user-facing error for a refusal, also kept in the journal."""
        error = refusal_error(refused, record, self.presets(), during=during)
        self.note(record, during, error)
        return error

    def note(self, record: OAuthRecord, where: str, error: RobomailError) -> None:
        """Keeps a failure for the doctor (codes and the message, which holds no secret)."""
        if self.journal is not None:
            self.journal.add(
                record.record_name, where, getattr(error, "oauth_error", error.code),
                codes=getattr(error, "oauth_codes", ()), message=str(error),
                advice=getattr(error, "hints", ()),
            )

    def _noted_ok(self, record: OAuthRecord, where: str) -> None:
        if self.journal is not None:
            self.journal.ok(record.record_name, where)

    def authorization_refused(
        self, record: OAuthRecord, error: str, description: str
    ) -> AuthorizationFailed:
        """The error for a sign-in the provider refused in its redirect; journaled."""
        failed = redirect_refusal(record, self.presets(), error, description)
        self.note(record, "authorize", failed)
        return failed

    def _retrying(
        self,
        record: OAuthRecord,
        what: str,
        attempt: Callable[[float], Any],
        deadline: Deadline | None = None,
    ) -> Any:
        """Tries, and retries transient failures; with a deadline, every request and wait fits
        in the time left."""
        last = "no answer"
        label = _endpoint_label(record.token_endpoint)
        for i in range(len(self.retry_delays) + 1):
            request_timeout = self.timeout
            if deadline is not None:
                request_timeout = min(self.timeout, deadline.left())
                if request_timeout <= 0:
                    raise _out_of_time(record.record_name, deadline, f"{label}: {last}")
            try:
                return attempt(request_timeout)
            except _Transient as exc:
                last = exc.reason
                if i == len(self.retry_delays):
                    break
                delay = self.retry_delays[i]
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self.retry_after_cap))
                if deadline is not None and delay >= deadline.left():
                    raise _out_of_time(record.record_name, deadline, f"{label}: {last}") from None
                log.info(
                    "OAuth record %r: %s failed (%s); retrying in %.2f s",
                    record.record_name, what, exc.reason, delay,
                )
                self.sleep(delay)
        raise TokenTemporaryError(
            f"OAuth record {record.record_name!r}: the token endpoint "
            f"{_endpoint_label(record.token_endpoint)} is failing or unreachable ({last}) after "
            f"{len(self.retry_delays) + 1} tries. This is usually temporary: try again later. "
            "The stored Refresh Token was kept."
        )

    def _post_token(
        self, session: OAuth2Session, call: Callable[[], Any]
    ) -> dict[str, Any]:
        try:
            token = call()
        except (_Transient, _Refused):
            raise
        except OAuth2Error as exc:
            if exc.error in TEMPORARY:
                raise _Transient(exc.error) from None
            if exc.error == "missing_token":
                raise _Refused("invalid_response", "the answer has no access_token") from None
            raise _Refused(exc.error, exc.description or "", exc.status_code) from None
        except requests.TooManyRedirects as exc:  # only if the response hook was bypassed
            answer = exc.response
            location = answer.headers.get("Location", "") if answer is not None else ""
            status = answer.status_code if answer is not None else None
            raise _Refused("redirected", _origin(location), status) from None
        except requests.Timeout:
            raise _Transient("timed out") from None
        except requests.ConnectionError:
            raise _Transient("connection failed") from None
        except requests.RequestException as exc:
            raise _Transient(exc.__class__.__name__) from None
        except (ValueError, TypeError, ArithmeticError, Warning) as exc:  # odd bodies, scope
            raise _Refused("invalid_response", exc.__class__.__name__) from None
        return dict(_check_token_values(token))

    def refresh(
        self, record: OAuthRecord, *, deadline: Deadline | None = None
    ) -> tuple[AccessToken, str]:
        """A new access token from the record's refresh token; the refresh token to keep.

        With a deadline, gives up (``TokenTemporaryError``) when it passes."""
        if not record.refresh_token:
            raise TokenError(
                f"OAuth record {record.record_name!r} has no Refresh Token yet. Run Get Refresh "
                f"Token (hostsim oauth get-refresh-token {shlex.quote(record.record_name)})."
            )

        def attempt(request_timeout: float) -> tuple[AccessToken, str]:
            session = OAuth2Session(
                client_id=record.client_id,
                token={"access_token": "", "token_type": "Bearer",
                       "refresh_token": record.refresh_token},
            )
            _no_redirects(session)
            session.register_compliance_hook("refresh_token_response", _check_token_answer)
            extra: dict[str, str] = {"client_id": record.client_id}
            if record.client_secret:
                extra["client_secret"] = record.client_secret
            now = time.time()
            with session, allow_loopback_http(record.token_endpoint):
                token = self._post_token(
                    session,
                    lambda: session.refresh_token(
                        record.token_endpoint,
                        refresh_token=record.refresh_token,
                        timeout=request_timeout,
                        **extra,
                    ),
                )
            access = AccessToken(
                value=token["access_token"],
                expires_at=_expires_at(token, now),
                record_name=record.record_name,
            )
            return access, token.get("refresh_token") or record.refresh_token

        try:
            result = self._retrying(record, "refresh", attempt, deadline)
        except _Refused as exc:
            raise self._refusal(exc, record, "refresh") from None
        self._noted_ok(record, "refresh")
        return result  # type: ignore[no-any-return]

    def exchange_code(
        self,
        record: OAuthRecord,
        session: OAuth2Session,
        code: str,
        *,
        code_verifier: str | None = None,
    ) -> TokenGrant:
        """Redeems an authorization code with its PKCE verifier (given, or the session's own);
        no retries, since a code is single-use."""
        _no_redirects(session)
        session.register_compliance_hook("access_token_response", _check_token_answer)
        session.scope = None  # providers answer with a normalised scope; do not compare
        extra: dict[str, Any] = {"include_client_id": True}
        if record.client_secret:
            extra["client_secret"] = record.client_secret
        if code_verifier is not None:
            extra["code_verifier"] = code_verifier
        now = time.time()
        try:
            with allow_loopback_http(record.token_endpoint):
                token = self._post_token(
                    session,
                    lambda: session.fetch_token(
                        record.token_endpoint, code=code, timeout=self.timeout, **extra
                    ),
                )
        except _Transient as exc:
            raise TokenTemporaryError(
                f"OAuth record {record.record_name!r}: the token endpoint failed while redeeming "
                f"the authorization ({exc.reason}). Try Get Refresh Token again later."
            ) from None
        except _Refused as exc:
            raise self._refusal(exc, record, "authorize") from None
        return self._grant(record, token, now)

    def _grant(self, record: OAuthRecord, token: dict[str, Any], now: float) -> TokenGrant:
        refresh = token.get("refresh_token")
        if not refresh:
            failed = AuthorizationFailed(
                f"OAuth record {record.record_name!r}: the provider gave an access token but no "
                "refresh token. Google gives one only with access_type=offline, and again for an "
                "account that consented before only with prompt=consent: robomail sends both "
                "when the record has Google's endpoints (Load Predefined Endpoints: google). "
                "Microsoft needs offline_access in the Scope (hostsim oauth edit "
                f"{shlex.quote(record.record_name)} --scope '... offline_access')."
            )
            self.note(record, "authorize", failed)
            raise failed
        self._noted_ok(record, "authorize")
        access = AccessToken(
            value=token["access_token"],
            expires_at=_expires_at(token, now),
            record_name=record.record_name,
        )
        return TokenGrant(refresh_token=refresh, access_token=access)

    # --- device authorization grant (RFC 8628) --------------------------------------------------

    def start_device(self, record: OAuthRecord) -> dict[str, Any]:
        """Asks the device endpoint for a user code; returns its JSON answer."""
        data = {"client_id": record.client_id, "scope": record.scope}

        def attempt(request_timeout: float) -> dict[str, Any]:
            try:
                with requests.Session() as http:
                    r = http.post(
                        record.device_endpoint, data=data, timeout=request_timeout,
                        headers={"Accept": "application/json"}, allow_redirects=False,
                    )
            except requests.RequestException:
                raise _Transient("connection failed") from None
            _check_response(r)
            try:
                body = r.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise _Refused("invalid_response", "the device endpoint's answer is not JSON")
            if "error" in body:
                raise _Refused(str(body["error"]), str(body.get("error_description", "")))
            if not body.get("device_code") or not body.get("user_code"):
                raise _Refused("invalid_response", "no device_code/user_code in the answer")
            return body

        try:
            return self._retrying(record, "device authorization", attempt)  # type: ignore[no-any-return]
        except _Refused as exc:
            raise self._refusal(exc, record, "authorize") from None

    def poll_device(self, record: OAuthRecord, device_code: str) -> TokenGrant | str:
        """One poll of the token endpoint: a grant, or "authorization_pending" / "slow_down"."""
        session = OAuth2Session(client=DeviceClient(record.client_id))
        _no_redirects(session)
        session.register_compliance_hook("access_token_response", _check_token_answer)
        extra: dict[str, Any] = {"include_client_id": True}
        if record.client_secret:
            extra["client_secret"] = record.client_secret
        now = time.time()
        try:
            with session, allow_loopback_http(record.token_endpoint):
                token = self._post_token(
                    session,
                    lambda: session.fetch_token(
                        record.token_endpoint, device_code=device_code, timeout=self.timeout,
                        **extra,
                    ),
                )
        except _Transient:
            return "slow_down"
        except _Refused as exc:
            if exc.error in ("authorization_pending", "slow_down"):
                return exc.error
            # RFC 8628 says access_denied; Microsoft says authorization_declined
            if exc.error in ("access_denied", "authorization_declined", "expired_token"):
                raise AuthorizationFailed(
                    f"OAuth record {record.record_name!r}: device authorization ended "
                    f"({exc.error}: the user declined, or the code expired). Run Get Refresh "
                    "Token again."
                ) from None
            raise self._refusal(exc, record, "authorize") from None
        return self._grant(record, token, now)


def _endpoint_label(url: str) -> str:
    return url.split("?", 1)[0]


# --- the service --------------------------------------------------------------------------------

_BUSY = "another refresh of this record (in this or another process) is still running"


class TokenService:
    """Access tokens for records: cached in memory, refreshed one at a time per record."""

    def __init__(
        self,
        store: Callable[[], Any],
        *,
        lock_dir: Path,
        endpoint: TokenEndpoint | None = None,
        early_refresh: float = EARLY_REFRESH_S,
        lock_timeout: float = 120.0,
    ) -> None:
        self._store = store
        self.lock_dir = Path(lock_dir)
        self.endpoint = endpoint or TokenEndpoint()
        self.early_refresh = early_refresh
        self.lock_timeout = lock_timeout
        self._cache: dict[str, AccessToken] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        #: the last errors per record, for ``hostsim oauth doctor`` (next to the lock folder)
        self.journal = ErrorJournal(self.lock_dir.parent / "diagnostics")
        if self.endpoint.journal is None:
            self.endpoint.journal = self.journal

    def __repr__(self) -> str:
        return f"TokenService(cached={sorted(self._cache)!r})"

    def note_login_failure(
        self, record_name: str, where: str, reply: str, message: str, advice: str = ""
    ) -> None:
        """A mail server refused the record's token (``where``: imap/pop3/smtp login); kept
        for the doctor."""
        self.journal.add(record_name, where, reply[:80], message=message,
                         advice=[advice] if advice else ())

    def get_access_token(
        self, record_name: str, *, force_refresh: bool = False, timeout: float | None = None
    ) -> AccessToken:
        """A valid access token for the record: from memory, or refreshed now in hidden mode.

        ``timeout`` (a step's) bounds the whole refresh: waiting for another refresh of the same
        record, the requests and the retries."""
        asked_at = time.time()
        token = self._cache.get(record_name)
        if token is not None and not force_refresh and token.fresh(self.early_refresh):
            return token
        deadline = None
        if timeout is not None and math.isfinite(timeout):
            deadline = Deadline.after(max(0.0, timeout))
        lock = self._thread_lock(record_name)
        if deadline is None:
            lock.acquire()
        elif not lock.acquire(timeout=min(max(0.0, deadline.left()), threading.TIMEOUT_MAX)):
            raise _out_of_time(record_name, deadline, _BUSY)
        try:
            token = self._cache.get(record_name)
            if (
                token is not None
                and token.fresh(self.early_refresh)
                and (not force_refresh or token.obtained_at >= asked_at)
            ):
                return token  # another thread refreshed while we waited
            shared_lock = getattr(self._store(), "refresh_lock", None)
            if shared_lock is not None:  # a store shared by several hosts locks across them
                return self._refresh_shared(shared_lock, record_name, deadline)
            with self._process_lock(record_name, deadline):
                record = self._store().get(record_name)
                access, refresh_token = self.endpoint.refresh(record, deadline=deadline)
                if refresh_token != record.refresh_token:
                    self._save_rotated(record, refresh_token)
                self._cache[record_name] = access
                return access
        finally:
            lock.release()

    def remember(self, token: AccessToken) -> None:
        """Caches a token obtained elsewhere (Get Refresh Token's first access token)."""
        self._cache[token.record_name] = token

    def invalidate(self, record_name: str | None = None) -> None:
        """Drops the cached token of one record (or all): the next request refreshes."""
        if record_name is None:
            self._cache.clear()
        else:
            self._cache.pop(record_name, None)

    def forget_refused(self, record_name: str, value: str) -> None:
        """A server refused ``value``: drop it if it is still the cached token of the record."""
        token = self._cache.get(record_name)
        if token is not None and token.value == value:
            self._cache.pop(record_name, None)

    def _save_rotated(self, record: OAuthRecord, refresh_token: str) -> None:
        store = self._store()
        try:
            setter = getattr(store, "set_refresh_token", None)
            if setter is not None:
                setter(record.record_name, refresh_token)
            else:
                current = store.get(record.record_name)
                store.update(attrs.evolve(current, refresh_token=refresh_token))
        except StoreError as exc:
            raise StoreError(
                f"OAuth record {record.record_name!r}: the provider issued a new Refresh Token but "
                f"it could not be saved ({exc}). Run Get Refresh Token again if the next refresh "
                "fails."
            ) from None
        log.info("OAuth record %r: saved the new Refresh Token the provider issued",
                 record.record_name)

    def _refresh_shared(
        self, refresh_lock: Callable[..., Any], name: str, deadline: Deadline | None
    ) -> AccessToken:
        """Refreshes under the store's lock across hosts (``refresh_lock``): the record is read
        under it and a rotated token is saved in its transaction, so no host undoes another's
        rotation and a host killed meanwhile loses only what it had not committed."""
        wait = self.lock_timeout
        if deadline is not None:
            wait = min(wait, max(0.0, deadline.left()))
        rotated = False
        with refresh_lock(name, timeout=wait) as held:
            access, refresh_token = self.endpoint.refresh(held.record, deadline=deadline)
            if refresh_token != held.record.refresh_token:
                held.save_refresh_token(refresh_token)
                rotated = True
        if rotated:
            log.info("OAuth record %r: saved the new Refresh Token the provider issued", name)
        self._cache[name] = access
        return access

    def _thread_lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    @contextlib.contextmanager
    def _process_lock(self, name: str, step: Deadline | None = None) -> Iterator[None]:
        """An flock on a per-record file, so processes refresh one at a time too."""
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]

        def busy(expired: bool) -> None:
            if step is not None and step.left() <= 0:
                raise _out_of_time(name, step, _BUSY) from None
            if expired:
                raise TokenTemporaryError(
                    f"OAuth record {name!r}: another process has been refreshing its "
                    f"token for over {self.lock_timeout:.0f} s; try again later."
                ) from None

        with flocked(self.lock_dir / f"token-{digest}.lock", self.lock_timeout, busy=busy):
            yield


def token_summary(token: AccessToken) -> dict[str, Any]:
    """What may be shown about a token: never the value."""
    return {
        "record_name": token.record_name,
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(token.expires_at)),
        "expires_in_s": max(0, int(token.expires_at - time.time())),
    }


__all__ = [
    "AccessToken",
    "TokenEndpoint",
    "TokenGrant",
    "TokenService",
    "allow_loopback_http",
    "token_summary",
]
