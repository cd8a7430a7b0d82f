"""Functions whose module is imported on their first call.

Declarations are imported at start-up (listing actions, a settings screen); the code that runs
them, and the libraries it needs, only when one of them first runs. A declaration module writes

    if TYPE_CHECKING:
        from robomail_plugin.imap import commands
    else:
        commands = deferred_module("robomail_plugin.imap.commands")

and then names ``commands.close`` as it would the real function: mypy checks the real one, and
at run time the name costs nothing until it is called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class LazyRun:
    """``module.function(*args, *call_args)``, the module imported on the first call.

    Like ``functools.partial(module.function, *args)``, but naming the function by its module
    path, so declaring it costs nothing. Whatever the function returns (a loop action's
    iterator, a ``CommandResult``) passes through unchanged.
    """

    __slots__ = ("module", "function", "args", "_target")

    def __init__(self, module: str, function: str, *args: Any) -> None:
        self.module = module
        self.function = function
        self.args = args
        self._target: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        """The function itself (importing its module the first time)."""
        if self._target is None:
            found: Any = importlib.import_module(self.module)
            for name in self.function.split("."):  # a method: "OAuthEditor.add"
                found = getattr(found, name)
            self._target = found
        return self._target

    def __getattr__(self, name: str) -> LazyRun:
        """``editor.OAuthEditor.add``: an attribute of what this names, still not imported."""
        if name.startswith("__"):
            raise AttributeError(name)
        return LazyRun(self.module, f"{self.function}.{name}", *self.args)

    def __call__(self, *call_args: Any) -> Any:
        return self.resolve()(*self.args, *call_args)

    def __repr__(self) -> str:
        return f"lazy_run({self.module}.{self.function})"


def lazy_run(module: str, function: str, *args: Any) -> LazyRun:
    """A callable calling ``module.function(*args, ...)``, importing ``module`` on first call."""
    return LazyRun(module, function, *args)


class DeferredModule:
    """Stands for a module not imported yet: each attribute is a ``LazyRun`` of that name."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, function: str) -> LazyRun:
        if function.startswith("__"):  # copy, pickle and help probe dunders: not functions
            raise AttributeError(function)
        return LazyRun(self._name, function)

    def __repr__(self) -> str:
        return f"deferred_module({self._name})"


def deferred_module(name: str) -> Any:
    """A stand-in for module ``name`` whose functions import it when first called."""
    return DeferredModule(name)
