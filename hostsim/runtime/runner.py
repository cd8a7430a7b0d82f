"""Runs a task's steps: binds parameters, runs loops, keeps connections, handles errors.

The run context is what actions see of the host (``schema.ActionContext``). Every line it logs
passes through the masker, so no secret reaches the step log or ``--vars-out``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import attrs

from hostsim.runtime.task import Step, Task, TaskError, load_task_file
from hostsim.runtime.terminal import ask_person
from hostsim.runtime.variables import MASK, SECRET_NAME_RE, Masker, Variables, to_text
from robomail_plugin.host_kit import bind_params
from robomail_plugin.schema import (
    ActionFailed,
    ActionSpec,
    Closable,
    ConnectionInUse,
    ConnectionNotOpen,
    ParamType,
    WrongConnectionKind,
)

LEVELS = ("debug", "info", "warning", "error")
LOG_MESSAGE_ID = "hostsim.log_message"
SET_VARIABLE_ID = "hostsim.set_variable"
MAX_HANDLER_CHAIN = 10  # on_error handlers of handlers: a task file, then up to 9 more


@attrs.frozen
class ErrorInfo:
    code: str
    description: str
    step: int
    action: str
    server_reply: str | None = None


@attrs.define
class RunResult:
    ok: bool
    variables: dict[str, Any]
    log: list[str]
    error: ErrorInfo | None = None
    handled_by: str | None = None
    errors: int = 0  # steps that failed under on_error: continue
    interrupted: str | None = None  # where Ctrl-C stopped the task ("step 2 (...), 85 of 600")


@attrs.define
class LoopPosition:
    """Where a running loop step is: shown as progress and in the interrupted message."""

    step: Step
    done: int = 0
    total: int | None = None

    def describe(self) -> str:
        of = f" of {self.total}" if self.total is not None else ""
        return f"step {self.step.number} ({self.step.action.title}), iteration {self.done}{of}"


class TaskInterrupted(Exception):
    """Ctrl-C during a task: carries where it stopped and the variables so far."""

    def __init__(self, where: str, store: Variables) -> None:
        super().__init__(where)
        self.where = where
        self.store = store


class ProgressLine:
    """``i/N`` for loops on a terminal (stderr), redrawn in place at most ten times a second;
    nothing at all when stderr is a pipe or a file, whose log stays line by line."""

    EVERY = 0.1

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._drawn_at = 0.0
        self._shown = False

    def show(self, position: LoopPosition, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn_at < self.EVERY):
            return
        self._drawn_at = now
        of = f"/{position.total}" if position.total is not None else ""
        sys.stderr.write(f"\r  {position.step.action.title}: {position.done}{of}\x1b[K")
        sys.stderr.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._shown = False


class _StopTask(Exception):
    """Unwinds the step stack after an error the task does not continue from."""

    def __init__(self, error: ErrorInfo) -> None:
        self.error = error


class StepLog:
    """Where the step log goes: every line kept for the result, and written to ``out``.

    A terminal sees each line at once. A pipe or a file (a host capturing the log) is flushed at
    most every FLUSH_EVERY seconds and at the end: one write per line made a 5,000-message loop
    with one logged step in its body wait on its reader for about 0.3 s.
    """

    FLUSH_EVERY = 0.2

    def __init__(self, out: TextIO | None) -> None:
        self.lines: list[str] = []
        self._out = out
        self._live = out is not None and _is_terminal(out)
        self._flushed_at = time.monotonic()

    def emit(self, line: str) -> None:
        self.lines.append(line)
        if self._out is None:
            return
        self._out.write(line + "\n")
        now = time.monotonic()
        if self._live or now - self._flushed_at >= self.FLUSH_EVERY:
            self._out.flush()
            self._flushed_at = now

    def flush(self) -> None:
        if self._out is not None:
            self._out.flush()
            self._flushed_at = time.monotonic()


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # a closed or minimal stream
        return False


def _shown_path(path: Path, first: Path) -> str:
    """A task file as the log names it: relative to the first task's folder when inside it."""
    try:
        return str(path.relative_to(first.parent))
    except ValueError:
        return str(path)


def _article(acronym: str) -> str:
    """"an IMAP", "a POP3": acronyms are read letter by letter."""
    return "an" if acronym[:1].upper() in "AEFHILMNORSX" else "a"


class RunContext:
    """The host as one running task sees it."""

    def __init__(
        self,
        *,
        task_name: str,
        variables: Variables,
        masker: Masker,
        state_dir: Path,
        emit: Callable[[str], None],
        interactive: bool,
        flush: Callable[[], None] = lambda: None,
        verbose: bool = False,
        progress_line: ProgressLine | None = None,
    ) -> None:
        self.task_name = task_name
        self.variables = variables
        self.masker = masker
        self.state_dir = state_dir
        self._emit = emit
        self._flush = flush
        self.interactive = interactive
        self.connections: dict[str, tuple[str, Closable]] = {}
        self.current_step: Step | None = None
        self.verbose = verbose
        self.loops: list[LoopPosition] = []
        self.errors = 0
        self.interrupted_at: str | None = None
        self.progress_line = progress_line or ProgressLine(False)

    # progress of loops
    @property
    def quiet(self) -> bool:
        """Inside a loop after its first pass: steps log only warnings, errors and Log Message
        (the first pass shows what the body does; --verbose shows every pass)."""
        return not self.verbose and any(
            loop.done > 1 and loop.step is not self.current_step for loop in self.loops
        )

    def progress(self, done: int, total: int | None = None) -> None:
        """An action reports how far its loop is (or its total, with done=0)."""
        if self.loops:
            loop = self.loops[-1]
            loop.total = total if total is not None else loop.total
            if done:
                loop.done = done
            self.progress_line.show(loop)

    def position(self) -> str:
        if self.loops:
            return ", ".join(loop.describe() for loop in self.loops)
        if self.current_step is not None:
            return f"step {self.current_step.number} ({self.current_step.action.title})"
        return "before the first step"

    # logging and secrets
    def log(self, message: str, level: str = "info") -> None:
        level = level if level in LEVELS else "info"
        step = self.current_step
        if level == "info" and self.quiet and (step is None or step.action.id != LOG_MESSAGE_ID):
            return
        where = f"[step {self.current_step.number}] " if self.current_step else ""
        prefix = "" if level == "info" else f"{level.upper()}: "
        self.progress_line.clear()  # a log line never lands in the middle of the progress line
        self._emit(self.masker.mask(f"{where}{prefix}{message}"))

    def add_secret(self, value: str) -> None:
        self.masker.add(value)

    def prompt(self, text: str, *, secret: bool = False) -> str:
        self._flush()  # the person sees the log up to this step before the question
        return ask_person(
            text,
            secret=secret,
            interactive=self.interactive,
            masker=self.masker,
            instead="the value as a parameter",
        )

    # variables
    def get_variable(self, name: str, default: Any = None) -> Any:
        return self.variables.get(name, default)

    def set_variable(self, name: str, value: Any, scope: str = "local") -> None:
        if not name:
            raise ActionFailed(
                "an output variable name is empty; give save_to a name", code="invalid_parameter"
            )
        self.variables.set(name, value, scope)
        if SECRET_NAME_RE.search(name):
            self.masker.add(to_text(value))

    # connections
    def open_connection(self, name: str, kind: str, session: Closable) -> None:
        if name in self.connections:
            raise ConnectionInUse(
                f"a connection named {name!r} is already open; close it first or use another name"
            )
        self.connections[name] = (kind, session)

    def connection(self, name: str, kind: str) -> Any:
        if name not in self.connections:
            open_names = ", ".join(sorted(self.connections)) or "none"
            raise ConnectionNotOpen(
                f"no connection named {name!r} is open (open: {open_names}); "
                f"run {_article(kind)} {kind.upper()} Open step with connection: {name} first"
            )
        actual, session = self.connections[name]
        if actual != kind:
            raise WrongConnectionKind(
                f"connection {name!r} is a {actual.upper()} connection; this action needs "
                f"{kind.upper()}"
            )
        return session

    def close_connection(self, name: str, kind: str) -> Any:
        session = self.connection(name, kind)
        del self.connections[name]
        return session

    def close_all(self) -> None:
        for name, (kind, session) in list(self.connections.items()):
            try:
                session.close()
                self.log(f"closed {kind.upper()} connection {name!r} at the end of the task")
            except Exception as exc:  # noqa: BLE001 - closing must go on for the others
                self.log(f"closing {kind.upper()} connection {name!r} failed: {exc}", "warning")
        self.connections.clear()

    # state across runs
    def _state_path(self, key: str) -> Path:
        import hashlib  # loaded on first use, as is write_private below: only state needs them

        digest = hashlib.sha256(f"{self.task_name}\0{key}".encode()).hexdigest()[:24]
        return self.state_dir / f"{digest}.json"

    def load_state(self, key: str) -> dict[str, Any]:
        path = self._state_path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            self.log(f"task state {path} is damaged; starting afresh", "warning")
            return {}
        return data if isinstance(data, dict) else {}

    def save_state(self, key: str, value: dict[str, Any]) -> None:
        path = self._state_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        from robomail_plugin.private_files import write_private

        write_private(path, json.dumps(value), fsync=False)


class Runner:
    """Runs one task at a time against a registry of actions."""

    def __init__(
        self,
        registry: Any,
        *,
        state_dir: Path,
        out: TextIO | None = None,
        interactive: bool = False,
        global_vars: dict[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        self.registry = registry
        self.state_dir = state_dir
        self.out = out
        self.interactive = interactive
        self.global_vars = global_vars if global_vars is not None else {}
        self.verbose = verbose
        self._errors = 0

    def run(self, task: Task, variables: dict[str, Any] | None = None) -> RunResult:
        step_log = StepLog(self.out)
        masker = Masker()
        interrupted = None
        self._errors = 0
        try:
            store, error, handled_by = self._run(
                task, variables, masker=masker, emit=step_log.emit, flush=step_log.flush,
                chain=(),
            )
        except TaskInterrupted as stop:
            store, error, handled_by, interrupted = stop.store, None, None, stop.where
        step_log.flush()
        shown = {
            name: MASK if SECRET_NAME_RE.search(name) else masker.mask_value(value)
            for name, value in store.merged().items()
        }
        return RunResult(
            ok=error is None and interrupted is None,
            variables=shown,
            log=step_log.lines,
            error=error,
            handled_by=handled_by,
            errors=self._errors,
            interrupted=interrupted,
        )

    def _run(
        self,
        task: Task,
        variables: dict[str, Any] | None,
        *,
        masker: Masker,
        emit: Callable[[str], None],
        flush: Callable[[], None],
        chain: tuple[Path, ...],
    ) -> tuple[Variables, ErrorInfo | None, str | None]:
        """Runs one task; ``chain`` is the task files whose failure led here (handler cycles)."""
        store = Variables(self.global_vars)
        for name, value in {**task.variables, **(variables or {})}.items():
            store.set(name, value)
            if SECRET_NAME_RE.search(name):
                masker.add(to_text(value))
        store.set("IsError", False)
        ctx = RunContext(
            task_name=task.name,
            variables=store,
            masker=masker,
            state_dir=self.state_dir,
            emit=emit,
            interactive=self.interactive,
            flush=flush,
            verbose=self.verbose,
            progress_line=ProgressLine(
                self.out is not None and sys.stderr.isatty() and not chain
            ),
        )
        ctx.log(f"task {task.name!r} started")
        error: ErrorInfo | None = None
        handled_by: str | None = None
        try:
            self._run_steps(ctx, task.steps, task.on_error)
        except _StopTask as stop:
            error = stop.error
            if task.on_error not in ("stop", "continue"):
                handled_by = self._run_handler(ctx, task, chain)
        except KeyboardInterrupt:
            where = ctx.interrupted_at or ctx.position()
            ctx.progress_line.clear()
            ctx.loops.clear()
            ctx.log(f"task {task.name!r} interrupted (Ctrl-C) at {where}", "error")
            raise TaskInterrupted(where, store) from None
        finally:
            ctx.progress_line.clear()
            ctx.loops.clear()
            ctx.current_step = None
            ctx.close_all()
            self.global_vars.update(store.globals)
        if not chain:
            self._errors = ctx.errors
        if error:
            ctx.log(f"task {task.name!r} failed")
        elif ctx.errors:
            ctx.log(f"task {task.name!r} finished with {ctx.errors} error(s)")
        else:
            ctx.log(f"task {task.name!r} finished")
        return store, error, handled_by

    def _run_handler(self, ctx: RunContext, task: Task, chain: tuple[Path, ...]) -> str:
        """Runs the on_error task with this run's variables and masker; its lines join this log."""
        handler = Path(task.on_error)
        if not handler.is_absolute() and task.source is not None:
            handler = task.source.parent / handler
        handler = handler.resolve()
        chain = (*chain, task.source.resolve()) if task.source is not None else chain
        if handler in chain or len(chain) >= MAX_HANDLER_CHAIN:
            files = " -> ".join(_shown_path(path, chain[0]) for path in (*chain, handler))
            problem = "handlers form a cycle" if handler in chain else "handlers nest too deeply"
            ctx.log(f"the error handler cannot run: on_error {problem}: {files}", "error")
            return str(handler)
        ctx.log(f"running the error handler task {handler}")
        try:
            handler_task = load_task_file(handler, self.registry)
        except TaskError as exc:
            ctx.log(f"the error handler cannot run: {exc}", "error")
            return str(handler)
        self._run(
            handler_task,
            ctx.variables.merged(),
            masker=ctx.masker,
            emit=lambda line: ctx.log(f"handler: {line}"),
            flush=ctx._flush,
            chain=chain,
        )
        return str(handler)

    def _run_steps(self, ctx: RunContext, steps: tuple[Step, ...], on_error: str) -> None:
        for step in steps:
            try:
                self._run_step(ctx, step, on_error)
            except _StopTask:
                raise
            except KeyboardInterrupt:
                if ctx.interrupted_at is None:  # the innermost step knows where it was
                    ctx.interrupted_at = ctx.position()
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a task error
                error = self._error_info(ctx, step, exc)
                ctx.current_step = step
                ctx.errors += 1
                ctx.log(f"{step.action.title} failed [{error.code}]: {error.description}", "error")
                if error.server_reply:
                    ctx.log(f"server said: {error.server_reply}", "error")
                ctx.variables.set("IsError", True)
                ctx.variables.set("LastErrorCode", error.code)
                ctx.variables.set("LastErrorDescription", error.description)
                ctx.variables.set("LastErrorStep", error.step)
                if on_error != "continue":
                    raise _StopTask(error) from None
            else:
                ctx.variables.set("IsError", False)

    def _error_info(self, ctx: RunContext, step: Step, exc: Exception) -> ErrorInfo:
        mask = ctx.masker.mask
        if isinstance(exc, ActionFailed):
            reply = mask(exc.server_reply) if exc.server_reply else None
            return ErrorInfo(exc.code, mask(str(exc)), step.number, step.action.id, reply)
        return ErrorInfo(
            "internal_error", mask(f"{type(exc).__name__}: {exc}"), step.number, step.action.id
        )

    def _bind(self, ctx: RunContext, step: Step) -> dict[str, Any]:
        """Expands the step's variables, then binds them with the host kit (as any host would)."""
        spec: ActionSpec = step.action
        expanded: dict[str, Any] = {}
        for p in spec.params:
            raw = step.params.get(p.name)
            if raw is None:
                continue
            try:
                if p.type in (ParamType.JSON, ParamType.LIST):
                    expanded[p.name] = ctx.variables.expand_deep(raw)
                else:
                    expanded[p.name] = ctx.variables.expand(to_text(raw)) if isinstance(
                        raw, str
                    ) else raw
            except ValueError as exc:
                raise ActionFailed(
                    f"parameter {p.name!r}: {exc}", code="invalid_parameter"
                ) from None
        bound = bind_params(spec.params, expanded)
        for p in spec.params:
            if p.secret:
                ctx.add_secret(to_text(bound[p.name]))
        return bound

    def _describe(self, step: Step, params: dict[str, Any]) -> str:
        # Set Variable's value is secret when the name says so (the README's promise)
        secret_value = step.action.id == SET_VARIABLE_ID and bool(
            SECRET_NAME_RE.search(str(params.get("name") or ""))
        )
        shown = []
        for p in step.action.params:
            if p.name in step.params:
                hidden = p.secret or (secret_value and p.name == "value")
                value = MASK if hidden else to_text(params[p.name])
                shown.append(f"{p.name}={value}")
        return f"{step.action.title}" + (f" ({', '.join(shown)})" if shown else "")

    def _run_step(self, ctx: RunContext, step: Step, on_error: str) -> None:
        ctx.current_step = step
        params = self._bind(ctx, step)
        if step.action.id != LOG_MESSAGE_ID:  # its own line says what it did
            ctx.log(self._describe(step, params))  # inside a loop: on the first pass only
        result = step.action.run(ctx, params)
        if not step.action.loop:
            return
        iterator: Iterator[Any] = iter(result or ())
        position = LoopPosition(step)
        ctx.loops.append(position)
        try:
            for _item in iterator:
                position.done += 1
                ctx.progress_line.show(position)
                self._run_steps(ctx, step.body, on_error)
                ctx.current_step = step
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            if ctx.loops and ctx.loops[-1] is position:
                ctx.loops.pop()
                ctx.progress_line.clear()
        count = position.done
        ctx.current_step = step
        if count > 1 and step.body and not ctx.verbose:
            ctx.log(
                f"{step.action.title}: {count} iteration(s) (its steps were logged for the first; "
                "--verbose logs every one)"
            )
            return
        ctx.log(f"{step.action.title}: {count} iteration(s)")
