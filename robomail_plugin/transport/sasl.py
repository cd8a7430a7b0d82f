"""SASL XOAUTH2 and OAUTHBEARER: the client's first message and the server's error challenge.

Kept apart from the protocols so IMAP, POP3 and SMTP build the very same bytes, and so the one
place that knows the wire format can be tested without a server.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from typing import Any

import attrs

from robomail_plugin.shared_params import Sasl

MECHANISMS = tuple(Sasl)


def xoauth2_response(user: str, access_token: str) -> bytes:
    """``user=<u>^Aauth=Bearer <token>^A^A`` (Google/Microsoft XOAUTH2), not yet base64."""
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01".encode()


def _gs2_escape(user: str) -> str:
    # RFC 5801: ',' and '=' in the authzid are written =2C and =3D.
    return user.replace("=", "=3D").replace(",", "=2C")


def oauthbearer_response(user: str, access_token: str, host: str = "", port: int = 0) -> bytes:
    """RFC 7628 client response; ``a=<user>`` is always sent because Dovecot 2.3 requires it."""
    parts = [f"n,a={_gs2_escape(user)},"]
    if host:
        parts.append(f"host={host}")
    if port:
        parts.append(f"port={port}")
    parts.append(f"auth=Bearer {access_token}")
    return ("\x01".join(parts) + "\x01\x01").encode()


def initial_response(
    mechanism: str, user: str, access_token: str, host: str = "", port: int = 0
) -> bytes:
    """The raw (not base64) initial response for ``mechanism`` (xoauth2 | oauthbearer)."""
    mech = mechanism.lower()
    if mech == "xoauth2":
        return xoauth2_response(user, access_token)
    if mech == "oauthbearer":
        return oauthbearer_response(user, access_token, host, port)
    raise ValueError(f"unknown SASL mechanism {mechanism!r}; use one of {', '.join(MECHANISMS)}")


def b64(data: bytes) -> str:
    """Base64 as the protocols send it (one line, ASCII)."""
    return base64.b64encode(data).decode("ascii")


@attrs.frozen
class ErrorChallenge:
    """What the server said in its error challenge (``{"status": ..., ...}``)."""

    status: str
    fields: dict[str, Any] = attrs.field(factory=dict)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.fields.items() if k != "status")
        return f"status {self.status}" + (f" ({extra})" if extra else "")


def decode_error_challenge(challenge: bytes | str) -> ErrorChallenge | None:
    """Decodes a server error challenge.

    Accepts either the base64 text as sent on the wire or already-decoded JSON bytes (imaplib
    decodes challenges before handing them over). Returns None when it is not a JSON object.
    """
    raw = challenge.encode("ascii", "replace") if isinstance(challenge, str) else bytes(challenge)
    raw = raw.strip()
    if not raw:
        return None
    candidates = [raw]
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.insert(0, base64.b64decode(raw, validate=True))
    for candidate in candidates:
        try:
            obj = json.loads(candidate.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(obj, dict):
            return ErrorChallenge(status=str(obj.get("status", "unknown")), fields=obj)
    return None


class OAuthMechanism:
    """A SASL callback for client libraries that call back per server challenge.

    The first call returns the initial response; any later call is the server's error challenge,
    which is decoded and kept in ``error`` and answered with an empty response, as XOAUTH2 and
    OAUTHBEARER require (a client that waits for the status line instead hangs).
    """

    def __init__(self, initial: bytes) -> None:
        self._initial = initial
        self._sent = False
        self.error: ErrorChallenge | None = None

    def __repr__(self) -> str:  # the initial response holds a token
        return f"OAuthMechanism(sent={self._sent}, error={self.error!r})"

    def __call__(self, challenge: bytes | str | None = None) -> bytes:
        if not self._sent:
            self._sent = True
            return self._initial
        if challenge:
            self.error = decode_error_challenge(challenge) or ErrorChallenge(
                status="unreadable", fields={}
            )
        return b""
