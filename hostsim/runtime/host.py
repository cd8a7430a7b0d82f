"""The host as one object: plugins loaded, registrations checked, tasks run."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pluggy

from hostsim.runtime.plugins import make_plugin_manager
from hostsim.runtime.registry import Registry
from robomail_plugin.host_kit import configure, plugin_store_problem

# The runner and the task loader are loaded when a task runs: listing or describing actions
# needs neither (keeps `hostsim actions` start-up light).
if TYPE_CHECKING:
    from hostsim.runtime.runner import Runner, RunResult

HOME_ENV = "HOSTSIM_HOME"


def default_home() -> Path:
    """hostsim's data folder: HOSTSIM_HOME, else the XDG data folder."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hostsim"


class Host:
    """Loads plugins through entry points and runs tasks with them."""

    def __init__(self, pm: pluggy.PluginManager, *, home: Path, interactive: bool = False) -> None:
        self.pm = pm
        self.home = home
        self.interactive = interactive
        self.global_vars: dict[str, Any] = {}
        configure(pm, home / "data", interactive=interactive)
        self.registry = Registry.collect(pm)
        if pm.hook.robomail_credential_store.get_hookimpls():  # a plugin's store: check it now
            problem = plugin_store_problem(pm.hook)
            if problem:
                print(f"hostsim: {problem}", file=sys.stderr)

    @classmethod
    def load(
        cls,
        *,
        home: Path | None = None,
        interactive: bool = False,
        extra_plugins: tuple[object, ...] = (),
        load_entry_points: bool = True,
    ) -> Host:
        home = home or default_home()
        pm = make_plugin_manager(
            extra_plugins=extra_plugins,
            load_entry_points=load_entry_points,
            cache_dir=home / "cache",
        )
        return cls(pm, home=home, interactive=interactive)

    def runner(self, out: TextIO | None = None, *, verbose: bool = False) -> Runner:
        from hostsim.runtime.runner import Runner

        return Runner(
            self.registry,
            state_dir=self.home / "state",
            out=out,
            interactive=self.interactive,
            global_vars=self.global_vars,
            verbose=verbose,
        )

    def run_text(
        self,
        text: str,
        variables: dict[str, Any] | None = None,
        *,
        out: TextIO | None = None,
        verbose: bool = False,
    ) -> RunResult:
        from hostsim.runtime.task import load_task_text

        task = load_task_text(text, self.registry)
        return self.runner(out, verbose=verbose).run(task, variables)

    def run_file(
        self,
        path: str | Path,
        variables: dict[str, Any] | None = None,
        *,
        out: TextIO | None = None,
        verbose: bool = False,
    ) -> RunResult:
        from hostsim.runtime.task import load_task_file

        task = load_task_file(path, self.registry)
        return self.runner(out, verbose=verbose).run(task, variables)
