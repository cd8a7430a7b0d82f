"""``hostsim oauth doctor``: a record checked against its provider's rules and its last errors.

Users get stuck on what providers do rather than on OAuth itself: a Graph scope that Outlook's
IMAP refuses, a missing ``offline_access``, a secret on a public client, a single-tenant app on
``/common``. The doctor reads the record and the errors robomail saw for it (the journal below)
and says what to change, and where, without contacting anyone, so it can run before a sign-in.

The journal keeps, per record, the last few refusals and login failures (error codes and
robomail's own messages, which never hold a secret) in ``ROBOMAIL_HOME/diagnostics``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shlex
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from robomail_plugin.credentials.presets import (
    MAIL_SASL,
    MAIL_SCOPES,
    graph_scopes,
    preset_for_endpoint,
    preset_for_record,
    scope_advice,
)
from robomail_plugin.credentials.records import OAuthRecord
from robomail_plugin.private_files import write_private
from robomail_plugin.schema import ProviderPreset

PROTOCOLS = ("imap", "pop3", "smtp")
KEEP = 10
_TENANT_RE = re.compile(r"^/([^/]+)/oauth2/v2\.0/")

# --- the journal --------------------------------------------------------------------------------


class ErrorJournal:
    """The last errors seen per record, so the doctor can explain them afterwards.

    Best effort: a journal that cannot be written never breaks a refresh or a login."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def _path(self, record_name: str) -> Path:
        digest = hashlib.sha256(record_name.encode("utf-8")).hexdigest()[:24]
        return self.folder / f"record-{digest}.json"

    def read(self, record_name: str) -> dict[str, Any]:
        """``{"errors": [...newest last], "ok": {where: time}}``; empty when nothing was seen."""
        try:
            data = json.loads(self._path(record_name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"errors": [], "ok": {}}
        if not isinstance(data, dict) or data.get("record") != record_name:
            return {"errors": [], "ok": {}}
        errors = [e for e in data.get("errors", []) if isinstance(e, dict)]
        ok = data.get("ok") if isinstance(data.get("ok"), dict) else {}
        return {"errors": errors, "ok": ok}

    def add(
        self, record_name: str, where: str, error: str, *, codes: Sequence[str] = (),
        message: str = "", advice: Sequence[str] = (),
    ) -> None:
        """Keeps one failure: where (refresh, authorize, imap login...), its code(s), the message
        robomail showed and the advice that goes with it."""
        entry = {
            "at": time.time(), "where": where, "error": error, "codes": list(codes),
            "message": message[:1500], "advice": [a[:600] for a in advice],
        }
        self._change(record_name, lambda data: data["errors"].append(entry))

    def ok(self, record_name: str, where: str) -> None:
        """Notes a success, so the doctor can tell an old error from an open one; only written
        when the record has a journal (no file per refresh otherwise)."""
        if self._path(record_name).exists():
            self._change(record_name, lambda data: data["ok"].__setitem__(where, time.time()))

    def _change(self, record_name: str, change: Any) -> None:
        with self._lock, contextlib.suppress(OSError):
            data = {"record": record_name, **self.read(record_name)}
            change(data)
            data["errors"] = data["errors"][-KEEP:]
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private(self._path(record_name), json.dumps(data), fsync=False)


# --- the checks ---------------------------------------------------------------------------------


@attrs.frozen
class Finding:
    """One line of the report: a problem to fix, a check that passed, or a note."""

    level: str  # problem | ok | note
    topic: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "topic": self.topic, "text": self.text}


def microsoft_tenant(url: str) -> str:
    """The tenant segment of a Microsoft endpoint (common, organizations, consumers, an id)."""
    m = _TENANT_RE.match(urlsplit(url).path or "")
    return m.group(1) if m else ""


def _protocols(given: Iterable[str] | None) -> tuple[list[str], bool]:
    """The protocols to check, and whether the user named them."""
    named = [p.strip().lower() for item in (given or ()) for p in str(item).split(",")]
    named = [p for p in named if p]
    unknown = [p for p in named if p not in PROTOCOLS]
    if unknown:
        from robomail_plugin.errors import InvalidParameter

        raise InvalidParameter(
            f"Unknown protocol {unknown[0]!r}: use {', '.join(PROTOCOLS)} (the ones your tasks "
            "use)."
        )
    return (list(dict.fromkeys(named)), True) if named else (list(PROTOCOLS), False)


def _scope_findings(
    key: str, record: OAuthRecord, protocols: list[str], named: bool
) -> list[Finding]:
    """Per protocol: the scope its login needs. Missing ones are problems for the protocols the
    user named (or when none is covered), notes otherwise."""
    found: list[Finding] = []
    scopes = record.scopes
    missing = {p: scope_advice(key, record.record_name, scopes, p) for p in protocols}
    covered = [p for p in protocols if not missing[p]]
    for p in protocols:
        need = MAIL_SCOPES[key][p]
        if not missing[p]:
            found.append(Finding("ok", "scope", f"{p.upper()}: Scope has {need}."))
        elif named or not covered:
            found.append(Finding("problem", "scope", missing[p]))
        else:
            found.append(Finding("note", "scope", f"{p.upper()} would need {need} (only if "
                                 f"your tasks use {p.upper()})."))
    other = graph_scopes(scopes) if key == "microsoft" else []
    if other and covered:
        found.append(Finding(
            "problem", "scope", f"Scope also asks for {' '.join(other)} (Microsoft Graph): a "
            "Microsoft token is for one resource, so keep only the outlook.office.com scopes "
            f"and offline_access (hostsim oauth load-predefined {shlex.quote(record.record_name)} "
            "microsoft)."))
    return found


def _google(record: OAuthRecord) -> list[Finding]:
    name = shlex.quote(record.record_name)
    found = [
        Finding("note", "offline", "Get Refresh Token asks Google for access_type=offline and "
                "prompt=consent, without which Google gives no Refresh Token (none at all for an "
                "account that consented before)."),
        Finding("note", "redirect", "Sign-in returns to http://127.0.0.1:<port>/: the OAuth "
                "client must be of type 'Desktop app' (Google Cloud console > APIs & Services > "
                "Credentials), which allows any loopback port."),
        Finding("note", "testing", "If the app's OAuth consent screen is in 'Testing', Google "
                "ends its Refresh Tokens after 7 days: set it to 'In production' (APIs & "
                "Services > OAuth consent screen)."),
    ]
    if not record.client_secret:
        found.append(Finding(
            "problem", "client_secret", "Client Secret is empty, but Google's 'Desktop app' "
            "clients have one and the token endpoint wants it ('client_secret is missing.'): "
            "copy it from APIs & Services > Credentials (hostsim oauth edit "
            f"{name} --client-secret)."))
    else:
        found.append(Finding("ok", "client_secret", "Client Secret is set (Google wants it)."))
    if record.device_endpoint:
        found.append(Finding(
            "problem", "device", "Device Authorization Endpoint is set, but Google refuses the "
            "device flow for Gmail's scope: clear it (hostsim oauth edit "
            f"{name} --device-endpoint '') and sign in with the browser or --no-browser."))
    return found


def _microsoft(record: OAuthRecord, protocols: list[str]) -> list[Finding]:
    name = shlex.quote(record.record_name)
    found: list[Finding] = []
    if "offline_access" in record.scopes:
        found.append(Finding("ok", "offline", "Scope has offline_access (needed for a Refresh "
                             "Token)."))
    else:
        found.append(Finding(
            "problem", "offline", "Scope lacks offline_access: Microsoft then gives no Refresh "
            f"Token. Add it (hostsim oauth edit {name} --scope '{record.scope} offline_access')."))
    tenant = microsoft_tenant(record.token_endpoint)
    auth_tenant = microsoft_tenant(record.authorization_endpoint)
    if tenant and auth_tenant and tenant != auth_tenant:
        found.append(Finding(
            "problem", "tenant", f"The endpoints name different tenants ({auth_tenant} and "
            f"{tenant}): load them again (hostsim oauth load-predefined {name} microsoft "
            "--tenant T)."))
    elif tenant == "common":
        found.append(Finding(
            "note", "tenant", "Endpoints use /common (work and personal accounts). A "
            "single-tenant app ('Accounts in this organizational directory only') needs its "
            f"tenant: hostsim oauth load-predefined {name} microsoft --tenant <Directory "
            "(tenant) ID> (else AADSTS50194)."))
    elif tenant:
        found.append(Finding("ok", "tenant", f"Endpoints use the tenant {tenant}."))
    if record.client_secret and tenant == "consumers":
        found.append(Finding(
            "problem", "client_secret", "Personal Microsoft accounts (/consumers) need a public "
            "client, which must not send a secret (AADSTS700025): clear the Client Secret "
            f"(hostsim oauth edit {name} --client-secret '')."))
    elif record.client_secret:
        found.append(Finding(
            "note", "client_secret", "Client Secret is set: right for a 'Web' redirect; an app "
            "whose redirect is under 'Mobile and desktop applications' is a public client and "
            "must have none (AADSTS700025)."))
    else:
        found.append(Finding(
            "note", "client_secret", "No Client Secret (public client): register the redirect "
            "under 'Mobile and desktop applications'; --device also needs 'Allow public client "
            "flows': Yes (Authentication > Advanced settings)."))
    found.append(Finding(
        "note", "redirect", "Sign-in returns to http://localhost:<port>/: register "
        "http://localhost under Authentication > 'Mobile and desktop applications' (any port "
        "matches; a mismatch is AADSTS50011 in the browser)."))
    sasl = MAIL_SASL.get("microsoft", ())
    found.append(Finding("note", "sasl", "Outlook's servers take "
                         f"{'/'.join(s.upper() for s in sasl)} only: keep sasl: xoauth2 in "
                         "tasks (OAUTHBEARER is not offered)."))
    if "smtp" in protocols:
        found.append(Finding(
            "note", "smtp", "SMTP needs SMTP AUTH enabled for the mailbox (Microsoft 365 admin "
            "center > Users > Active users > the user > Mail > Manage email apps > "
            "'Authenticated SMTP'); else 535 5.7.139."))
    return found


def _journal_findings(
    journal: Mapping[str, Any], now: float
) -> list[Finding]:
    found: list[Finding] = []
    oks = journal.get("ok") or {}
    latest_ok = max((float(v) for v in oks.values() if isinstance(v, int | float)), default=0.0)
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    for entry in reversed(journal.get("errors") or []):
        key = (str(entry.get("where")), str(entry.get("error")), tuple(entry.get("codes") or ()))
        if key in seen:
            continue
        seen.add(key)
        at = float(entry.get("at") or 0)
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
        codes = " ".join(entry.get("codes") or ())
        what = f"{entry.get('where')} on {when}: {entry.get('error')}" + (
            f" ({codes})" if codes else "")
        advice = " ".join(entry.get("advice") or ()) or str(entry.get("message") or "")[:400]
        if at < latest_ok:
            found.append(Finding("note", "last_error", f"{what}; something worked since: "
                                 f"{advice}"))
        else:
            found.append(Finding("problem", "last_error", f"{what}. {advice}"))
    return found


def check_record(
    record: OAuthRecord,
    presets: Mapping[str, ProviderPreset],
    *,
    protocols: Iterable[str] | None = None,
    journal: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> tuple[ProviderPreset | None, list[Finding]]:
    """The provider the record is for (or None) and what the doctor finds."""
    chosen, named = _protocols(protocols)
    journal = journal or {"errors": [], "ok": {}}
    preset = preset_for_endpoint(presets, record.token_endpoint)
    if preset is None:  # a proxy or a test persona: the errors seen may say who it is
        for entry in reversed(journal.get("errors") or []):
            codes = " ".join(entry.get("codes") or ())
            preset = preset_for_record(presets, record.token_endpoint, str(entry.get("error")),
                                       codes or str(entry.get("message") or ""))
            if preset is not None:
                break
    found: list[Finding] = []
    if record.refresh_token:
        found.append(Finding("ok", "refresh_token", "A Refresh Token is stored."))
    else:
        found.append(Finding(
            "note", "refresh_token", "No Refresh Token yet: run hostsim oauth get-refresh-token "
            f"{shlex.quote(record.record_name)} once these checks pass."))
    key = preset.key if preset is not None else ""
    if key in MAIL_SCOPES:
        found += _scope_findings(key, record, chosen, named)
    if key == "google":
        found += _google(record)
    elif key == "microsoft":
        found += _microsoft(record, chosen)
    elif preset is None:
        found.append(Finding(
            "note", "provider", "The endpoints are not Google's or Microsoft's: only the "
            "general checks and the errors seen apply."))
    found += _journal_findings(journal, now if now is not None else time.time())
    return preset, found


def render(record: OAuthRecord, preset: ProviderPreset | None, findings: list[Finding]) -> str:
    """The report as people read it: problems first, with what to change and where."""
    who = preset.title if preset is not None else "an unrecognised provider"
    lines = [f"OAuth record {record.record_name!r} ({who}):"]
    titles = (("problem", "Fix these"), ("ok", "Passed"), ("note", "Worth knowing"))
    for level, title in titles:
        items = [f for f in findings if f.level == level]
        if items:
            lines.append(f"{title}:")
            lines += [f"  - {f.text}" for f in items]
    problems = sum(f.level == "problem" for f in findings)
    lines.append(
        f"{problems} problem(s) to fix." if problems else "No problems found."
    )
    return "\n".join(lines)
