"""The OAuth parameters editor's commands: what each one does.

``editor_spec`` declares the editor (imported at start-up, for a settings screen or hostsim's
``hostsim oauth <command>``); this module is imported when one of its commands first runs. Every
command returns a ``CommandResult`` whose message and data never hold a secret (shown as ***).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from robomail_plugin.credentials.choices import PASSPHRASE_ENV
from robomail_plugin.credentials.presets import preset_for_endpoint, with_tenant
from robomail_plugin.credentials.records import FIELD_LABELS, OAuthRecord
from robomail_plugin.credentials.store import (
    CheckedRecord,
    change_record,
    read_checked,
    record_names,
    save_refresh_token,
)
from robomail_plugin.errors import InvalidParameter, StoreError
from robomail_plugin.schema import ActionFailed, CommandResult, HostContext, ProviderPreset

if TYPE_CHECKING:
    from robomail_plugin.services import Services

MASK = "***"

#: the fields a command may set from its params (the Refresh Token only Get Refresh Token sets)
_EDITABLE = (
    "client_account", "client_id", "client_secret", "authorization_endpoint", "token_endpoint",
    "scope", "device_endpoint",
)


#: what ``add`` asks for at a terminal when it was not given, in the form's order
_REQUIRED_FIELDS = (
    "client_account", "client_id", "authorization_endpoint", "token_endpoint", "scope",
)


def masked(record: OAuthRecord) -> dict[str, str]:
    return record.public_dict(MASK)


def _shown(item: CheckedRecord) -> dict[str, Any]:
    """A record for display; a damaged secret says so instead of ***."""
    data: dict[str, Any] = masked(item.record)
    for field in item.damage:
        data[field] = "(damaged)"
    if item.damage:
        data["damage"] = dict(item.damage)
    return data


def _describe(record: OAuthRecord) -> str:
    data = masked(record)
    if not record.refresh_token:
        data["refresh_token"] = "(none yet: run get-refresh-token)"  # noqa: S105
    if not record.client_secret:
        data["client_secret"] = "(none: public client)"  # noqa: S105
    width = max(len(v) for v in FIELD_LABELS.values())
    return "\n".join(f"{FIELD_LABELS[k]:<{width}}  {v}" for k, v in data.items())


def _ask(ctx: HostContext, text: str, *, secret: bool) -> str | None:
    """Asks the person at the terminal; None when nobody is there to answer."""
    if not ctx.interactive:
        return None
    try:
        return ctx.prompt(text, secret=secret)
    except ActionFailed:
        return None


def _given(params: Mapping[str, Any]) -> dict[str, str]:
    """The editable fields a command was given (None: left out)."""
    return {f: str(params[f]) for f in _EDITABLE if params.get(f) is not None}


def _str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    return None if value is None else str(value)


@attrs.define
class OAuthEditor:
    """The commands, bound to the plugin's services."""

    services: Services

    # --- helpers ---------------------------------------------------------------------------

    def _preset(self, key: str, tenant: str | None) -> ProviderPreset:
        presets = self.services.providers()
        preset = presets.get(key.strip().lower())
        if preset is None:
            raise InvalidParameter(
                f"Unknown provider {key!r}: choose one of {', '.join(sorted(presets))}."
            )
        return with_tenant(preset, tenant)

    def _fill_from_preset(self, fields: dict[str, str], key: str, tenant: str | None) -> str:
        preset = self._preset(key, tenant)
        fields["authorization_endpoint"] = preset.authorization_endpoint
        fields["token_endpoint"] = preset.token_endpoint
        fields["scope"] = preset.scope
        fields["device_endpoint"] = preset.device_authorization_endpoint or ""
        return preset.title

    def _extras(self, record: OAuthRecord) -> dict[str, str]:
        preset = preset_for_endpoint(self.services.providers(), record.token_endpoint)
        return dict(preset.extra_authorize_params) if preset else {}

    # --- record commands -------------------------------------------------------------------

    def list(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        checked = read_checked(self.services.store)
        where = f"Store: {self.services.store_description}"
        if not checked:
            return CommandResult(
                message=f"No OAuth records yet (hostsim oauth add).\n{where}", data=[]
            )
        lines = []
        for item in checked:
            r = item.record
            lines.append(
                f"{r.record_name}  {r.client_account}  {r.token_endpoint}  "
                f"refresh token: {'set' if r.refresh_token else 'missing'}"
            )
            lines.extend(f"  DAMAGED: {problem}" for problem in item.damage.values())
        lines.append(where)
        return CommandResult(message="\n".join(lines), data=[_shown(c) for c in checked])

    def show(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        (item,) = read_checked(self.services.store, [params["record_name"]])
        message = _describe(item.record)
        message += "".join(f"\nDAMAGED: {problem}" for problem in item.damage.values())
        return CommandResult(message=message, data=_shown(item))

    def add(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        fields: dict[str, str] = {"record_name": params["record_name"]}
        title = None
        if params.get("provider"):
            title = self._fill_from_preset(fields, params["provider"], _str(params, "tenant"))
        fields.update(_given(params))
        for field in _REQUIRED_FIELDS:  # at a terminal, ask for what is missing, in form order
            if not fields.get(field):
                answer = _ask(ctx, FIELD_LABELS[field], secret=False)
                if answer:
                    fields[field] = answer.strip()
        asked = False
        if params.get("client_secret") is None:
            answer = _ask(ctx, "Client Secret (leave empty for a public client)", secret=True)
            fields["client_secret"] = answer or ""
            asked = answer is not None
        record = OAuthRecord(**fields)
        self.services.store.add(record)
        self.services.tokens.invalidate(record.record_name)
        message = f"Added OAuth record {record.record_name!r}"
        message += f" with {title}'s endpoints." if title else "."
        if params.get("client_secret") is None and not asked:
            message += " No Client Secret stored (public client); add one with edit if needed."
        message += f" Next: hostsim oauth get-refresh-token {shlex.quote(record.record_name)}"
        return CommandResult(message=message, data=masked(record))

    def edit(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        name = params["record_name"]
        changes: dict[str, str] = {}
        if params.get("provider"):
            self._fill_from_preset(changes, params["provider"], _str(params, "tenant"))
        changes.update(_given(params))
        if not changes:
            raise InvalidParameter("Nothing to change: give at least one field option.")
        updated = change_record(self.services.store, name, changes)
        self.services.tokens.invalidate(name)
        names = ", ".join(FIELD_LABELS[f] for f in changes)
        return CommandResult(
            message=f"Updated OAuth record {name!r}: {names}.", data=masked(updated)
        )

    def save(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        """A form's Save: creates the record, or changes only the fields given."""
        name = params["record_name"]
        fields = _given(params)
        if name in record_names(self.services.store):
            if not fields:
                raise InvalidParameter("Nothing to save: no field was given.")
            record = change_record(self.services.store, name, fields)
            verb = "Saved"
        else:
            record = OAuthRecord(record_name=name, **fields)
            self.services.store.add(record)
            verb = "Added"
        self.services.tokens.invalidate(name)
        return CommandResult(message=f"{verb} OAuth record {name!r}.", data=masked(record))

    def delete(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        self.services.store.delete(params["record_name"])
        self.services.tokens.invalidate(params["record_name"])
        return CommandResult(message=f"Deleted OAuth record {params['record_name']!r}.")

    def rename(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        old, new = params["record_name"], params["new_name"]
        self.services.store.rename(old, new)
        self.services.tokens.invalidate(old)
        return CommandResult(
            message=f"Renamed OAuth record {old!r} to {new!r}. Update tasks that name it.",
            data={"old": old, "new": new},
        )

    def load_predefined(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        name = params["record_name"]
        changes: dict[str, str] = {}
        title = self._fill_from_preset(changes, params["provider"], _str(params, "tenant"))
        updated = change_record(self.services.store, name, changes)
        self.services.tokens.invalidate(name)
        return CommandResult(
            message=(
                f"Loaded {title}'s endpoints and scope into {name!r}. Run "
                f"get-refresh-token if the scope changed."
            ),
            data=masked(updated),
        )

    # --- Get Refresh Token -----------------------------------------------------------------

    def get_refresh_token(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        # loaded on first use: keeps `hostsim actions` start-up light (requests, oauthlib)
        from robomail_plugin.credentials import browser
        from robomail_plugin.credentials.tokens import token_summary

        store = self.services.store
        (item,) = read_checked(store, [params["record_name"]])
        if "client_secret" in item.damage:
            raise StoreError(item.damage["client_secret"])
        record = item.record  # a damaged Refresh Token is what this command replaces
        endpoint = self.services.tokens.endpoint
        timeout = float(params.get("timeout") or browser.DEFAULT_TIMEOUT_S)
        preset = preset_for_endpoint(self.services.providers(), record.token_endpoint)
        redirect_host = params.get("redirect_host") or "auto"
        if redirect_host == "auto":  # Microsoft apps register http://localhost (any port)
            redirect_host = "localhost" if preset and preset.key == "microsoft" else "127.0.0.1"
        extras = self._extras(record)
        if params.get("device"):
            device_endpoint = record.device_endpoint or (
                (preset.device_authorization_endpoint or "") if preset else ""
            )
            if not device_endpoint:
                why = (
                    "Google offers no device-code flow for Gmail's scope"
                    if preset and preset.key == "google"
                    else "set one with edit --device-endpoint if the provider offers the flow"
                )
                raise InvalidParameter(
                    f"OAuth record {record.record_name!r} has no Device Authorization Endpoint "
                    f"({why}). Use --no-browser instead."
                )
            grant = browser.authorize_with_device(
                record, endpoint, device_endpoint=device_endpoint, say=ctx.log, timeout=timeout,
                cancelled=getattr(ctx, "cancelled", None),
            )
            how = "device code"
        elif params.get("redirect_url"):
            pending = browser.load_pending(self._pending_path(record), record, timeout)
            grant = browser.finish_with_redirect_url(
                record, endpoint, pending, str(params["redirect_url"])
            )
            how = "redirect URL"
        elif params.get("no_browser") and not ctx.interactive:
            return self._start_sign_in_elsewhere(record, extras, redirect_host, timeout)
        elif params.get("no_browser"):
            grant = browser.authorize_by_paste(
                record, endpoint, prompt=lambda text: ctx.prompt(text), extra_params=extras,
                say=ctx.log, redirect_host=redirect_host, timeout=timeout,
            )
            how = "pasted redirect"
        else:
            # A host that shows the sign-in page itself (a web settings screen) offers
            # ctx.open_url(url) -> bool; the CLI has none, so the system browser opens it.
            opener = getattr(ctx, "open_url", None)
            grant = browser.authorize_in_browser(
                record, endpoint, extra_params=extras, say=ctx.log, timeout=timeout,
                redirect_host=redirect_host, cancelled=getattr(ctx, "cancelled", None),
                **({"open_url": opener} if callable(opener) else {}),
            )
            how = "browser"
        ctx.add_secret(grant.refresh_token)
        ctx.add_secret(grant.access_token.value)
        save_refresh_token(store, record.record_name, grant.refresh_token)
        self.services.tokens.remember(grant.access_token)
        return CommandResult(
            message=(
                f"Got a Refresh Token for {record.record_name!r} ({how}) and saved it in the "
                "record."
            ),
            data={"record_name": record.record_name, "refresh_token": MASK,
                  **token_summary(grant.access_token)},
        )

    def _pending_path(self, record: OAuthRecord) -> Path:
        digest = hashlib.sha256(record.record_name.encode("utf-8")).hexdigest()[:24]
        return self.services.home / "pending" / f"sign-in-{digest}.json"

    def _start_sign_in_elsewhere(
        self, record: OAuthRecord, extras: dict[str, str], redirect_host: str, timeout: float
    ) -> CommandResult:
        """--no-browser with nobody at the terminal: print the URL and keep the sign-in, which
        ``--redirect-url`` finishes in a second run."""
        from robomail_plugin.credentials import browser
        from robomail_plugin.private_files import free_port

        request = browser.build_request(record, f"http://{redirect_host}:{free_port()}/", extras)
        browser.save_pending(self._pending_path(record), request)
        name = shlex.quote(record.record_name)
        return CommandResult(
            message=(
                f"Open this URL in any browser and sign in:\n{request.url}\nAfter signing in, "
                "the browser tries to open a 127.0.0.1 (or localhost) page, which may fail to "
                "load; copy the full address from the address bar and, within "
                f"{timeout:g} s, run:\n  hostsim oauth get-refresh-token {name} "
                "--redirect-url 'ADDRESS'"
            ),
            data={"record_name": record.record_name, "authorization_url": request.url,
                  "pending": True},
        )

    # --- export / import -------------------------------------------------------------------

    def _passphrase(self, ctx: HostContext, params: Mapping[str, Any], *, confirm: bool,
                    wanted: bool) -> str | None:
        given = params.get("passphrase") or os.environ.get(PASSPHRASE_ENV) or None
        if given:
            ctx.add_secret(given)
            return given
        if not wanted:
            return None
        first = _ask(
            ctx,
            "Passphrase" + (" to encrypt the secrets" if confirm else ""),
            secret=True,
        )
        if first and confirm and _ask(ctx, "Repeat the passphrase", secret=True) != first:
            raise InvalidParameter("The two passphrases differ; nothing was written.")
        return first or None

    def export(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        from robomail_plugin.credentials import transfer  # loaded on first use (cryptography)

        target = params.get("to")
        if not target:
            raise InvalidParameter("Give the file to write (--to FILE).")
        checked = read_checked(self.services.store, list(params.get("names") or []) or None)
        records = [c.record for c in checked if not c.damage]
        damaged = [c for c in checked if c.damage]
        include = bool(params.get("include_secrets"))
        passphrase = self._passphrase(ctx, params, confirm=True, wanted=include)
        document = transfer.build_document(records, include_secrets=include, passphrase=passphrase)
        path = Path(target).expanduser()
        transfer.write_export(path, document)
        mode = document["secrets"]
        note = {
            "none": "without secrets (run get-refresh-token after importing)",
            "encrypted": "with secrets encrypted by the passphrase",
        }[mode]
        message = f"Exported {len(records)} OAuth record(s) to {path} {note}."
        for item in damaged:
            message += f"\nNot exported, damaged: {' '.join(item.damage.values())}"
        return CommandResult(
            message=message,
            data={"file": str(path), "records": [r.record_name for r in records],
                  "secrets": mode, "damaged": [c.record.record_name for c in damaged]},
        )

    def import_(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        from robomail_plugin.credentials import transfer  # loaded on first use (cryptography)

        path = Path(str(params["file"])).expanduser()
        document = transfer.read_document(path)
        passphrase = None
        if transfer.needs_passphrase(document):
            passphrase = self._passphrase(ctx, params, confirm=False, wanted=True)
        parsed = transfer.parse_export(document, passphrase)
        report = transfer.import_records(
            self.services.store, parsed, params.get("on_conflict") or "error"
        )
        for name in (*report.added, *report.overwritten):
            self.services.tokens.invalidate(name)
        bits = []
        if report.added:
            bits.append(f"added {', '.join(map(repr, report.added))}")
        if report.overwritten:
            bits.append(f"overwrote {', '.join(map(repr, report.overwritten))}")
        if report.renamed:
            bits.append(
                "renamed " + ", ".join(f"{a!r} to {b!r}" for a, b in report.renamed)
            )
        message = f"Imported {len(parsed.records)} OAuth record(s) from {path}"
        message += (": " + "; ".join(bits) + ".") if bits else "."
        fresh = [*report.added, *(new for _, new in report.renamed)]
        if not parsed.has_secrets and fresh:
            message += (
                " The file had no secrets: run get-refresh-token for "
                + ", ".join(map(repr, dict.fromkeys(fresh)))
                + "."
            )
        if not parsed.has_secrets and report.overwritten:
            message += " Overwritten records kept their Client Secret and Refresh Token."
        return CommandResult(
            message=message,
            data={"added": list(report.added), "overwritten": list(report.overwritten),
                  "renamed": [list(p) for p in report.renamed]},
        )

    # --- test and keys ---------------------------------------------------------------------

    def test(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        from robomail_plugin.credentials.tokens import token_summary  # loaded on first use

        token = self.services.tokens.get_access_token(params["record_name"], force_refresh=True)
        ctx.add_secret(token.value)
        summary = token_summary(token)
        return CommandResult(
            message=(
                f"OAuth record {params['record_name']!r} works: got an access token, valid until "
                f"{summary['expires_at']} (in {summary['expires_in_s'] // 60} min)."
            ),
            data=summary,
        )

    def doctor(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        """The record against its provider's rules and the errors seen for it; offline."""
        from robomail_plugin.credentials import doctor  # loaded on first use

        name = params["record_name"]
        (item,) = read_checked(self.services.store, [name])
        preset, findings = doctor.check_record(
            item.record, self.services.providers(), protocols=params.get("protocols"),
            journal=self.services.tokens.journal.read(name),
        )
        findings = [doctor.Finding("problem", "damage", why) for why in item.damage.values()]\
            + findings
        problems = sum(f.level == "problem" for f in findings)
        return CommandResult(
            message=doctor.render(item.record, preset, findings),
            data={"record_name": name, "provider": preset.key if preset else "",
                  "problems": problems, "findings": [f.as_dict() for f in findings]},
        )

    def rotate_key(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        from robomail_plugin.credentials.keys import EnvKeySource  # loaded on first use

        store = self.services.store
        rotate = getattr(store, "rotate_key", None)
        if rotate is None:
            raise InvalidParameter("This credential store does not support key rotation.")
        new_key = params.get("new_key") or None
        source = getattr(store, "key_source", None)
        if new_key is None and isinstance(source, EnvKeySource):
            new_key = _ask(
                ctx,
                "New key (urlsafe base64 of 32 random bytes; ROBOMAIL_KEY must be set to it "
                "afterwards)",
                secret=True,
            ) or None
        if new_key:
            ctx.add_secret(new_key)
        started = time.monotonic()
        key_id = rotate(new_key)
        checked = read_checked(store)
        count = len(checked)
        where = getattr(source, "description", "the store's key source")
        message = (
            f"Re-encrypted {count} OAuth record(s) with a new key (key id {key_id}) in "
            f"{time.monotonic() - started:.1f} s; the key is kept in {where}."
        )
        if isinstance(source, EnvKeySource):
            message = (
                f"Re-encrypted {count} OAuth record(s) with the new key (key id {key_id}). Set "
                "ROBOMAIL_KEY to the new key now: the old key no longer opens the store."
            )
        for problem in (p for item in checked for p in item.damage.values()):
            message += f"\nStill damaged (left as it was): {problem}"
        return CommandResult(message=message, data={"key_id": key_id, "records": count})

    def copy_store(self, ctx: HostContext, params: Mapping[str, Any]) -> CommandResult:
        from robomail_plugin.credentials.copying import copy_store  # loaded on first use

        done = copy_store(
            self.services.store, self.services.home, to=params.get("to") or None,
            from_=params.get("from") or None, on_conflict=params.get("on_conflict") or "error",
        )
        report = done.report
        if done.into_here:
            for name in (*report.added, *report.overwritten):
                self.services.tokens.invalidate(name)
        count = len(report.added) + len(report.overwritten)
        message = (
            f"Copied {count} OAuth record(s), secrets included, from {done.source} to "
            f"{done.target}."
        )
        if report.overwritten:
            message += f" Overwrote {', '.join(map(repr, report.overwritten))}."
        if report.renamed:
            message += " Renamed " + ", ".join(f"{a!r} to {b!r}" for a, b in report.renamed) + "."
        for item in done.damaged:
            message += f"\nNot copied, damaged: {' '.join(item.damage.values())}"
        return CommandResult(
            message=message,
            data={"source": done.source, "target": done.target, "added": list(report.added),
                  "overwritten": list(report.overwritten),
                  "renamed": [list(p) for p in report.renamed],
                  "damaged": [c.record.record_name for c in done.damaged]},
        )


Command: TypeAlias = Callable[["OAuthEditor", HostContext, Mapping[str, Any]], CommandResult]


def run_command(
    services: Services, method: Command, ctx: HostContext, params: Mapping[str, Any]
) -> CommandResult:
    """Runs one command: ``editor_spec`` points each command of the EditorSpec here, with the
    ``OAuthEditor`` method that does it."""
    return method(OAuthEditor(services), ctx, params)
