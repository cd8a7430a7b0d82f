"""The plugin manifest (Home Assistant style), built from the registry and checked against disk."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

from hostsim.registry import Registry
from robomail_plugin.hookspecs import PROJECT_NAME

MANIFEST_PATH = Path("manifests") / f"{PROJECT_NAME}.json"


def build_manifest(registry: Registry, distribution: str = PROJECT_NAME) -> dict[str, Any]:
    """Everything the manifest says comes from the registrations and the package metadata."""
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
