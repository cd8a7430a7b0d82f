"""Task files (YAML) turned into typed steps, validated once at load.

Validation belongs to the edge: after ``load_task`` every step names a known action, every
parameter is declared, required ones are present and literal values have the right type. Values
that contain ``{variables}`` are checked again at run time, after expansion.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import attrs
import yaml

from hostsim.runtime.registry import Registry
from hostsim.runtime.yamlsafe import describe_error, load_yaml
from robomail_plugin.host_kit import coerce
from robomail_plugin.schema import ActionSpec, TriggerSpec

TASK_KEYS = {"name", "variables", "on_error", "steps", "description", "trigger"}
TRIGGER_KEYS = {"type", "params", "comment"}
STEP_KEYS = {"action", "params", "do", "comment"}
MAX_TASK_BYTES = 1 << 20  # 1 MiB: a task file is a page of steps, not a data set


class TaskError(Exception):
    """A task file is malformed; the message names the file and step and says what to fix."""


@attrs.frozen(kw_only=True)
class Step:
    number: int
    action: ActionSpec
    params: dict[str, Any]
    body: tuple[Step, ...] = ()


@attrs.frozen(kw_only=True)
class TriggerUse:
    """A task's ``trigger:``: what starts it under ``hostsim watch``, and with which params."""

    spec: TriggerSpec
    params: dict[str, Any]


@attrs.frozen(kw_only=True)
class Task:
    name: str
    steps: tuple[Step, ...]
    variables: dict[str, Any] = attrs.field(factory=dict)
    on_error: str = "stop"  # "stop", "continue", or the path of a handler task file
    source: Path | None = None
    trigger: TriggerUse | None = None


def has_reference(value: Any) -> bool:
    return isinstance(value, str) and "{" in value


def did_you_mean(wrong: str, choices: list[str]) -> str:
    """' (did you mean 'X'?)' for the closest choice, ignoring case; '' when none is close."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(wrong.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


class _Loader:
    def __init__(self, registry: Registry, where: str) -> None:
        self.registry = registry
        self.where = where
        self.counter = 0

    def fail(self, message: str) -> TaskError:
        return TaskError(f"{self.where}: {message}")

    def steps(self, raw: Any, parent: str) -> tuple[Step, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(f"{parent} must be a list of steps")
        return tuple(self.step(item) for item in raw)

    def step(self, raw: Any) -> Step:
        self.counter += 1
        number = self.counter
        if not isinstance(raw, dict) or "action" not in raw:
            raise self.fail(f"step {number}: each step needs 'action:' (an action id or title)")
        unknown = set(raw) - STEP_KEYS
        if unknown:
            raise self.fail(
                f"step {number}: unknown keys {', '.join(sorted(unknown))}; a step has "
                f"{', '.join(sorted(STEP_KEYS))}"
            )
        spec = self.registry.action(str(raw["action"]))
        if spec is None:
            titles = [a.title for a in self.registry.actions.values()]
            raise self.fail(
                f"step {number}: unknown action {raw['action']!r}"
                f"{did_you_mean(str(raw['action']), titles)}; `hostsim actions` lists them"
            )
        label = f"step {number} ({spec.title})"
        params = raw.get("params") or {}
        if not isinstance(params, dict):
            raise self.fail(f"{label}: 'params' must be a mapping of name: value")
        declared = {p.name: p for p in spec.params}
        unknown_params = sorted(set(params) - set(declared))
        if unknown_params:
            hint = did_you_mean(str(unknown_params[0]), list(declared))
            raise self.fail(
                f"{label}: unknown parameter(s) {', '.join(map(str, unknown_params))}{hint}; "
                f"`hostsim describe {spec.id}` lists the parameters"
            )
        for p in spec.params:
            if p.required and params.get(p.name) in (None, ""):
                raise self.fail(f"{label}: parameter {p.name!r} is required ({p.help})")
            value = params.get(p.name)
            if p.name in params and value is not None and not has_reference(value):
                try:
                    coerce(p, value)
                except ValueError as exc:
                    raise self.fail(f"{label}: parameter {p.name!r}: {exc}") from None
        if "do" in raw and not spec.loop:
            raise self.fail(f"{label}: only loop actions take a 'do:' body; this one is not a loop")
        body = self.steps(raw.get("do"), f"{label} 'do'")
        return Step(number=number, action=spec, params=dict(params), body=body)


def _trigger(loader: _Loader, raw: Any) -> TriggerUse:
    """``trigger: {type: <trigger id or title>, params: {...}}``, checked as a step is."""
    if not isinstance(raw, dict) or "type" not in raw:
        raise loader.fail(
            "'trigger' needs 'type:' (a trigger's id or title, e.g. Email Arrived (IMAP)) and "
            "'params:'"
        )
    unknown = set(raw) - TRIGGER_KEYS
    if unknown:
        raise loader.fail(
            f"trigger: unknown keys {', '.join(sorted(map(str, unknown)))}; a trigger has "
            f"{', '.join(sorted(TRIGGER_KEYS))}"
        )
    spec = loader.registry.trigger(str(raw["type"]))
    if spec is None:
        titles = [t.title for t in loader.registry.triggers.values()]
        known = ", ".join(titles) or "none (no loaded plugin registers one)"
        raise loader.fail(
            f"trigger: unknown trigger {raw['type']!r}{did_you_mean(str(raw['type']), titles)}; "
            f"the triggers are: {known}"
        )
    label = f"trigger ({spec.title})"
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise loader.fail(f"{label}: 'params' must be a mapping of name: value")
    declared = {p.name: p for p in spec.params}
    unknown_params = sorted(map(str, set(params) - set(declared)))
    if unknown_params:
        hint = did_you_mean(unknown_params[0], list(declared))
        raise loader.fail(
            f"{label}: unknown parameter(s) {', '.join(unknown_params)}{hint}; docs/actions.md "
            "lists the parameters"
        )
    for p in spec.params:
        if p.required and params.get(p.name) in (None, ""):
            raise loader.fail(f"{label}: parameter {p.name!r} is required ({p.help})")
        value = params.get(p.name)
        if value is not None and not has_reference(value):
            try:
                coerce(p, value)
            except ValueError as exc:
                raise loader.fail(f"{label}: parameter {p.name!r}: {exc}") from None
    return TriggerUse(spec=spec, params=dict(params))


def parse_task(
    data: Any, registry: Registry, *, where: str = "task", source: Path | None = None
) -> Task:
    """Validates a task already loaded from YAML."""
    loader = _Loader(registry, where)
    if not isinstance(data, dict):
        raise loader.fail("a task file is a mapping with 'name' and 'steps'")
    unknown = set(data) - TASK_KEYS
    if unknown:
        raise loader.fail(
            f"unknown keys {', '.join(sorted(unknown))}; a task has {', '.join(sorted(TASK_KEYS))}"
        )
    if "steps" not in data:
        raise loader.fail("no 'steps:' list")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise loader.fail("'variables' must be a mapping of name: value")
    on_error = str(data.get("on_error", "stop"))
    if on_error not in ("stop", "continue") and not on_error.endswith((".yaml", ".yml")):
        raise loader.fail(
            "'on_error' must be stop, continue, or the path of a handler task (.yaml)"
        )
    name = str(data.get("name") or (source.stem if source else "task"))
    steps = loader.steps(data["steps"], "'steps'")
    trigger = _trigger(loader, data["trigger"]) if "trigger" in data else None
    return Task(
        name=name,
        steps=steps,
        variables=dict(variables),
        on_error=on_error,
        source=source,
        trigger=trigger,
    )


def load_task_text(
    text: str, registry: Registry, *, where: str = "task", source: Path | None = None
) -> Task:
    if len(text) > MAX_TASK_BYTES or len(text.encode("utf-8", "replace")) > MAX_TASK_BYTES:
        raise TaskError(f"{where}: the task is larger than 1 MiB, the limit for a task file")
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise TaskError(f"{where}: {describe_error(exc)}") from None
    except ValueError as exc:  # a malformed date or number: the message quotes no source text
        raise TaskError(f"{where}: not valid YAML: {exc}") from None
    return parse_task(data, registry, where=where, source=source)


def load_task_file(path: str | Path, registry: Registry) -> Task:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_TASK_BYTES + 1)  # bounded: the size is checked before decoding
    except OSError as exc:
        raise TaskError(f"{path}: cannot read the task file: {exc.strerror}") from None
    if len(data) > MAX_TASK_BYTES:
        raise TaskError(f"{path}: the task file is larger than 1 MiB, the limit for a task file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return load_task_text(text, registry, where=str(path), source=path.resolve())
