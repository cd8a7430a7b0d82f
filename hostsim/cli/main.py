"""`hostsim`: a minimal automation host on the command line.

Start-up stays light: mail, crypto and HTTP libraries load only when a command needs them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from hostsim.cli.manifest import (
    MANIFEST_PATH,
    PROJECT_ROOT,
    REFERENCE_PATH,
    build_manifest,
    check_manifest,
    check_reference,
    render,
    render_action_reference,
)
from hostsim.runtime.host import Host
from hostsim.runtime.plugins import BLOCK_ENV
from hostsim.runtime.registry import RegistrationError
from robomail_plugin.schema import ActionFailed, ActionSpec, EditorSpec


def _host(interactive: bool = False) -> Host:
    """The host with every plugin that loads; each one that does not is named on one line."""
    try:
        host = Host.load(interactive=interactive)
    except RegistrationError as exc:
        names = exc.plugins
        hint = ""
        if len(names) == 1:
            hint = f"; to start without it, set {BLOCK_ENV}={names[0]}"
        elif names:
            hint = f"; to start without one of them, set {BLOCK_ENV}=" + " or ".join(names)
        raise click.ClickException(f"a plugin could not be loaded: {exc}{hint}") from None
    for failure in getattr(host.pm, "failures", ()):
        click.echo(f"hostsim: {failure.line()}", err=True)
    return host


def _suggest(ctx: click.Context, group: click.Group, wrong: str) -> str:
    """' Did you mean X?' for a mistyped command name, or ''."""
    import difflib

    close = difflib.get_close_matches(wrong, group.list_commands(ctx), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


class EditorGroup(click.Group):
    """`hostsim <record type> <command>`: the commands a registered credential editor declares."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            hint = _suggest(ctx, self, args[0]) if args else ""
            raise click.UsageError(f"{exc.message}{hint}", ctx=exc.ctx) from None

    def __init__(self, editor: EditorSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.editor = editor

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [c.id.replace("_", "-") for c in self.editor.commands]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from hostsim.cli.commands import to_click_command

        for command in self.editor.commands:
            if cmd_name in (command.id, command.id.replace("_", "-")):
                return to_click_command(
                    command,
                    interactive=lambda: True,
                    as_json=lambda: bool(ctx.params.get("as_json")),
                )
        return None


def _editor_group(name: str, editor: EditorSpec) -> EditorGroup:
    return EditorGroup(
        editor,
        name=name,
        params=[click.Option(["--json", "as_json"], is_flag=True, help="print results as JSON")],
        help=f"{editor.title}: {editor.help}" if editor.help else editor.title,
        short_help=f"{editor.title} (credential editor)",
    )


class HostGroup(click.Group):
    """hostsim's own commands, and `hostsim <record type> ...` for every registered editor.

    The host (and with it every plugin) loads only when an editor's commands are asked for or
    listed: `hostsim actions` and the other commands start as fast as before.
    """

    def _editors(self, ctx: click.Context) -> dict[str, EditorSpec]:
        if "hostsim.editors" not in ctx.meta:
            registry = _host(interactive=True).registry
            ctx.meta["hostsim.editors"] = {
                e.record_type.replace("_", "-"): e for e in registry.editors.values()
            }
        editors: dict[str, EditorSpec] = ctx.meta["hostsim.editors"]
        return editors

    def list_commands(self, ctx: click.Context) -> list[str]:
        own = super().list_commands(ctx)
        try:
            editors = self._editors(ctx)
        except click.ClickException as exc:  # --help still lists hostsim's own commands
            click.echo(f"hostsim: {exc.format_message()}", err=True)
            editors = {}
        return sorted({*own, *editors})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        name = cmd_name.replace("_", "-")
        editor = self._editors(ctx).get(name)
        return None if editor is None else _editor_group(name, editor)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:  # an editor's plugin may be missing, blocked or broken
            hint = _suggest(ctx, self, args[0]) if args else ""
            raise click.UsageError(
                f"{exc.message}{hint} Besides its own commands hostsim has one per credential "
                "editor "
                "the loaded plugins register (`hostsim --help` and `hostsim plugins` list them).",
                ctx=exc.ctx,
            ) from None


def _param_doc(p: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": p.name, "type": p.type.value, "help": p.help}
    if p.required:
        doc["required"] = True
    if p.has_default:
        doc["default"] = p.default
    if p.choices:
        doc["choices"] = list(p.choices)
    if p.secret:
        doc["secret"] = True
    if p.sets_variable:
        doc["sets_variable"] = True
    return doc


def action_doc(spec: ActionSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "title": spec.title,
        "category": spec.category,
        "loop": spec.loop,
        "description": spec.description,
        "params": [_param_doc(p) for p in spec.params],
        "errors": {e.code: e.meaning for e in spec.errors},
    }


ENVIRONMENT_HELP = """\b
Environment:
  HOSTSIM_HOME            hostsim's data folder (default ~/.local/share/hostsim)
  ROBOMAIL_HOME           robomail's credential store (default: hostsim's data folder)
  ROBOMAIL_KEY            the store's encryption key (else the keyring or a key file)
  ROBOMAIL_EXPORT_PASSPHRASE  the passphrase for export/import with secrets
  HOSTSIM_BLOCK_PLUGINS   entry-point names not to load, comma-separated
  HOSTSIM_TRACE=1         print every hook call (secrets masked)
  HOSTSIM_PLUGIN_CACHE=0  scan the installed plugins at every start
"""


@click.group(cls=HostGroup, epilog=ENVIRONMENT_HELP)
@click.version_option(package_name="robomail")
def main() -> None:
    """hostsim: load automation plugins, run task files, and try them on a private mail server."""


@main.command()
def plugins() -> None:
    """List the loaded plugins (HOSTSIM_BLOCK_PLUGINS=a,b blocks some)."""
    host = _host()
    for name, dist in host.registry.plugin_names():
        click.echo(f"{name}\t{dist}")
    from robomail_plugin.host_kit import credential_store_in_use

    try:
        click.echo(f"credential store: {credential_store_in_use(host.pm.hook, host.home / 'data')}")
    except ActionFailed as exc:  # a malformed ROBOMAIL_STORE says what is wrong, never its text
        click.echo(f"credential store: {exc}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print every action's full declaration")
def actions(as_json: bool) -> None:
    """List the actions the plugins offer."""
    specs = sorted(_host().registry.actions.values(), key=lambda s: (s.category, s.title))
    if as_json:
        click.echo(json.dumps([action_doc(s) for s in specs], indent=2, ensure_ascii=False))
        return
    for spec in specs:
        click.echo(f"{spec.id:<36} {spec.title}{'  (loop)' if spec.loop else ''}")


@main.command()
@click.argument("action")
def describe(action: str) -> None:
    """Show an action's parameters, the variables it sets and its error codes."""
    spec = _host().registry.action(action)
    if spec is None:
        from hostsim.runtime.task import did_you_mean

        titles = [a.title for a in _host().registry.actions.values()]
        raise click.ClickException(
            f"no action {action!r}{did_you_mean(action, titles)}; `hostsim actions` lists them"
        )
    click.echo(f"{spec.title}  [{spec.id}]{'  (loop: takes a do: body)' if spec.loop else ''}")
    if spec.description:
        click.echo(f"  {spec.description}")
    click.echo("parameters:")
    for p in spec.params:
        bits = [p.type.value]
        if p.required:
            bits.append("required")
        elif p.has_default:
            bits.append(f"default {p.default!r}")
        if p.choices:
            bits.append("one of " + "|".join(p.choices))
        if p.secret:
            bits.append("secret")
        if p.sets_variable:
            bits.append("names a variable it sets")
        click.echo(f"  {p.name} ({', '.join(bits)}): {p.help}")
    if spec.errors:
        click.echo("error codes:")
        for e in spec.errors:
            click.echo(f"  {e.code}: {e.meaning}")


def _parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    """NAME=VALUE pairs; an error names the --var by its position, as its text may be a password."""
    out = {}
    for position, pair in enumerate(pairs, start=1):
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.UsageError(
                f"--var number {position} is not NAME=VALUE (its text is not shown: it may be "
                "a secret)"
            )
        out[name] = value
    return out


@main.command()
@click.argument("task_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE", help="set a variable")
@click.option(
    "--vars-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the final variables as JSON (secrets masked), also when the task stops early",
)
@click.option("--verbose", "-v", is_flag=True,
              help="log the steps of a loop's body on every pass, not just the first")
def run(task_file: Path, pairs: tuple[str, ...], vars_out: Path | None, verbose: bool) -> None:
    """Run a task file. Exit status: 0 finished, 1 failed, 3 finished with errors (steps under
    on_error: continue), 130 interrupted by Ctrl-C."""
    from hostsim.cli.quickrun import finish  # loaded when a task runs: keeps start-up light
    from hostsim.runtime.task import TaskError

    host = _host(interactive=True)
    try:
        result = host.run_file(task_file, _parse_vars(pairs), out=sys.stdout, verbose=verbose)
    except TaskError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(finish(result, vars_out))  # the same ending as the fast path (quickrun)


@main.command()
@click.argument(
    "task_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE",
              help="set a variable (for the tasks and their trigger params)")
@click.option("--once", is_flag=True,
              help="handle what is waiting now, then exit (for cron); the first run only "
              "records what is there")
@click.option("--queue-size", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="events waiting per task; when full the trigger reads no new mail until the "
              "task catches up (nothing is lost)")
@click.option("--verbose", "-v", is_flag=True, help="print each task's step log under its event")
def watch(
    task_files: tuple[Path, ...], pairs: tuple[str, ...], once: bool, queue_size: int,
    verbose: bool,
) -> None:
    """Run the triggers of task files (their `trigger:`): each event starts its task, one at a
    time per task, with the event's variables (Msg, MsgUid). One line per event and per
    reconnection; Ctrl-C or SIGTERM stops (running tasks finish). Exit status: 0 stopped or
    --once done, 1 a trigger failed, 3 a task failed (--once). See docs/triggers.md."""
    from hostsim.runtime.task import TaskError
    from hostsim.runtime.watch import run_watch

    host = _host()
    try:
        code = run_watch(host, task_files, _parse_vars(pairs), once=once,
                         queue_size=queue_size, verbose=verbose)
    except TaskError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


@main.command()
@click.option("--check", "mode", flag_value="check", help="fail when manifests/ is out of date")
@click.option("--write", "mode", flag_value="write", help="write manifests/ from the code")
@click.option("--path", type=click.Path(path_type=Path), default=MANIFEST_PATH, show_default=True)
def manifest(mode: str | None, path: Path) -> None:
    """Print, check or write robomail's manifest (and docs/actions.md, the action reference).

    Both describe robomail's and hostsim's own registrations, whatever else is installed; the
    files are those of the checkout hostsim runs from, whatever the current folder.
    """
    if mode and not (PROJECT_ROOT / "pyproject.toml").is_file():
        raise click.ClickException(
            f"--{mode} works on robomail's source checkout (pip install -e); hostsim runs from "
            f"{PROJECT_ROOT}, which is not one"
        )
    registry = _host().registry
    if mode == "write":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(build_manifest(registry)), encoding="utf-8")
        REFERENCE_PATH.parent.mkdir(parents=True, exist_ok=True)
        REFERENCE_PATH.write_text(render_action_reference(registry), encoding="utf-8")
        click.echo(f"wrote {path} and {REFERENCE_PATH}")
    elif mode == "check":
        problems = check_manifest(registry, path) + check_reference(registry, REFERENCE_PATH)
        for problem in problems:
            click.echo(problem, err=True)
        if problems:
            sys.exit(1)
        click.echo(f"{path} is up to date")
    else:
        click.echo(render(build_manifest(registry)), nl=False)


@main.command("fake-provider")
@click.option("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
@click.option(
    "--persona",
    type=click.Choice(["generic", "google", "microsoft"]),
    default="generic",
    show_default=True,
    help="answer as Google or Microsoft do (paths, token answers, error shapes)",
)
def fake_provider(port: int, persona: str) -> None:
    """Serve the fake OAuth provider for development until Ctrl-C."""
    from hostsim.devservers.fakeprovider import serve_forever

    serve_forever(port=port, persona=persona)


@main.command()
@click.option("--port", type=int, default=0, help="port on 127.0.0.1 (0: the OS picks a free one)")
@click.option("--no-open", is_flag=True, help="print the address but do not start a browser")
def ui(port: int, no_open: bool) -> None:
    """Serve the settings screen (every plugin's credential editor) on 127.0.0.1 until Ctrl-C.

    It prints the address to open, with a token only this launch knows (see
    docs/settings-screen.md for what the screen protects against).
    """
    try:
        from hostsim.ui.server import serve_forever as serve_ui
    except ImportError as exc:  # Flask is an extra: robomail[ui]
        raise click.ClickException(
            f"the settings screen needs {exc.name or 'Flask'}: pip install 'robomail[ui]'"
        ) from None
    try:
        serve_ui(_host(), port=port, open_browser=not no_open)
    except OSError as exc:  # the port is taken, most likely
        raise click.ClickException(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}") from None


@main.command()
@click.option(
    "--record",
    default="sandbox",
    show_default=True,
    help="name of the OAuth record made in your credential store while the sandbox runs",
)
@click.option("--no-record", is_flag=True, help="make no OAuth record and no sample mail")
def sandbox(record: str, no_record: bool) -> None:
    """Start a private Dovecot and fake OAuth provider, print how to connect, wait for Ctrl-C.

    It also makes an OAuth record (with its refresh token) and sample mail, and prints the
    `hostsim run` command that tries an example task on them. Ctrl-C or SIGTERM removes the
    sandbox's folder and the record.
    """
    from hostsim.devservers.sandbox import SandboxError, serve_forever

    try:
        serve_forever(record=None if no_record else record)
    except SandboxError as exc:  # says what to do; a traceback would only bury it
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--keep-files", is_flag=True, help="keep the demo's folder and print where it is")
def demo(keep_files: bool) -> None:
    """Run the demo: sandbox + fake provider + a sample task, and print what happened."""
    from hostsim.cli.demo import run_demo
    from hostsim.devservers.sandbox import SandboxError

    try:
        code = run_demo(keep_files=keep_files)
    except SandboxError as exc:  # says what to do; a traceback would only bury it
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
