"""The plugin manifest (Home Assistant style), built from the registry and checked against disk."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

from hostsim.runtime.registry import Registry
from robomail_plugin.hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME
from robomail_plugin.schema import ActionFailed

#: the source checkout hostsim is in (found from this file, not from the current folder)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_PATH = PROJECT_ROOT / "manifests" / f"{PROJECT_NAME}.json"
REFERENCE_PATH = PROJECT_ROOT / "docs" / "actions.md"


def _package_of(plugin: object) -> str:
    module = plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__module__
    return module.partition(".")[0]


def own_registrations(registry: Registry, distribution: str = PROJECT_NAME) -> Registry:
    """What the distribution's own code registered: its entry points' plugins (and the plugins
    they register, from the same packages) plus hostsim's core. Another installed plugin changes
    neither the manifest nor the action reference."""
    from importlib import metadata  # loaded here: start-up does not need it (entry_points.py)

    packages = {__name__.partition(".")[0]} | {
        ep.value.partition(":")[0].strip().partition(".")[0]
        for ep in metadata.distribution(distribution).entry_points
        if ep.group == ENTRY_POINT_GROUP
    }
    return registry.only(
        name
        for name, plugin in registry.pm.list_name_plugin()
        if plugin is not None and _package_of(plugin) in packages
    )


def build_manifest(registry: Registry, distribution: str = PROJECT_NAME) -> dict[str, Any]:
    """Everything the manifest says comes from the distribution's own registrations and its
    package metadata."""
    from importlib import metadata  # loaded here: start-up does not need it (entry_points.py)

    registry = own_registrations(registry, distribution)
    meta = metadata.metadata(distribution)
    requirements = sorted(
        req for req in (metadata.requires(distribution) or []) if "extra ==" not in req
    )
    prefix = f"{PROJECT_NAME}."
    return {
        "domain": PROJECT_NAME,
        "name": meta["Name"],
        "version": meta["Version"],
        "documentation": "README.md",
        "entry_point_group": PROJECT_NAME,
        "requirements": requirements,
        "actions": [
            {"id": spec.id, "title": spec.title, "category": spec.category, "loop": spec.loop}
            for spec in sorted(registry.actions.values(), key=lambda s: s.id)
            if spec.id.startswith(prefix)
        ],
        "credential_editors": [
            {
                "record_type": editor.record_type,
                "title": editor.title,
                "fields": [f.name for f in editor.fields],
                "commands": [c.id for c in editor.commands],
            }
            for editor in sorted(registry.editors.values(), key=lambda e: e.record_type)
        ],
        "oauth_providers": sorted(registry.providers()),
        "triggers": [
            {
                "id": spec.id,
                "title": spec.title,
                "category": spec.category,
                "variables": [v.name for v in spec.variables],
            }
            for spec in sorted(registry.triggers.values(), key=lambda s: s.id)
            if spec.id.startswith(prefix)
        ],
    }


def render(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def check_manifest(registry: Registry, path: Path) -> list[str]:
    """The differences between the manifest on disk and the code; empty when in sync."""
    expected = build_manifest(registry)
    try:
        actual = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [f"{path} does not exist; run `hostsim manifest --write`"]
    except ValueError as exc:
        return [f"{path} is not valid JSON ({exc}); run `hostsim manifest --write`"]
    problems = []
    for key in sorted(set(expected) | set(actual)):
        if expected.get(key) != actual.get(key):
            problems.append(f"{key!r} differs from the code; run `hostsim manifest --write`")
    return problems


def _param_line(p: Any) -> str:
    bits = [p.type.value]
    if p.required:
        bits.append("required")
    elif p.has_default and p.default not in ("", None):
        bits.append(f"default `{p.default}`")
    if p.choices:
        bits.append(" / ".join(f"`{c}`" for c in p.choices))
    if p.secret:
        bits.append("**secret**")
    if p.sets_variable:
        bits.append("names a variable it sets")
    return f"| `{p.name}` | {', '.join(bits)} | {p.help} |"


def _param_table(spec: Any) -> list[str]:
    if not spec.params:
        return []
    return ["| parameter | type | meaning |", "|---|---|---|", *map(_param_line, spec.params), ""]


def _error_line(spec: Any) -> list[str]:
    if not spec.errors:
        return []
    return ["Error codes: " + "; ".join(f"`{e.code}`: {e.meaning}" for e in spec.errors), ""]


def render_action_reference(registry: Registry) -> str:
    """docs/actions.md: every action's parameters and error codes, from robomail's and hostsim's
    own declarations."""
    registry = own_registrations(registry)
    lines = [
        "# Action reference",
        "",
        "Generated from the action declarations by `hostsim manifest --write`; do not edit.",
        "`hostsim describe ACTION` prints the same for one action.",
        "",
    ]
    specs = sorted(registry.actions.values(), key=lambda s: (s.category, s.title))
    for category in dict.fromkeys(s.category for s in specs):
        lines += [f"## {category}", ""]
        for spec in (s for s in specs if s.category == category):
            loop = " (loop: takes a `do:` body)" if spec.loop else ""
            lines += [f"### {spec.title}{loop}", "", f"Id: `{spec.id}`. {spec.description}", ""]
            lines += _param_table(spec) + _error_line(spec)
    lines += _trigger_reference(registry)
    lines += _error_table([*registry.actions.values(), *registry.triggers.values()])
    return "\n".join(lines).rstrip() + "\n"


def _error_classes() -> dict[str, type[ActionFailed]]:
    """Every error class loaded, by code: they say what a code means and what to do."""
    found: dict[str, type[ActionFailed]] = {}
    todo: list[type[ActionFailed]] = [ActionFailed]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.default_code, cls)
        todo += cls.__subclasses__()
    return found


def _error_table(specs: list[Any]) -> list[str]:
    """One row per error code the specs list: its meaning and, from its class, what to do."""
    import robomail_plugin.errors  # noqa: F401 - loads the classes that give the advice

    classes = _error_classes()
    codes = sorted({e.code for spec in specs for e in spec.errors})
    lines = ["## Error codes", "", "| code | meaning | what to do |", "|---|---|---|"]
    for code in codes:
        cls = classes.get(code)
        meaning = cls.meaning if cls else ""
        advice = cls.advice if cls else ""
        lines.append(f"| `{code}` | {meaning} | {advice} |")
    return [*lines, ""]


def _trigger_reference(registry: Registry) -> list[str]:
    """The triggers a task file names in ``trigger:`` (docs/triggers.md is the guide)."""
    triggers = sorted(registry.triggers.values(), key=lambda s: (s.category, s.title))
    if not triggers:
        return []
    lines = [
        "## Triggers",
        "",
        "A task file names one in `trigger: {type: TITLE, params: {...}}`; `hostsim watch` runs",
        "it and starts the task once per event with the variables below. Guide:",
        "[triggers.md](triggers.md).",
        "",
    ]
    for spec in triggers:
        lines += [f"### {spec.title}", "", f"Id: `{spec.id}`. {spec.description}", ""]
        lines += _param_table(spec)
        if spec.variables:
            lines += [
                "Each event sets: " + "; ".join(f"`{v.name}`: {v.help}" for v in spec.variables),
                "",
            ]
        lines += _error_line(spec)
    return lines


def check_reference(registry: Registry, path: Path) -> list[str]:
    try:
        on_disk = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        on_disk = ""
    if on_disk != render_action_reference(registry):
        return [f"{path} differs from the action declarations; run `hostsim manifest --write`"]
    return []
