"""Editor commands as command-line commands: each ``EditorCommand``'s params become options.

Nothing about OAuth is written here: ``hostsim oauth ...`` is whatever the registered editor
declares, so another plugin's editor gets a CLI the same way.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from hostsim.runtime.terminal import ask_person
from hostsim.runtime.variables import Masker
from robomail_plugin.host_kit import coerce
from robomail_plugin.schema import ActionFailed, CommandResult, EditorCommand, Param, ParamType


class CommandContext:
    """What a running editor command sees of the host (``schema.HostContext``).

    On the command line Ctrl-C is the cancel button: it interrupts the command directly, so
    ``cancelled()`` only turns true when a caller sets ``cancel``.
    """

    def __init__(self, *, interactive: bool) -> None:
        # a command asks only when someone can answer: a terminal on stdin
        self.interactive = interactive and sys.stdin.isatty()
        self.masker = Masker()
        self.cancel = threading.Event()

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def log(self, message: str, level: str = "info") -> None:
        prefix = "" if level == "info" else f"{level.upper()}: "
        click.echo(self.masker.mask(f"{prefix}{message}"), err=True)

    def add_secret(self, value: str) -> None:
        self.masker.add(value)

    def prompt(self, text: str, *, secret: bool = False) -> str:
        return ask_person(
            text,
            secret=secret,
            interactive=self.interactive,
            masker=self.masker,
            instead="it as an option",
        )


def _confirm(question: str, ctx: CommandContext) -> None:
    """Asks before a command that destroys or rotates something; without a terminal, --yes."""
    if not (ctx.interactive and sys.stdin.isatty()):
        raise click.UsageError(f"{question} Nobody is at the terminal to answer: add --yes.")
    if not click.confirm(question, default=False):
        raise click.ClickException("Cancelled; nothing was changed.")


_METAVARS = {ParamType.PATH: "PATH", ParamType.INT: "INTEGER", ParamType.FLOAT: "NUMBER",
             ParamType.LIST: "TEXT", ParamType.JSON: "JSON"}


def _first_sentence(text: str) -> str:
    """A command's short help: what it does, from the first sentence of its help."""
    return text.split(". ")[0].rstrip(".")


def _option_names(param: Param) -> list[str]:
    return ["--" + name.replace("_", "-") for name in (param.name, *param.aliases)]


def _click_param(param: Param) -> click.Parameter:
    help_text = param.help + (" (secret: leave out to be asked)" if param.secret else "")
    if param.positional:
        return click.Argument(
            [param.name], required=param.required, nargs=-1 if param.type is ParamType.LIST else 1
        )
    if param.type is ParamType.BOOL:  # a plain flag: no --no-no-browser twin
        return click.Option(
            [*_option_names(param), param.name], is_flag=True,
            default=bool(param.default) if param.has_default else False, help=help_text,
        )
    kwargs: dict[str, Any] = {"help": help_text, "required": param.required}
    if param.type is ParamType.CHOICE:
        kwargs["type"] = click.Choice(param.choices, case_sensitive=False)
    else:  # the option's metavar says what it takes: --to PATH, --timeout INTEGER
        kwargs["metavar"] = _METAVARS.get(param.type, "TEXT")
    if param.type is ParamType.LIST:
        kwargs["multiple"] = True
    if param.has_default and param.default is not None and not param.secret:
        kwargs["default"] = param.default
        kwargs["show_default"] = True
    return click.Option([*_option_names(param), param.name], **kwargs)


def _typed_values(command: EditorCommand, given: dict[str, Any]) -> dict[str, Any]:
    """Click hands over text (and tuples for repeated options); the command wants the types its
    params declare, and a bad value is reported as click's usage error naming the option."""
    params: dict[str, Any] = {}
    for p in command.params:
        value = given.get(p.name)
        if p.type is ParamType.LIST:
            value = list(value or ())
        elif value is not None:
            try:
                value = coerce(p, value)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=p.name) from None
        params[p.name] = value
    return params


def _mask_secret_values(
    command: EditorCommand, params: dict[str, Any], ctx: CommandContext
) -> None:
    """A secret given as an option must not come back in the command's output or log lines."""
    for p in command.params:
        if p.secret and isinstance(params.get(p.name), str):
            ctx.add_secret(params[p.name])


def _echo_result(result: CommandResult, ctx: CommandContext, *, as_json: bool) -> None:
    """The message for a person, or message and data as JSON for a script; masked either way."""
    if as_json:
        payload = {"message": result.message, "data": result.data}
        click.echo(ctx.masker.mask(json.dumps(payload, indent=2, ensure_ascii=False)))
    else:
        click.echo(ctx.masker.mask(result.message))


def _command_options(command: EditorCommand) -> list[click.Parameter]:
    """The params' options, plus --yes for a command that asks first and --json unless a param
    already takes that name."""
    options = [_click_param(p) for p in command.params]
    if command.confirm:
        options.append(click.Option(["--yes", "yes"], is_flag=True,
                                    help="do not ask for confirmation"))
    if not any("--json" in getattr(o, "opts", ()) for o in options):
        # also after the command (`hostsim oauth show X --json`), not only before it
        options.append(click.Option(["--json", "as_json"], is_flag=True,
                                    help="print the result as JSON"))
    return options


def to_click_command(
    command: EditorCommand, *, interactive: Callable[[], bool], as_json: Callable[[], bool]
) -> click.Command:
    def callback(**given: Any) -> None:
        params = _typed_values(command, given)
        ctx = CommandContext(interactive=interactive())
        if command.confirm and not given.pop("yes", False):
            _confirm(command.confirm, ctx)
        _mask_secret_values(command, params, ctx)
        try:
            result = command.run(ctx, params)
        except ActionFailed as exc:
            click.echo(ctx.masker.mask(f"error [{exc.code}]: {exc}"), err=True)
            sys.exit(1)
        _echo_result(result, ctx, as_json=bool(given.get("as_json") or as_json()))

    return click.Command(
        name=command.id.replace("_", "-"),
        callback=callback,
        params=_command_options(command),
        help=command.help or command.label,
        short_help=_first_sentence(command.help) or command.label,
    )
