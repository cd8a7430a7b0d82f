"""The OAuth record: one named set of OAuth parameters, validated when it is built.

Every ``OAuthRecord`` that exists is valid, so the store, the token service and the export code
never have to re-check fields. Secret fields are left out of ``repr``.
"""

from __future__ import annotations

from typing import Any

import attrs

from robomail_plugin.errors import RecordInvalid
from robomail_plugin.schema import url_problem

MAX_NAME_LENGTH = 200

#: Field names and the labels users know them by (used in messages).
FIELD_LABELS: dict[str, str] = {
    "record_name": "Record Name",
    "client_account": "Client Account",
    "client_id": "Client ID",
    "client_secret": "Client Secret",
    "refresh_token": "Refresh Token",
    "authorization_endpoint": "Authorization Endpoint",
    "token_endpoint": "Access Token Endpoint",
    "scope": "Scope",
    "device_endpoint": "Device Authorization Endpoint",
}
SECRET_FIELDS = ("client_secret", "refresh_token")
#: The fields that are not secret, in declaration order (stored in clear, exported as they are).
PUBLIC_FIELDS = tuple(name for name in FIELD_LABELS if name not in SECRET_FIELDS)


def _no_control_chars(label: str, value: str) -> None:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise RecordInvalid(f"{label} must not contain control characters (line breaks, tabs).")


def check_endpoint(label: str, url: str, *, required: bool = True) -> None:
    """An endpoint must be https, or http on a loopback address (for local development)."""
    if not url:
        if required:
            raise RecordInvalid(
                f"{label} is required: give --provider google|microsoft (or Load Predefined "
                "Endpoints in a settings screen) to fill it, or the URL itself."
            )
        return
    _no_control_chars(label, url)
    problem = url_problem(url)
    if problem:
        raise RecordInvalid(f"{label} {problem}")


def check_record_name(name: str) -> None:
    """A Record Name is what tasks refer to: non-blank, one line, no leading/trailing spaces."""
    if not isinstance(name, str) or not name.strip():
        raise RecordInvalid("Record Name is required and must not be blank.")
    if name != name.strip():
        raise RecordInvalid(f"Record Name {name!r} must not start or end with spaces.")
    if len(name) > MAX_NAME_LENGTH:
        raise RecordInvalid(f"Record Name is longer than {MAX_NAME_LENGTH} characters.")
    _no_control_chars("Record Name", name)


def _str_field(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordInvalid(f"expected text, got {type(value).__name__}")
    return value


@attrs.frozen(kw_only=True)
class OAuthRecord:
    """A named OAuth parameter set (the editor's record); immutable, valid by construction."""

    record_name: str
    client_account: str = attrs.field(default="", converter=_str_field)
    client_id: str = attrs.field(default="", converter=_str_field)
    client_secret: str = attrs.field(default="", repr=False, converter=_str_field)
    refresh_token: str = attrs.field(default="", repr=False, converter=_str_field)
    authorization_endpoint: str = attrs.field(default="", converter=_str_field)
    token_endpoint: str = attrs.field(default="", converter=_str_field)
    scope: str = attrs.field(default="", converter=_str_field)
    device_endpoint: str = attrs.field(default="", converter=_str_field)

    def __attrs_post_init__(self) -> None:
        check_record_name(self.record_name)
        where = f"record {self.record_name!r}: "
        try:
            if not self.client_account.strip():
                raise RecordInvalid(
                    "Client Account is required (the mailbox's user name, usually its address)."
                )
            if not self.client_id.strip():
                raise RecordInvalid("Client ID is required (from the provider's app registration).")
            for name in ("client_account", "client_id", "scope"):
                _no_control_chars(FIELD_LABELS[name], getattr(self, name))
            for name in SECRET_FIELDS:
                if any(ch in getattr(self, name) for ch in "\r\n\0"):
                    raise RecordInvalid(f"{FIELD_LABELS[name]} must be a single line.")
            check_endpoint(FIELD_LABELS["authorization_endpoint"], self.authorization_endpoint)
            check_endpoint(FIELD_LABELS["token_endpoint"], self.token_endpoint)
            check_endpoint(FIELD_LABELS["device_endpoint"], self.device_endpoint, required=False)
            if not self.scope.strip():
                raise RecordInvalid(
                    "Scope is required: space-separated, as the provider documents "
                    "(--provider, or Load Predefined Endpoints, fills it)."
                )
        except RecordInvalid as exc:
            raise RecordInvalid(where + str(exc)) from None

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()

    def public_dict(self, mask: str = "***") -> dict[str, str]:
        """The record as a dict for display: secrets replaced by ``mask`` (or "" when empty)."""
        out = attrs.asdict(self)
        for name in SECRET_FIELDS:
            out[name] = mask if out[name] else ""
        return out


def record_from_mapping(data: Any) -> OAuthRecord:
    """Builds a record from a dict (an import file, a host form); unknown keys are an error."""
    if not isinstance(data, dict):
        raise RecordInvalid("a record must be an object with the record's fields")
    unknown = sorted(set(data) - set(FIELD_LABELS))
    if unknown:
        raise RecordInvalid(f"unknown field(s): {', '.join(map(str, unknown))}")
    if "record_name" not in data:
        raise RecordInvalid("Record Name (record_name) is missing")
    try:
        return OAuthRecord(**data)
    except TypeError as exc:  # wrong types for attrs
        raise RecordInvalid(f"malformed record: {exc}") from None
