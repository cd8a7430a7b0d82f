"""The second plugin: what another plugin author builds on robomail's contract.

- an action, "Token Expiry", that asks robomail for an access token (never shows it) and can
  report it refused to get a fresh one;
- a provider preset, "Example Mail";
- its own credential editor ("api_key": named API keys) with its own in-memory records;
- a replacement credential store for OAuth records, switched on by SECOND_PLUGIN_STORE=1.
"""

from __future__ import annotations

import os
import time
from typing import Any

from robomail_plugin import host_kit
from robomail_plugin.errors import RecordExists, RecordNotFound
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import (
    ActionSpec,
    CommandResult,
    CommandScope,
    EditorCommand,
    EditorField,
    EditorSpec,
    ErrorCode,
    FieldKind,
    FieldRule,
    HostServices,
    Param,
    ParamType,
    ProviderPreset,
)

STORE_ENV = "SECOND_PLUGIN_STORE"


class MemoryOAuthStore:
    """OAuth records in memory: the smallest store that meets robomail's store contract."""

    def __init__(self) -> None:
        self.records: dict[str, Any] = {}
        self.description = "the second plugin's memory store"

    def get(self, name: str) -> Any:
        if name not in self.records:
            raise RecordNotFound(f"No OAuth record is named {name!r} in the memory store.")
        return self.records[name]

    def list(self) -> list[Any]:
        return [self.records[n] for n in sorted(self.records)]

    def add(self, record: Any) -> None:
        if record.record_name in self.records:
            raise RecordExists(f"{record.record_name!r} exists already.")
        self.records[record.record_name] = record

    def update(self, record: Any) -> None:
        self.get(record.record_name)
        self.records[record.record_name] = record

    def delete(self, name: str) -> None:
        self.get(name)
        del self.records[name]

    def rename(self, old: str, new: str) -> None:
        import attrs

        record = self.get(old)
        if new in self.records:
            raise RecordExists(f"{new!r} exists already.")
        del self.records[old]
        self.records[new] = attrs.evolve(record, record_name=new)


class SecondPlugin:
    def __init__(self) -> None:
        self.hook: Any = None
        self.api_keys: dict[str, dict[str, str]] = {}
        self.oauth_store = MemoryOAuthStore()

    @hookimpl
    def robomail_configure(self, host: HostServices) -> None:
        self.hook = host.hook

    # --- an action that uses robomail's tokens ------------------------------------------

    def _token_expiry(self, ctx: Any, params: dict[str, Any]) -> None:
        info = host_kit.access_token(self.hook, params["record"])
        ctx.add_secret(info.value)
        if params["report_refused"]:
            self.hook.robomail_token_refused(record_name=params["record"], token=info.value)
            fresh = host_kit.access_token(self.hook, params["record"])
            ctx.add_secret(fresh.value)
            ctx.set_variable("SecondGotFresh", fresh.value != info.value)
            info = fresh
        ctx.set_variable(params["save_to"], int(info.expires_at - time.time()))
        ctx.log(f"token for {params['record']!r} valid for {int(info.expires_at - time.time())} s")

    @hookimpl
    def robomail_register_actions(self) -> list[ActionSpec]:
        return [
            ActionSpec(
                id="second.token_expiry",
                title="Token Expiry",
                category="Second",
                run=self._token_expiry,
                params=(
                    Param(name="record", required=True, help="an OAuth Record Name"),
                    Param(name="save_to", default="SecondExpiresIn", sets_variable=True,
                          help="variable for the seconds the token stays valid"),
                    Param(name="report_refused", type=ParamType.BOOL, default=False,
                          help="report the token refused first, then get a fresh one"),
                ),
                errors=(ErrorCode(code="record_not_found", meaning="no such OAuth record"),),
            )
        ]

    # --- a provider preset --------------------------------------------------------------

    @hookimpl
    def robomail_oauth_providers(self) -> list[ProviderPreset]:
        return [
            ProviderPreset(
                key="example_mail",
                title="Example Mail",
                authorization_endpoint="https://auth.example-mail.test/authorize",
                token_endpoint="https://auth.example-mail.test/token",
                scope="mail offline",
            )
        ]

    # --- its own credential editor ------------------------------------------------------

    def _list(self, ctx: Any, params: dict[str, Any]) -> CommandResult:
        rows = [self._shown(n) for n in sorted(self.api_keys)]
        return CommandResult(message="\n".join(r["key_name"] for r in rows) or "no keys",
                             data=rows)

    def _shown(self, name: str) -> dict[str, str]:
        entry = self.api_keys[name]
        return {"key_name": name, "service": entry["service"],
                "api_key": "***" if entry["api_key"] else ""}

    def _show(self, ctx: Any, params: dict[str, Any]) -> CommandResult:
        name = params["key_name"]
        if name not in self.api_keys:
            raise RecordNotFound(f"No API key is named {name!r}.")
        return CommandResult(message=name, data=self._shown(name))

    def _save(self, ctx: Any, params: dict[str, Any]) -> CommandResult:
        name = params["key_name"]
        entry = self.api_keys.setdefault(name, {"service": "alpha", "api_key": ""})
        for field in ("service", "api_key"):
            if params.get(field) is not None:
                entry[field] = params[field]
        return CommandResult(message=f"Saved API key {name!r}.", data=self._shown(name))

    def _delete(self, ctx: Any, params: dict[str, Any]) -> CommandResult:
        self._show(ctx, params)
        del self.api_keys[params["key_name"]]
        return CommandResult(message=f"Deleted API key {params['key_name']!r}.")

    @hookimpl
    def robomail_register_credential_editors(self) -> list[EditorSpec]:
        key = Param(name="key_name", required=True, positional=True, help="the key's name")
        return [
            EditorSpec(
                record_type="api_key",
                title="API keys",
                key_field="key_name",
                list_command="list",
                show_command="show",
                save_command="save",
                fields=(
                    EditorField(name="key_name", label="Key Name", required=True,
                                rules=(FieldRule.SINGLE_LINE,)),
                    EditorField(name="service", label="Service", kind=FieldKind.CHOICE,
                                choices=("alpha", "beta"), required=True),
                    EditorField(name="api_key", label="API Key", kind=FieldKind.SECRET),
                ),
                commands=(
                    EditorCommand(id="list", label="List keys", run=self._list,
                                  result="a list of keys"),
                    EditorCommand(id="show", label="Show key", run=self._show, params=(key,),
                                  scope=CommandScope.RECORD),
                    EditorCommand(
                        id="save", label="Save", run=self._save,
                        params=(key,
                                Param(name="service", type=ParamType.CHOICE,
                                      choices=("alpha", "beta"), help="the service"),
                                Param(name="api_key", secret=True, help="the key")),
                    ),
                    EditorCommand(id="delete", label="Delete", run=self._delete, params=(key,),
                                  scope=CommandScope.RECORD, confirm="Delete this API key?"),
                ),
            )
        ]

    # --- a replacement OAuth store ------------------------------------------------------

    @hookimpl
    def robomail_credential_store(self) -> Any:
        return self.oauth_store if os.environ.get(STORE_ENV) == "1" else None


plugin = SecondPlugin()
