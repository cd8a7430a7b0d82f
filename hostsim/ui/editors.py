"""An EditorSpec as the settings screen shows it, and its commands run from what the page sent.

Everything comes from the contract: the form's inputs from ``fields``, a button per command, and
a dialog for the params that are neither fields nor the selected record. A command's params
named as fields take the form's values; a RECORD command takes the selected record. Stored
secrets never reach the page: a record goes out as its plain fields' values and, for each secret
field, only whether it is set.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from werkzeug.datastructures import FileStorage

from hostsim.ui.context import WebContext
from hostsim.ui.files import CommandFiles, Downloads
from robomail_plugin.host_kit import bind_params
from robomail_plugin.schema import (
    CHOICES_FROM_PROVIDERS,
    ActionFailed,
    CommandResult,
    CommandScope,
    EditorCommand,
    EditorField,
    EditorSpec,
    FieldKind,
    Param,
    ParamType,
    ProviderPreset,
    check_field,
)

Providers = Callable[[], Mapping[str, ProviderPreset]]

CONTROLS = {
    FieldKind.TEXT: "text",
    FieldKind.URL: "url",
    FieldKind.SECRET: "password",
    FieldKind.MULTILINE: "textarea",
    FieldKind.CHOICE: "select",
}
#: the param that, when a long-running command has it, says how many seconds it may wait
TIMEOUT_PARAM = "timeout"


class Refused(Exception):
    """The page sent something the command cannot run with; nothing ran."""

    def __init__(self, message: str = "", fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})

    def payload(self) -> dict[str, Any]:
        return {"ok": False, "error": {"code": "invalid_parameter", "message": self.message},
                "field_errors": self.fields}


@attrs.frozen
class Choice:
    value: str
    label: str


@attrs.frozen
class FieldView:
    field: EditorField
    control: str
    choices: tuple[Choice, ...] = ()


@attrs.frozen
class InputView:
    """One input of a command's dialog."""

    param: Param
    label: str
    control: str  # text, password, number, checkbox, select, file
    choices: tuple[Choice, ...] = ()
    value: str = ""
    required: bool = False


@attrs.frozen
class CommandView:
    command: EditorCommand
    inputs: tuple[InputView, ...]

    @property
    def takes_record(self) -> bool:
        return self.command.scope is CommandScope.RECORD

    @property
    def dialog(self) -> bool:
        return bool(self.inputs or self.command.confirm)


def humanize(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _choices(static: tuple[str, ...], source: str, providers: Providers) -> tuple[Choice, ...]:
    if static:
        return tuple(Choice(c, c) for c in static)
    if source == CHOICES_FROM_PROVIDERS:
        return tuple(
            Choice(key, preset.title) for key, preset in sorted(providers().items())
        )
    return ()


def _input(param: Param, providers: Providers) -> InputView:
    default = param.default if param.has_default and param.default is not None else None
    value = "" if default is None or param.secret else str(default)
    if isinstance(default, list | tuple):
        value = ", ".join(map(str, default))
    choices = _choices(param.choices, param.choices_from, providers)
    control = "text"
    if param.secret:
        control = "password"
    elif param.type is ParamType.BOOL:
        control, value = "checkbox", "true" if default else ""
    elif param.type in (ParamType.INT, ParamType.FLOAT):
        control = "number"
    elif param.type is ParamType.PATH:
        control = "file"
    elif choices:
        control = "select"
    return InputView(param=param, label=humanize(param.name), control=control, choices=choices,
                     value=value, required=param.required)


class EditorView:
    """One registered editor, ready for a page: its form, its buttons and their dialogs."""

    def __init__(self, spec: EditorSpec, providers: Providers) -> None:
        self.spec = spec
        self.providers = providers
        self.editable = {f.name for f in spec.fields if not f.read_only}
        hidden = {spec.list_command, spec.show_command, spec.save_command}
        self.save = self._command(spec.command(spec.save_command)) if spec.save_command else None
        self.buttons = tuple(
            self._command(c) for c in spec.commands if c.id not in hidden
        )

    @property
    def record_type(self) -> str:
        return self.spec.record_type

    def fields(self) -> list[FieldView]:
        """The form's inputs (choices resolved now: a plugin may add presets)."""
        return [
            FieldView(field=f, control=CONTROLS[f.kind],
                      choices=_choices(f.choices, f.choices_from, self.providers))
            for f in self.spec.fields
        ]

    def _command(self, command: EditorCommand) -> CommandView:
        inputs = tuple(
            _input(p, self.providers) for p in command.params
            if p.name not in self.editable and p.name != self.spec.key_field
        )
        return CommandView(command=command, inputs=inputs)

    # --- records, as the page may see them --------------------------------------------------

    def record_view(self, data: Any) -> dict[str, Any] | None:
        """A record for the page: plain fields' values, and only set / not set for secrets."""
        if not isinstance(data, Mapping) or not isinstance(data.get(self.spec.key_field), str):
            return None
        values: dict[str, str] = {}
        secrets: dict[str, bool] = {}
        for f in self.spec.fields:
            value = data.get(f.name)
            if f.secret:
                secrets[f.name] = bool(value)
            else:
                values[f.name] = "" if value is None else str(value)
        return {"key": data[self.spec.key_field], "values": values, "secrets": secrets}

    def records(self) -> list[dict[str, Any]]:
        if not self.spec.list_command:
            return []
        result = self.spec.command(self.spec.list_command).run(WebContext(), {})
        views = (self.record_view(item) for item in (result.data or []))
        return [v for v in views if v is not None]

    def record(self, key: str) -> dict[str, Any] | None:
        """The record's current state, or None when there is no such record (any more)."""
        try:
            if self.spec.show_command:
                command = self.spec.command(self.spec.show_command)
                data = command.run(WebContext(), bind_params(command.params,
                                                             {self.spec.key_field: key})).data
                return self.record_view(data)
            return next((r for r in self.records() if r["key"] == key), None)
        except ActionFailed:
            return None

    # --- running a command --------------------------------------------------------------------

    def prepare(
        self,
        command_id: str,
        *,
        record: str,
        form: Mapping[str, str],
        params: Mapping[str, Any],
        uploads: Mapping[str, FileStorage],
        downloads: Downloads,
    ) -> Run:
        """The command with its params bound from the page's values; Refused says what is
        wrong (next to a field when it is a field's)."""
        try:
            command = self.spec.command(command_id)
        except KeyError:
            raise Refused(f"{self.spec.title} has no command {command_id!r}.") from None
        files = CommandFiles()
        ctx = WebContext()
        try:
            raw = self._raw_params(command, record=record, form=form, params=params,
                                   uploads=uploads, files=files, ctx=ctx)
            try:
                bound = bind_params(command.params, raw)
            except ActionFailed as exc:
                raise Refused(str(exc)) from None
        except BaseException:
            files.close()  # nothing will run: drop the uploads already saved
            raise
        key_field = self.spec.key_field
        key = record if command.scope is CommandScope.RECORD else str(form.get(key_field, ""))
        return Run(view=self, command=command, params=bound, ctx=ctx, files=files, key=key,
                   downloads=downloads, timeout_s=_timeout_seconds(command, bound))

    def _raw_params(
        self,
        command: EditorCommand,
        *,
        record: str,
        form: Mapping[str, str],
        params: Mapping[str, Any],
        uploads: Mapping[str, FileStorage],
        files: CommandFiles,
        ctx: WebContext,
    ) -> dict[str, Any]:
        """Each param's value from where the page holds it: the selected record, a form field,
        an uploaded (or to be downloaded) file, or the command's dialog. Secrets among them
        are masked in ``ctx``; every field's problem is refused at once, not one by one."""
        is_save = command.id == self.spec.save_command
        raw: dict[str, Any] = {}
        field_errors: dict[str, str] = {}
        for p in command.params:
            if p.name == self.spec.key_field and command.scope is CommandScope.RECORD:
                if not record:
                    raise Refused(f"Select a record first: {command.label} acts on one.")
                raw[p.name] = record
            elif p.name in self.editable:
                value = self._form_value(p, form, is_save=is_save, ctx=ctx,
                                         field_errors=field_errors)
                if value is not None:
                    raw[p.name] = value
            elif p.type is ParamType.PATH:
                upload = uploads.get(p.name)
                raw[p.name] = files.upload(p.name, upload) if upload else files.output(p.name)
            elif params.get(p.name) not in (None, ""):
                raw[p.name] = params[p.name]
                if p.secret and isinstance(params[p.name], str):
                    ctx.add_secret(params[p.name])
        if field_errors:
            raise Refused("Some fields need attention.", field_errors)
        return raw

    def _form_value(
        self,
        p: Param,
        form: Mapping[str, str],
        *,
        is_save: bool,
        ctx: WebContext,
        field_errors: dict[str, str],
    ) -> str | None:
        """A field's value for the param, or None when it is left out so that the command's
        own default or preset applies. Save checks every field, other commands only what was
        filled in (or is required); a problem goes into ``field_errors``."""
        if p.name not in form:
            return None
        field = self.spec.field(p.name)
        value = str(form[p.name])
        if not value and not is_save and not field.secret:
            return None
        problem = self._field_problem(field, value, strict=is_save or p.required)
        if problem:
            field_errors[p.name] = problem
        if field.secret and value:
            ctx.add_secret(value)
        return value

    def _field_problem(self, field: EditorField, value: str, *, strict: bool) -> str | None:
        if field.secret and not value:
            return None  # a secret left empty is removed only when the page asked to
        if not value and not strict:
            return None
        return check_field(field, value)

    def details(self, data: Any, secret_names: set[str]) -> list[list[str]]:
        """A command's data for people, as (name, text) rows; record fields are shown in the
        form instead, secrets as ***."""
        if not isinstance(data, Mapping):
            return []
        fields = {f.name for f in self.spec.fields}
        rows = []
        for name, value in data.items():
            if name in fields:
                continue
            text = _text(value)
            rows.append([str(name), "***" if name in secret_names and text else text])
        return rows


def _timeout_seconds(command: EditorCommand, bound: Mapping[str, Any]) -> float | None:
    """How long the command may wait, from its INT ``timeout`` param, so a job's status can say
    how many seconds are left; None when it has no such param or no limit."""
    timeout = bound.get(TIMEOUT_PARAM) if any(
        p.name == TIMEOUT_PARAM and p.type is ParamType.INT for p in command.params
    ) else None
    return float(timeout) if timeout else None


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(" → ".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
                         for v in value) or "none"
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@attrs.define
class Run:
    """A command ready to run, here or in a background job; ``execute`` gives the page's
    answer."""

    view: EditorView
    command: EditorCommand
    params: dict[str, Any]
    ctx: WebContext
    files: CommandFiles
    key: str
    downloads: Downloads
    timeout_s: float | None = None

    def execute(self) -> dict[str, Any]:
        command = self.command
        try:
            try:
                result = command.run(self.ctx, self.params)
            except ActionFailed as exc:
                return self._answer(False, error={"code": exc.code, "message": str(exc)})
            except Exception as exc:  # a plugin's bug: its text could hold a secret
                print(f"hostsim ui: {command.label} failed: {type(exc).__name__}", file=sys.stderr)
                return self._answer(False, error={
                    "code": "internal_error",
                    "message": f"{command.label} failed unexpectedly ({type(exc).__name__}).",
                })
            written = self.files.collect(f"{self.view.record_type}-{command.id}")
            return self._answer(True, result=result, written=written)
        finally:
            self.files.close()

    def _answer(self, ok: bool, *, error: dict[str, str] | None = None,
                result: CommandResult | None = None,
                written: list[tuple[str, bytes]] | None = None) -> dict[str, Any]:
        view, ctx = self.view, self.ctx

        def shown(text: str) -> str:
            return ctx.masker.mask(self.files.hide_paths(text))

        answer: dict[str, Any] = {"ok": ok, "command": self.command.id,
                                  "label": self.command.label}
        if error is not None:
            answer["error"] = {"code": error["code"], "message": shown(error["message"])}
        key = self.key
        if result is not None:
            answer["message"] = shown(result.message)
            secret_names = {p.name for p in self.command.params if p.secret}
            answer["details"] = [[name, shown(text)]
                                 for name, text in view.details(result.data, secret_names)]
            record_data = view.record_view(result.data)
            if record_data is not None:
                key = record_data["key"]
            answer["downloads"] = [
                {"url": f"/downloads/{self.downloads.add(name, data)}", "filename": name}
                for name, data in written or []
            ]
        answer["log"] = ctx.log_lines()
        answer["record"] = view.record(key) if key else None
        answer["record_gone"] = bool(
            self.command.scope is CommandScope.RECORD and answer["record"] is None
        )
        answer["records"] = view.records()
        return answer
