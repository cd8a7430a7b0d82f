"""Built-in provider presets (Google, Microsoft) for Load Predefined Endpoints and error hints.

URLs and scopes are the providers' documented ones (see docs/oauth.md); a preset with a wrong URL
is worse than none, so only these two are built in. Other plugins add theirs through
``robomail_oauth_providers``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from robomail_plugin.errors import InvalidParameter
from robomail_plugin.schema import ProviderPreset

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
            "must not send a client secret. Clear the record's Client Secret."
        ),
        "AADSTS7000218": (
            "Microsoft: the request needs a client secret, or the app registration must allow "
            "public client flows (Authentication > Advanced settings > 'Allow public client "
            "flows': Yes), which the device-code flow also needs."
        ),
        "AADSTS50194": (
            "Microsoft: the app is registered as single-tenant but the endpoints use /common; "
            "load the endpoints with your tenant (load-predefined ... --tenant <tenant-id>) or "
            "make the app multi-tenant."
        ),
        "AADSTS65001": "Microsoft: the user or admin has not consented to the scopes.",
        "AADSTS50076": "Microsoft: multi-factor sign-in is required; run Get Refresh Token again.",
    },
    token_hosts=("login.microsoftonline.com", "login.live.com"),
    sends_new_refresh_token=True,
)

BUILTIN_PRESETS: tuple[ProviderPreset, ...] = (GOOGLE, MICROSOFT)
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
