"""What the plugins registered, validated once at start, behind a small typed facade."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import pluggy

from robomail_plugin.schema import ActionSpec, EditorSpec, ProviderPreset


class RegistrationError(Exception):
    """Two plugins registered the same thing, or a plugin registered something malformed."""


def _flatten(results: Iterable[Any], kind: type, hook: str) -> list[Any]:
    items: list[Any] = []
    for result in results:
        for item in result or ():
            if not isinstance(item, kind):
                raise RegistrationError(
                    f"{hook} returned {type(item).__name__}, not {kind.__name__}"
                )
            items.append(item)
    return items


@attrs.define
class Registry:
    """Actions by id and title, credential editors by record type, provider presets by key."""

    pm: pluggy.PluginManager
    actions: dict[str, ActionSpec] = attrs.field(factory=dict)
    editors: dict[str, EditorSpec] = attrs.field(factory=dict)

    @classmethod
    def collect(cls, pm: pluggy.PluginManager) -> Registry:
        registry = cls(pm)
        titles: dict[str, str] = {}
        for spec in _flatten(pm.hook.robomail_register_actions(), ActionSpec, "register_actions"):
            if spec.id in registry.actions:
                raise RegistrationError(f"two plugins register the action id {spec.id!r}")
            if spec.title.lower() in titles:
                raise RegistrationError(
                    f"actions {titles[spec.title.lower()]!r} and {spec.id!r} share the title "
                    f"{spec.title!r}"
                )
            titles[spec.title.lower()] = spec.id
            registry.actions[spec.id] = spec
        editors = pm.hook.robomail_register_credential_editors()
        for editor in _flatten(editors, EditorSpec, "register_credential_editors"):
            if editor.record_type in registry.editors:
                raise RegistrationError(f"two plugins register the editor {editor.record_type!r}")
            registry.editors[editor.record_type] = editor
        return registry

    def action(self, id_or_title: str) -> ActionSpec | None:
        """Finds an action by its id or by its exact title (case-insensitive)."""
        if id_or_title in self.actions:
            return self.actions[id_or_title]
        wanted = id_or_title.strip().lower()
        for spec in self.actions.values():
            if spec.title.lower() == wanted:
                return spec
        return None

    def providers(self) -> dict[str, ProviderPreset]:
        presets: dict[str, ProviderPreset] = {}
        for preset in _flatten(
            self.pm.hook.robomail_oauth_providers(), ProviderPreset, "providers"
        ):
            if preset.key in presets:
                raise RegistrationError(f"two plugins offer the OAuth provider {preset.key!r}")
            presets[preset.key] = preset
        return presets

    def get_access_token(self, record_name: str) -> str | None:
        return self.pm.hook.robomail_get_access_token(record_name=record_name)

    def plugin_names(self) -> list[tuple[str, str]]:
        """(name, distribution or 'built in') of each registered plugin."""
        dists: dict[str, str] = getattr(self.pm, "plugin_dists", {})
        return [(name, dists.get(name, "built in")) for name, _ in self.pm.list_name_plugin()]
