"""What the plugins registered, validated once at start, behind a small typed facade."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import pluggy

from robomail_plugin.schema import ActionSpec, EditorSpec, ProviderPreset, TriggerSpec


class RegistrationError(Exception):
    """Two plugins registered the same thing, or a plugin registered something malformed.

    ``plugins`` names the plugins involved, so the message can say which one to block.
    """

    def __init__(self, message: str, plugins: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.plugins = tuple(plugins)


def _calls(pm: pluggy.PluginManager, hook: str) -> Iterator[tuple[str, list[Any]]]:
    """Each plugin's answer to a registration hook, in pluggy's call order, with its name.

    Calling plugin by plugin (still through the manager, so tracing sees it) tells whose
    declaration is malformed or clashes; an exception is reported with the plugin's name.
    """
    caller = getattr(pm.hook, hook)
    everyone = pm.get_plugins()
    for impl in reversed(caller.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue
        only = pm.subset_hook_caller(hook, [p for p in everyone if p is not impl.plugin])
        try:
            results = only()
        except Exception as exc:
            raise RegistrationError(
                f"plugin {impl.plugin_name!r}: {hook} raised {type(exc).__name__}: {exc}",
                [impl.plugin_name],
            ) from exc
        yield impl.plugin_name, [item for result in results for item in result or ()]


def _checked(items: list[Any], kind: type, hook: str, plugin: str) -> list[Any]:
    for item in items:
        if not isinstance(item, kind):
            raise RegistrationError(
                f"plugin {plugin!r}: {hook} returned {type(item).__name__}, not {kind.__name__}",
                [plugin],
            )
    return items


def _clash(what: str, first: str, second: str) -> RegistrationError:
    if first == second:
        return RegistrationError(f"plugin {first!r} registers {what} twice", [first])
    return RegistrationError(
        f"plugins {first!r} and {second!r} both register {what}", [first, second]
    )


@attrs.define
class Registry:
    """Actions by id and title, credential editors by record type, provider presets by key,
    triggers by id and title.

    ``owners`` says which plugin registered each action (``"action", id``), editor
    (``"editor", record type``) and trigger (``"trigger", id``); ``only`` narrows a registry
    to some plugins' registrations.
    """

    pm: pluggy.PluginManager
    actions: dict[str, ActionSpec] = attrs.field(factory=dict)
    editors: dict[str, EditorSpec] = attrs.field(factory=dict)
    triggers: dict[str, TriggerSpec] = attrs.field(factory=dict)
    owners: dict[tuple[str, str], str] = attrs.field(factory=dict)
    plugins: frozenset[str] | None = None  # None: every plugin

    @classmethod
    def collect(cls, pm: pluggy.PluginManager) -> Registry:
        registry = cls(pm)
        titles: dict[str, str] = {}
        for plugin, items in _calls(pm, "robomail_register_actions"):
            for spec in _checked(items, ActionSpec, "register_actions", plugin):
                if spec.id in registry.actions:
                    raise _clash(
                        f"the action id {spec.id!r}", registry.owners["action", spec.id], plugin
                    )
                if spec.title.lower() in titles:
                    other = titles[spec.title.lower()]
                    owners = (registry.owners["action", other], plugin)
                    raise RegistrationError(
                        f"actions {other!r} and {spec.id!r} share the title {spec.title!r} "
                        f"(plugin {owners[0]!r}, plugin {owners[1]!r})",
                        dict.fromkeys(owners),
                    )
                titles[spec.title.lower()] = spec.id
                registry.actions[spec.id] = spec
                registry.owners["action", spec.id] = plugin
        for plugin, items in _calls(pm, "robomail_register_credential_editors"):
            for editor in _checked(items, EditorSpec, "register_credential_editors", plugin):
                if editor.record_type in registry.editors:
                    raise _clash(
                        f"the editor {editor.record_type!r}",
                        registry.owners["editor", editor.record_type],
                        plugin,
                    )
                registry.editors[editor.record_type] = editor
                registry.owners["editor", editor.record_type] = plugin
        registry._collect_triggers()
        return registry

    def _collect_triggers(self) -> None:
        titles: dict[str, str] = {}
        for plugin, items in _calls(self.pm, "robomail_register_triggers"):
            for spec in _checked(items, TriggerSpec, "register_triggers", plugin):
                if spec.id in self.triggers:
                    raise _clash(
                        f"the trigger id {spec.id!r}", self.owners["trigger", spec.id], plugin
                    )
                other = titles.get(spec.title.lower())
                if other is not None:
                    owners = (self.owners["trigger", other], plugin)
                    raise RegistrationError(
                        f"triggers {other!r} and {spec.id!r} share the title {spec.title!r} "
                        f"(plugin {owners[0]!r}, plugin {owners[1]!r})",
                        dict.fromkeys(owners),
                    )
                titles[spec.title.lower()] = spec.id
                self.triggers[spec.id] = spec
                self.owners["trigger", spec.id] = plugin

    def only(self, plugins: Iterable[str]) -> Registry:
        """What these plugins registered, and nothing another installed plugin adds."""
        names = frozenset(plugins)
        owned = {key: owner for key, owner in self.owners.items() if owner in names}
        return Registry(
            self.pm,
            actions={k: v for k, v in self.actions.items() if ("action", k) in owned},
            editors={k: v for k, v in self.editors.items() if ("editor", k) in owned},
            triggers={k: v for k, v in self.triggers.items() if ("trigger", k) in owned},
            owners=owned,
            plugins=names,
        )

    def action(self, id_or_title: str) -> ActionSpec | None:
        """Finds an action by its id or by its exact title (case-insensitive)."""
        if id_or_title in self.actions:
            return self.actions[id_or_title]
        wanted = id_or_title.strip().lower()
        for spec in self.actions.values():
            if spec.title.lower() == wanted:
                return spec
        return None

    def trigger(self, id_or_title: str) -> TriggerSpec | None:
        """Finds a trigger by its id or by its exact title (case-insensitive)."""
        if id_or_title in self.triggers:
            return self.triggers[id_or_title]
        wanted = id_or_title.strip().lower()
        for spec in self.triggers.values():
            if spec.title.lower() == wanted:
                return spec
        return None

    def providers(self) -> dict[str, ProviderPreset]:
        presets: dict[str, ProviderPreset] = {}
        offered_by: dict[str, str] = {}
        for plugin, items in _calls(self.pm, "robomail_oauth_providers"):
            if self.plugins is not None and plugin not in self.plugins:
                continue
            for preset in _checked(items, ProviderPreset, "providers", plugin):
                if preset.key in presets:
                    raise _clash(
                        f"the OAuth provider {preset.key!r}", offered_by[preset.key], plugin
                    )
                presets[preset.key] = preset
                offered_by[preset.key] = plugin
        return presets

    def get_access_token(self, record_name: str) -> str | None:
        return self.pm.hook.robomail_get_access_token(record_name=record_name)

    def plugin_names(self) -> list[tuple[str, str]]:
        """(name, what it is) of each plugin: its distribution, 'built in', 'registered at run
        time' (by the host or another plugin), 'blocked (...)' or 'not loaded (...): error'."""
        dists: dict[str, str] = getattr(self.pm, "plugin_dists", {})
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                rows.append((name, f"blocked ({dists[name]})" if name in dists else "blocked"))
            elif name in dists:
                rows.append((name, dists[name]))
            elif type(plugin).__module__.partition(".")[0] == __name__.partition(".")[0]:
                rows.append((name, "built in"))
            else:
                rows.append((name, "registered at run time"))
        for failure in getattr(self.pm, "failures", ()):
            rows.append((failure.name, f"not loaded ({failure.dist}): {failure.error}"))
        return rows
