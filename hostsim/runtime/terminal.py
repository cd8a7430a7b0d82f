"""Asking the person at the terminal, for actions and editor commands alike."""

from __future__ import annotations

import sys

from hostsim.runtime.variables import Masker
from robomail_plugin.schema import ActionFailed


def ask_person(text: str, *, secret: bool, interactive: bool, masker: Masker, instead: str) -> str:
    """The answer typed at the terminal (hidden for a secret, which is then masked everywhere).

    An empty answer is allowed: the caller decides what it means. With nobody at the terminal
    the error says what to give ``instead``.
    """
    if not (interactive and sys.stdin.isatty()):
        raise ActionFailed(
            f"{text}: no one is at the terminal to answer; give {instead}", code="input_needed"
        )
    import click  # only when someone is asked: `hostsim run` starts without click

    value = str(click.prompt(text, hide_input=secret, default="", show_default=False))
    if secret:
        masker.add(value)
    return value
