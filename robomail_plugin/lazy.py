"""Runners that import an action's (or editor command's) implementation on its first call.

Declarations are imported at start-up (listing actions, a settings screen); the code that runs
them, and the libraries it needs, only when one of them first runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class LazyRun:
    """``module.function(*args, ctx, params)``, the module imported on the first call.

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
            self._target = getattr(importlib.import_module(self.module), self.function)
        return self._target

    def __call__(self, ctx: Any, params: Any) -> Any:
        return self.resolve()(*self.args, ctx, params)

    def __repr__(self) -> str:
        return f"lazy_run({self.module}.{self.function})"


def lazy_run(module: str, function: str, *args: Any) -> LazyRun:
    """A ``run`` callable ``(ctx, params)`` calling ``module.function(*args, ctx, params)``."""
    return LazyRun(module, function, *args)
