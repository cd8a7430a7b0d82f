"""The plugin manager: the contract's specs, plugins from entry points, blocking and tracing."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import pluggy

from hostsim import entry_points
from robomail_plugin import hookspecs

BLOCK_ENV = "HOSTSIM_BLOCK_PLUGINS"  # comma-separated entry-point names not to load
TRACE_ENV = "HOSTSIM_TRACE"  # "1" writes every hook call to stderr, secrets masked


def blocked_from_env() -> set[str]:
    return {name.strip() for name in os.environ.get(BLOCK_ENV, "").split(",") if name.strip()}


class HostPluginManager(pluggy.PluginManager):
    """pluggy's manager, plus which distribution each entry-point plugin came from."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        #: plugin name -> "distribution version", for plugins loaded from entry points
        self.plugin_dists: dict[str, str] = {}

    def load_entry_points(self, group: str, cache_dir: Path | None = None) -> int:
        """Registers every plugin of ``group`` that is not blocked or registered already.

        With ``cache_dir`` the list of entry points found is remembered between starts (see
        hostsim/entry_points.py); an entry point remembered but no longer loading makes it scan
        the installed distributions again.
        """
        found, from_cache = entry_points.cached_scan(group, cache_dir)
        try:
            plugins = [(ep, ep.load()) for ep in found if self._wanted(ep.name)]
        except (ImportError, AttributeError):
            if not from_cache:
                raise
            entry_points.forget(group, cache_dir)
            found, _ = entry_points.cached_scan(group, cache_dir)
            plugins = [(ep, ep.load()) for ep in found if self._wanted(ep.name)]
        for ep, plugin in plugins:
            self.register(plugin, name=ep.name)
            self.plugin_dists[ep.name] = f"{ep.dist} {ep.version}"
        return len(plugins)

    def _wanted(self, name: str) -> bool:
        return not self.is_blocked(name) and self.get_plugin(name) is None


def make_plugin_manager(
    *,
    load_entry_points: bool = True,
    extra_plugins: Iterable[object] = (),
    blocked: Iterable[str] | None = None,
    trace: bool | None = None,
    cache_dir: Path | None = None,
) -> HostPluginManager:
    """Builds a plugin manager as a real host does: specs first, then the installed plugins.

    The host's own core actions are registered through the same hooks as any plugin's.
    ``cache_dir`` keeps the list of installed plugins between starts (None: scan every time).
    """
    from hostsim.core_actions import CorePlugin

    pm = HostPluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in blocked_from_env() if blocked is None else set(blocked):
        pm.set_blocked(name)
    pm.register(CorePlugin(), name="hostsim-core")
    for plugin in extra_plugins:
        pm.register(plugin)
    if load_entry_points:
        pm.load_entry_points(hookspecs.ENTRY_POINT_GROUP, cache_dir)
    pm.check_pending()
    if trace if trace is not None else os.environ.get(TRACE_ENV) == "1":
        from hostsim.trace import trace_hook_calls  # only a traced run needs it

        trace_hook_calls(pm, sys.stderr.write)
    return pm
