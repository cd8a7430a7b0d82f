"""robomail: e-mail actions and an OAuth parameters editor for pluggy automation hosts."""

from robomail_plugin.hookspecs import PROJECT_NAME, hookimpl, hookspec

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]
