"""`hostsim run` without click: the command a scheduler starts every few minutes starts fast.

Importing click (and the CLI's other commands) was a fifth of a one-step `hostsim run`. The
console script hands `run` here first; anything this parser does not take as it is (``--help``,
an unknown option, a malformed ``--var``, a plugin that will not load) returns None and goes to
the click command in ``cli.py``, which says what is wrong. Both report a result through
``finish``, so their messages and exit statuses are the same.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: exit statuses of `hostsim run` (README: hostsim commands)
#: exit statuses of `hostsim run` (README: hostsim commands)
EXIT_FAILED, EXIT_FINISHED_WITH_ERRORS, EXIT_INTERRUPTED = 1, 3, 130


def parse(args: list[str]) -> tuple[Path, dict[str, str], Path | None, bool] | None:
    """``TASK_FILE [--var NAME=VALUE]... [--vars-out PATH] [--verbose|-v]``, or None."""
    task: Path | None = None
    variables: dict[str, str] = {}
    vars_out: Path | None = None
    verbose = False
    at = 0
    while at < len(args):
        arg = args[at]
        if arg in ("--var", "--vars-out") or arg.startswith(("--var=", "--vars-out=")):
            option, eq, value = arg.partition("=")
            if not eq:
                if at + 1 >= len(args):
                    return None
                at += 1
                value = args[at]
            if option == "--vars-out":
                if not value:
                    return None
                vars_out = Path(value)
            else:
                name, sep, text = value.partition("=")
                if not sep or not name:
                    return None  # click's own usage error, naming the --var by position
                variables[name] = text
        elif arg in ("--verbose", "-v"):
            verbose = True
        elif arg.startswith("-") or task is not None:
            return None
        else:
            task = Path(arg)
        at += 1
    if task is None or task.is_dir() or (vars_out is not None and vars_out.is_dir()):
        return None  # click says what is wrong with them
    return task, variables, vars_out, verbose


def main(args: list[str]) -> int | None:
    """Runs `hostsim run` and returns its exit status, or None for click to handle."""
    parsed = parse(args)
    if parsed is None:
        return None
    try:
        return _run(*parsed)
    except KeyboardInterrupt:  # before or after the task (the runner handles it during)
        print("Aborted!", file=sys.stderr)
        return 1


def _run(
    task_file: Path, variables: dict[str, str], vars_out: Path | None, verbose: bool
) -> int | None:
    from hostsim.runtime.host import Host
    from hostsim.runtime.registry import RegistrationError

    try:
        host = Host.load(interactive=True)
    except RegistrationError:
        return None  # the click command names the plugin and how to start without it
    for failure in getattr(host.pm, "failures", ()):
        print(f"hostsim: {failure.line()}", file=sys.stderr)
    from hostsim.runtime.task import TaskError

    try:
        result = host.run_file(task_file, variables, out=sys.stdout, verbose=verbose)
    except TaskError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return finish(result, vars_out)


def finish(result: Any, vars_out: Path | None) -> int:
    """Writes ``--vars-out`` and the closing line; the exit status of the finished task."""
    if vars_out is not None:
        vars_out.write_text(json.dumps(result.variables, indent=2, ensure_ascii=False) + "\n")
    if result.interrupted:
        print(f"task interrupted at {result.interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not result.ok:
        print(
            f"task failed at step {result.error.step} [{result.error.code}]: "
            f"{result.error.description}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if result.errors:
        print(f"task finished with {result.errors} error(s) (on_error: continue)", file=sys.stderr)
        return EXIT_FINISHED_WITH_ERRORS
    return 0
