"""The plugin manager: the contract's specs, plugins from entry points, blocking and tracing."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import attrs
import pluggy

from hostsim.runtime import entry_points
from robomail_plugin import hookspecs

BLOCK_ENV = "HOSTSIM_BLOCK_PLUGINS"  # comma-separated entry-point names not to load
TRACE_ENV = "HOSTSIM_TRACE"  # "1" writes every hook call to stderr, secrets masked


def blocked_from_env() -> set[str]:
    return {name.strip() for name in os.environ.get(BLOCK_ENV, "").split(",") if name.strip()}


@attrs.frozen
class PluginFailure:
    """An installed plugin that could not be loaded: hostsim starts without it and says so."""

    name: str
    dist: str
    error: str

    def line(self) -> str:
        return (
            f"plugin {self.name!r} ({self.dist}) was not loaded: {self.error}; "
            f"to start without trying it, set {BLOCK_ENV}={self.name}"
        )


def _error_text(exc: BaseException) -> str:
    """One short line: a plugin's error may span lines or quote a long path."""
    first = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class HostPluginManager(pluggy.PluginManager):
    """pluggy's manager, plus which distribution each entry-point plugin came from."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        #: entry-point name -> "distribution version", for every entry point found (loaded,
        #: blocked or failed)
        self.plugin_dists: dict[str, str] = {}
        #: the installed plugins that could not be loaded, in the order found
        self.failures: list[PluginFailure] = []

    def load_entry_points(self, group: str, cache_dir: Path | None = None) -> int:
        """Registers every plugin of ``group`` that is not blocked or registered already.

        A plugin that does not import or register is left out and listed in ``failures``: one
        broken plugin must not stop the host. With ``cache_dir`` the list of entry points found
        is remembered between starts (see hostsim/runtime/entry_points.py); an entry point
        remembered but no longer loading makes it scan the installed distributions again.
        """
        found, from_cache = entry_points.cached_scan(group, cache_dir)
        plugins, failures = self._load(found)
        if failures and from_cache:
            entry_points.forget(group, cache_dir)
            found, _ = entry_points.cached_scan(group, cache_dir)
            plugins, failures = self._load(found)
        for ep in found:
            self.plugin_dists.setdefault(ep.name, f"{ep.dist} {ep.version}")
        registered = 0
        for ep, plugin in plugins:
            try:
                self.register(plugin, name=ep.name)
                registered += 1
            except Exception as exc:  # pluggy refuses it (a malformed hookimpl, registered twice)
                if self.get_plugin(ep.name) is plugin:  # older pluggy may keep part of it
                    self.unregister(plugin)
                failures.append(self._failure(ep, exc))
        self.failures += failures
        return registered

    def _load(
        self, found: list[entry_points.Found]
    ) -> tuple[list[tuple[entry_points.Found, object]], list[PluginFailure]]:
        plugins, failures = [], []
        for ep in found:
            if not self._wanted(ep.name):
                continue
            try:
                plugins.append((ep, ep.load()))
            except Exception as exc:  # whatever a plugin's import raises, the others still load
                failures.append(self._failure(ep, exc))
        return plugins, failures

    @staticmethod
    def _failure(ep: entry_points.Found, exc: BaseException) -> PluginFailure:
        return PluginFailure(ep.name, f"{ep.dist} {ep.version}", _error_text(exc))

    def check_entry_point_hooks(self) -> None:
        """``check_pending``, but an entry-point plugin implementing an unknown hook is left out
        (a failure) instead of stopping the host; other plugins' mistakes still raise."""
        while True:
            try:
                self.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.get_name(exc.plugin)
                if name is None or name not in self.plugin_dists:
                    raise
                self.unregister(exc.plugin)
                self.failures.append(
                    PluginFailure(name, self.plugin_dists[name], _error_text(exc))
                )

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
    from hostsim.runtime.core_actions import CorePlugin

    pm = HostPluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in blocked_from_env() if blocked is None else set(blocked):
        pm.set_blocked(name)
    pm.register(CorePlugin(), name="hostsim-core")
    for plugin in extra_plugins:
        pm.register(plugin)
    if load_entry_points:
        pm.load_entry_points(hookspecs.ENTRY_POINT_GROUP, cache_dir)
    pm.check_entry_point_hooks()
    if trace if trace is not None else os.environ.get(TRACE_ENV) == "1":
        from hostsim.runtime.trace import trace_hook_calls  # only a traced run needs it

        trace_hook_calls(pm, sys.stderr.write)
    return pm
