"""The plugin manifest (Home Assistant style), built from the registry and checked against disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hostsim.registry import Registry
from robomail_plugin.hookspecs import PROJECT_NAME

MANIFEST_PATH = Path("manifests") / f"{PROJECT_NAME}.json"
REFERENCE_PATH = Path("docs") / "actions.md"


def build_manifest(registry: Registry, distribution: str = PROJECT_NAME) -> dict[str, Any]:
    """Everything the manifest says comes from the registrations and the package metadata."""
    from importlib import metadata  # loaded here: start-up does not need it (entry_points.py)

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


def render_action_reference(registry: Registry) -> str:
    """docs/actions.md: every action's parameters and error codes, from the declarations."""
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
            if spec.params:
                lines += ["| parameter | type | meaning |", "|---|---|---|"]
                lines += [_param_line(p) for p in spec.params]
                lines.append("")
            if spec.errors:
                lines += [
                    "Error codes: " + "; ".join(f"`{e.code}`: {e.meaning}" for e in spec.errors),
                    "",
                ]
    return "\n".join(lines).rstrip() + "\n"


def check_reference(registry: Registry, path: Path) -> list[str]:
    try:
        on_disk = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        on_disk = ""
    if on_disk != render_action_reference(registry):
        return [f"{path} differs from the action declarations; run `hostsim manifest --write`"]
    return []
