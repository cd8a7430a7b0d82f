"""The plugin manager: the contract's specs, plugins from entry points, blocking and tracing."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

import pluggy

from robomail_plugin import hookspecs

BLOCK_ENV = "HOSTSIM_BLOCK_PLUGINS"  # comma-separated entry-point names not to load
TRACE_ENV = "HOSTSIM_TRACE"  # "1" writes every hook call to stderr


def blocked_from_env() -> set[str]:
    return {name.strip() for name in os.environ.get(BLOCK_ENV, "").split(",") if name.strip()}


def make_plugin_manager(
    *,
    load_entry_points: bool = True,
    extra_plugins: Iterable[object] = (),
    blocked: Iterable[str] | None = None,
    trace: bool | None = None,
) -> pluggy.PluginManager:
    """Builds a plugin manager as a real host does: specs first, then the installed plugins.

    The host's own core actions are registered through the same hooks as any plugin's.
    """
    from hostsim.core_actions import CorePlugin

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in blocked_from_env() if blocked is None else set(blocked):
        pm.set_blocked(name)
    pm.register(CorePlugin(), name="hostsim-core")
    for plugin in extra_plugins:
        pm.register(plugin)
    if load_entry_points:
        pm.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
    pm.check_pending()
    if trace if trace is not None else os.environ.get(TRACE_ENV) == "1":
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm
