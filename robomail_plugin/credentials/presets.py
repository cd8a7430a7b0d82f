"""Built-in provider presets (Google, Microsoft) for Load Predefined Endpoints and error hints.

URLs and scopes are the providers' documented ones (see docs/oauth.md); a preset with a wrong URL
is worse than none, so only these two are built in (Yahoo, AOL, Fastmail and Zoho wait until
their current documentation has been checked). Other plugins add theirs through
``robomail_oauth_providers``.

Also here: which provider an error comes from when the token host does not say it (its shape),
and the mail rules of each built-in provider (scopes per protocol, SASL, redirects) that
``hostsim oauth doctor`` and the mail login errors use.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

import attrs

from robomail_plugin.errors import InvalidParameter
from robomail_plugin.schema import ProviderPreset

_GOOGLE_CONSOLE = "Google Cloud console > APIs & Services"
_ENTRA = "Microsoft Entra admin center (or Azure portal) > App registrations > your app"
GOOGLE_EXPIRED = "Token has been expired or revoked."

GOOGLE = ProviderPreset(  # noqa: S106 - endpoints, not passwords
    key="google",
    title="Google (Gmail)",
    authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
    token_endpoint="https://oauth2.googleapis.com/token",  # noqa: S106
    scope="https://mail.google.com/",
    device_authorization_endpoint=None,  # Google's device flow refuses Gmail scopes
    extra_authorize_params={"access_type": "offline", "prompt": "consent"},
    hints={
        "invalid_grant": (
            "Google: if the app's OAuth consent screen is in 'Testing' status, its refresh tokens "
            "expire after 7 days; set the publishing status to 'In production' (Google Cloud "
            "console > APIs & Services > OAuth consent screen), then run Get Refresh Token again. "
            "A password change or revoked access (myaccount.google.com/permissions) also ends "
            "the token."
        ),
        "invalid_client": (
            "Google: check Client ID and Client Secret of the 'Desktop app' OAuth client in the "
            "Google Cloud console (APIs & Services > Credentials)."
        ),
        "invalid_request": (
            "Google: a 'Desktop app' OAuth client has a Client Secret and Google's token "
            "endpoint wants it even with PKCE ('client_secret is missing.'): copy it from "
            f"{_GOOGLE_CONSOLE} > Credentials > your OAuth client into the record "
            "(hostsim oauth edit NAME --client-secret)."
        ),
        "invalid_scope": (
            "Google: the device-code flow does not allow Gmail's scope. Clear the record's "
            "Device Authorization Endpoint (hostsim oauth edit NAME --device-endpoint '') and "
            "sign in with the browser, or with --no-browser on a machine without one."
        ),
    },
    token_hosts=("oauth2.googleapis.com", "accounts.google.com", "www.googleapis.com"),
    sends_new_refresh_token=False,
)

_MS = "https://login.microsoftonline.com/common/oauth2/v2.0"
MICROSOFT = ProviderPreset(  # noqa: S106 - endpoints, not passwords
    key="microsoft",
    title="Microsoft (Outlook.com, Microsoft 365)",
    authorization_endpoint=f"{_MS}/authorize",
    token_endpoint=f"{_MS}/token",
    scope=(
        "https://outlook.office.com/IMAP.AccessAsUser.All "
        "https://outlook.office.com/POP.AccessAsUser.All "
        "https://outlook.office.com/SMTP.Send offline_access"
    ),
    device_authorization_endpoint=f"{_MS}/devicecode",
    extra_authorize_params={},
    hints={
        "invalid_grant": (
            "Microsoft: refresh tokens end after 90 days unused (24 hours for a redirect "
            "registered as 'SPA'), at a password change, or by an admin policy."
        ),
        "AADSTS700025": (
            "Microsoft: this is a public client ('Mobile and desktop applications' redirect): it "
            "must not send a client secret. Clear the record's Client Secret (hostsim oauth "
            "edit NAME --client-secret '')."
        ),
        "AADSTS7000218": (
            "Microsoft: the request needs a client secret, or the app registration must allow "
            f"public client flows ({_ENTRA} > Authentication > Advanced settings > 'Allow "
            "public client flows': Yes), which the device-code flow also needs."
        ),
        "AADSTS7000215": (
            "Microsoft: the Client Secret is wrong. Copy the secret's Value, not its Secret ID, "
            f"from {_ENTRA} > Certificates & secrets (an expired secret needs a new one), then "
            "hostsim oauth edit NAME --client-secret."
        ),
        "AADSTS50194": (
            "Microsoft: the app is registered as single-tenant but the endpoints use /common; "
            "load the endpoints with your tenant (load-predefined ... --tenant <tenant-id>; the "
            f"Directory (tenant) ID is on {_ENTRA} > Overview) or make the app multi-tenant "
            "(Authentication > Supported account types)."
        ),
        "AADSTS65001": (
            "Microsoft: the user or admin has not consented to the scopes. Run Get Refresh "
            "Token again and accept; where users may not consent, an admin grants it in "
            f"{_ENTRA} > API permissions > 'Grant admin consent'."
        ),
        "AADSTS50076": "Microsoft: multi-factor sign-in is required; run Get Refresh Token again.",
        "AADSTS53003": (
            "Microsoft: a Conditional Access policy blocks this sign-in; signing in again does "
            "not help until an admin allows it (the Entra sign-in logs show the policy under the "
            "correlation id below)."
        ),
        "AADSTS700082": (
            "Microsoft: the Refresh Token was not used for 90 days and expired; run Get Refresh "
            "Token again (a task that runs at least every 90 days keeps it alive)."
        ),
        "AADSTS700016": (
            "Microsoft: no app with this Client ID in this tenant; check the Application "
            f"(client) ID on {_ENTRA} > Overview, and the tenant in the endpoints."
        ),
    },
    token_hosts=("login.microsoftonline.com", "login.live.com"),
    sends_new_refresh_token=True,
)

BUILTIN_PRESETS: tuple[ProviderPreset, ...] = (GOOGLE, MICROSOFT)


class OAuthRecordLike(Protocol):
    """What the mail rules read of a record (presets does not import the records module)."""

    @property
    def record_name(self) -> str: ...

    @property
    def token_endpoint(self) -> str: ...

    @property
    def scope(self) -> str: ...


_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$")


def builtin_presets() -> list[ProviderPreset]:
    return list(BUILTIN_PRESETS)


def with_tenant(preset: ProviderPreset, tenant: str | None) -> ProviderPreset:
    """Microsoft's endpoints for a tenant (common, organizations, consumers, or a tenant id)."""
    if not tenant or tenant == "common":
        return preset
    if "/common/" not in preset.authorization_endpoint:
        raise InvalidParameter(f"Provider {preset.key!r} has no tenant in its endpoints.")
    if not _TENANT_RE.match(tenant):
        raise InvalidParameter(
            f"Tenant {tenant!r} is not valid: use common, organizations, consumers, a tenant id "
            "(GUID) or a domain such as contoso.onmicrosoft.com."
        )

    def swap(url: str) -> str:
        return url.replace("/common/", f"/{tenant}/")

    device = preset.device_authorization_endpoint
    return attrs.evolve(
        preset,
        authorization_endpoint=swap(preset.authorization_endpoint),
        token_endpoint=swap(preset.token_endpoint),
        device_authorization_endpoint=swap(device) if device else device,
    )


def preset_for_endpoint(
    presets: Mapping[str, ProviderPreset], token_endpoint: str
) -> ProviderPreset | None:
    """The preset whose token host matches a record's token endpoint (for hints and extras)."""
    host = (urlsplit(token_endpoint).hostname or "").lower()
    for preset in presets.values():
        hosts = preset.token_hosts or ((urlsplit(preset.token_endpoint).hostname or "").lower(),)
        if host and host in hosts:
            return preset
    return None


# --- which provider an error comes from ---------------------------------------------------------

_AADSTS = re.compile(r"\bAADSTS\d+\b")


def preset_for_error(
    presets: Mapping[str, ProviderPreset], error: str, description: str
) -> ProviderPreset | None:
    """The built-in preset whose error shape this is, for a record whose token host does not
    say (a proxy, a test persona): AADSTS codes are Microsoft's, "Token has been expired or
    revoked." is Google's."""
    if _AADSTS.search(description or ""):
        return presets.get(MICROSOFT.key)
    if (description or "").strip() == GOOGLE_EXPIRED:
        return presets.get(GOOGLE.key)
    return None


def preset_for_record(
    presets: Mapping[str, ProviderPreset], token_endpoint: str, error: str = "",
    description: str = "",
) -> ProviderPreset | None:
    """By token host first, else by the error's shape."""
    return preset_for_endpoint(presets, token_endpoint) or preset_for_error(
        presets, error, description
    )


def refusal_hints(
    presets: Mapping[str, ProviderPreset], token_endpoint: str, error: str, description: str,
    codes: list[str] | tuple[str, ...],
) -> list[str]:
    """The hints for a refused token or authorization request: the provider's for its error
    code, then any preset's for each AADSTS code (they are unique to Microsoft)."""
    found: list[str] = []
    preset = preset_for_record(presets, token_endpoint, error, description)
    if preset is not None and error in preset.hints:
        found.append(preset.hints[error])
    for code in codes:
        for p in presets.values():
            if code in p.hints and p.hints[code] not in found:
                found.append(p.hints[code])
    return found


# --- mail rules of the built-in providers -------------------------------------------------------

OUTLOOK_SCOPE = "https://outlook.office.com/"
#: The scope each protocol's login needs, per built-in provider.
MAIL_SCOPES: dict[str, dict[str, str]] = {
    "google": {p: "https://mail.google.com/" for p in ("imap", "pop3", "smtp")},
    "microsoft": {
        "imap": f"{OUTLOOK_SCOPE}IMAP.AccessAsUser.All",
        "pop3": f"{OUTLOOK_SCOPE}POP.AccessAsUser.All",
        "smtp": f"{OUTLOOK_SCOPE}SMTP.Send",
    },
}
#: The SASL mechanisms a provider's mail servers take (absent: both).
MAIL_SASL: dict[str, tuple[str, ...]] = {"microsoft": ("xoauth2",)}
_OIDC = frozenset({"openid", "profile", "email", "offline_access"})


def graph_scopes(scopes: list[str]) -> list[str]:
    """Microsoft scopes of another resource than outlook.office.com (Graph's Mail.Read...), whose
    tokens Outlook's IMAP, POP3 and SMTP refuse."""
    return [s for s in scopes if s not in _OIDC and not s.startswith(OUTLOOK_SCOPE)]


def scope_advice(preset_key: str, record_name: str, scopes: list[str], protocol: str) -> str:
    """What is wrong with a record's Scope for a protocol's login, or "" when nothing is."""
    need = MAIL_SCOPES.get(preset_key, {}).get(protocol)
    if not need or need in scopes:
        return ""
    load = (
        f"hostsim oauth load-predefined {shlex.quote(record_name)} {preset_key}, then "
        "Get Refresh Token again"
    )
    if preset_key == "google":
        return (
            f"Google's {protocol.upper()} needs the scope {need} in the record's Scope (Gmail API "
            "scopes such as gmail.readonly do not work for IMAP, POP3 or SMTP): " + load + "."
        )
    other = graph_scopes(scopes)
    why = (
        f" The Scope asks for {' '.join(other)}: tokens for Microsoft Graph, which Outlook's "
        "mail servers refuse (the portal lists IMAP, POP and SMTP permissions under Microsoft "
        "Graph, but the token must be requested for outlook.office.com)."
        if other else ""
    )
    return (
        f"Microsoft's {protocol.upper()} needs the scope {need} in the record's Scope.{why} "
        + "Run " + load + "."
    )


def login_advice(
    presets: Mapping[str, ProviderPreset], record: OAuthRecordLike, protocol: str,
    wanted_scope: str = "",
) -> str:
    """Why a mail server may refuse the record's tokens, from its provider's rules: a Scope
    without the protocol's mail scope (Graph scopes for Outlook, Gmail API scopes for Gmail),
    or a scope the server's error challenge names that the Scope lacks; "" when none applies."""
    scopes = record.scope.split()
    preset = preset_for_endpoint(presets, record.token_endpoint)
    if preset is not None and preset.key in MAIL_SCOPES:
        return scope_advice(preset.key, record.record_name, scopes, protocol)
    if "://" in wanted_scope and wanted_scope not in scopes:
        return (
            f"The server asks for a token with the scope {wanted_scope}, which the record's "
            f"Scope ({record.scope}) lacks: add it (hostsim oauth edit "
            f"{shlex.quote(record.record_name)} --scope ...), then Get Refresh Token again."
        )
    return ""
