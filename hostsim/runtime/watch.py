"""`hostsim watch`: tasks started by their triggers (a task file's ``trigger:``).

Each watched task has two threads. The trigger's thread runs ``TriggerSpec.watch`` and puts its
events into a bounded queue; the task's thread takes one event at a time and runs the task with
the event's variables, so one task never runs twice at once. When the task has started (its
first log line), the event line is printed and the event acknowledged: the trigger then records
it as handled. An event still in the queue when the process ends was never acknowledged and
fires after the next start; nothing is lost, and only a task that had started but whose
acknowledgement was not yet written runs again.

A full queue makes the trigger's thread wait (it reads no new mail meanwhile: the mail stays on
the server) until the task has caught up; hostsim says so once per episode. Ctrl-C or SIGTERM
stops the triggers, lets running tasks finish, and exits 0; a second one exits at once (130).
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs

from hostsim.runtime.host import Host
from hostsim.runtime.runner import Runner
from hostsim.runtime.task import Task, TaskError, load_task_file
from hostsim.runtime.variables import Masker, Variables, to_text
from robomail_plugin.host_kit import BasicTriggerContext, bind_params
from robomail_plugin.schema import ActionFailed, ParamType, TriggerEvent

QUEUE_SIZE = 100
CHECK_EVERY = 0.2  # seconds: how often a waiting thread looks at the stop flag
TRIGGER_GRACE = 10.0  # seconds a stopping watch waits for a trigger after the tasks are done
EXIT_OK, EXIT_TRIGGER_FAILED, EXIT_TASK_FAILED, EXIT_INTERRUPTED = 0, 1, 3, 130

OnStart = Callable[[str, TriggerEvent], None]


class Printer:
    """One line at a time, from any thread: ``2025-01-31 12:00:00 invoices: message``."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()

    def line(self, who: str, message: str, level: str = "info") -> None:
        prefix = "" if level == "info" else f"{level.upper()}: "
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.raw(f"{stamp} {who}: {prefix}{message}")

    def raw(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()


class TriggerRunContext(BasicTriggerContext):
    """What a trigger sees of hostsim: its lines printed (secrets masked), state on disk."""

    def __init__(
        self, printer: Printer, masker: Masker, state_dir: Path, task_name: str, *, once: bool
    ) -> None:
        super().__init__(state_dir, task_name, once=once)
        self._printer = printer
        self._masker = masker

    def log(self, message: str, level: str = "info") -> None:
        self._printer.line(self.task_name, self._masker.mask(self.mask(message)), level)

    def add_secret(self, value: str) -> None:
        super().add_secret(value)
        self._masker.add(value)


class _TaskOut:
    """The step log of one task run: its first line means the task has started."""

    def __init__(self, on_start: Callable[[], None], echo: Callable[[str], None] | None) -> None:
        self.on_start = on_start
        self.started = False
        self.echo = echo

    def write(self, text: str) -> int:
        if not self.started:
            self.started = True
            self.on_start()
        if self.echo is not None:
            for line in text.splitlines():
                self.echo(line)
        return len(text)

    def flush(self) -> None:
        return None

    def isatty(self) -> bool:
        return False


@attrs.define(eq=False)
class Watched:
    """A task under watch: its bound trigger params, queue, threads and counts."""

    task: Task
    params: dict[str, Any]
    masker: Masker
    queue: queue.Queue[TriggerEvent]
    global_vars: dict[str, Any] = attrs.field(factory=dict)
    trigger_done: threading.Event = attrs.field(factory=threading.Event)
    trigger_failed: bool = False
    queue_full: bool = False
    events: int = 0
    task_failures: int = 0
    threads: list[threading.Thread] = attrs.field(factory=list)

    @property
    def name(self) -> str:
        return self.task.name


def load_tasks(host: Host, paths: Iterable[str | Path]) -> list[Task]:
    """The task files, each with a ``trigger:`` and a name of its own (state is kept by name)."""
    tasks: list[Task] = []
    for path in paths:
        task = load_task_file(path, host.registry)
        if task.trigger is None:
            raise TaskError(
                f"{path}: the task has no 'trigger:', so nothing would start it; add one "
                "(docs/triggers.md), or run it with `hostsim run`"
            )
        if any(t.name == task.name for t in tasks):
            raise TaskError(
                f"{path}: another task file is also named {task.name!r}; give each watched task "
                "its own name (its trigger's state is kept under it)"
            )
        tasks.append(task)
    return tasks


def bind_trigger_params(task: Task, variables: Mapping[str, Any], masker: Masker) -> dict[str, Any]:
    """The trigger's params with ``{variables}`` (the task's and --var's) expanded, then bound
    as a host binds an action's; secret ones are masked in every line from now on."""
    assert task.trigger is not None
    spec = task.trigger.spec
    store = Variables({})
    for name, value in {**task.variables, **variables}.items():
        store.set(name, value)
    expanded: dict[str, Any] = {}
    for p in spec.params:
        raw = task.trigger.params.get(p.name)
        if raw is None:
            continue
        try:
            if p.type in (ParamType.JSON, ParamType.LIST):
                expanded[p.name] = store.expand_deep(raw)
            else:
                expanded[p.name] = store.expand(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise ActionFailed(f"parameter {p.name!r}: {exc}", code="invalid_parameter") from None
    bound = bind_params(spec.params, expanded)
    for p in spec.params:
        if p.secret:
            masker.add(to_text(bound[p.name]))
    return bound


class Watch:
    """Runs the triggers of ``tasks`` and starts each task once per event.

    ``on_start(task_name, event)`` is called as each task starts (tests and benchmarks time it).
    ``run()`` blocks until ``stop()`` is called, or, with ``once``, until what was waiting has
    been handled; it returns the exit status.
    """

    def __init__(
        self,
        host: Host,
        tasks: list[Task],
        *,
        variables: Mapping[str, Any] | None = None,
        out: TextIO | None = None,
        once: bool = False,
        queue_size: int = QUEUE_SIZE,
        verbose: bool = False,
        on_start: OnStart | None = None,
    ) -> None:
        self.host = host
        self.variables = dict(variables or {})
        self.printer = Printer(out if out is not None else sys.stdout)
        self.once = once
        self.verbose = verbose
        self.on_start = on_start
        self.state_dir = host.home / "triggers"
        self._stop = threading.Event()  # the triggers stop
        self._user_stop = threading.Event()  # no new task starts either
        self.watched = [
            Watched(task=t, params={}, masker=Masker(), queue=queue.Queue(maxsize=queue_size))
            for t in tasks
        ]
        self.queue_size = queue_size

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        names = ", ".join(w.name for w in self.watched)
        how = "handling what is waiting" if self.once else "Ctrl-C or SIGTERM stops"
        self.printer.line("hostsim", f"watching {len(self.watched)} task(s): {names} ({how})")
        for w in self.watched:
            try:
                w.params = bind_trigger_params(w.task, self.variables, w.masker)
            except ActionFailed as exc:
                self._trigger_failed(w, exc)
                continue
            for role, target in (("trigger", self._produce), ("task", self._consume)):
                thread = threading.Thread(
                    target=target, args=(w,), name=f"{role}:{w.name}", daemon=True
                )
                w.threads.append(thread)
                thread.start()

    def stop(self) -> None:
        """Stops the triggers; running tasks finish, queued events wait for the next start."""
        self._user_stop.set()
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._user_stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether every thread has ended (within ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for w in self.watched:
            for thread in w.threads:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)
                if thread.is_alive():
                    return False
        return True

    def running_tasks(self) -> int:
        return sum(1 for w in self.watched for t in w.threads if t.name.startswith("task:")
                   and t.is_alive() and getattr(t, "busy", False))

    def exit_status(self) -> int:
        if any(w.trigger_failed for w in self.watched):
            return EXIT_TRIGGER_FAILED
        if self.once and any(w.task_failures for w in self.watched):
            return EXIT_TASK_FAILED
        return EXIT_OK

    def run(self) -> int:
        self.start()
        stopped_at: float | None = None
        while not self.wait(CHECK_EVERY):
            if not self.stopping:
                continue
            stopped_at = stopped_at or time.monotonic()
            tasks_done = not any(
                t.is_alive() for w in self.watched for t in w.threads if t.name.startswith("task:")
            )
            if tasks_done and time.monotonic() - stopped_at > TRIGGER_GRACE:
                # a trigger stuck in a connection attempt: its thread dies with the process,
                # and it had nothing to save (its state moves only when tasks start)
                self.printer.line("hostsim", "a trigger is still connecting; not waiting for it")
                break
        events = sum(w.events for w in self.watched)
        why = "done" if self.once and not self.stopping else "stopped"
        self.printer.line("hostsim", f"{why} ({events} event(s) handled)")
        return self.exit_status()

    # --- the trigger's thread ------------------------------------------------------------------

    def _trigger_failed(self, w: Watched, exc: BaseException) -> None:
        w.trigger_failed = True
        if isinstance(exc, ActionFailed):
            text = f"the trigger stopped [{exc.code}]: {exc}"
        else:
            text = f"the trigger stopped [internal_error]: {type(exc).__name__}: {exc}"
        self.printer.line(w.name, w.masker.mask(text), "error")

    def _produce(self, w: Watched) -> None:
        assert w.task.trigger is not None
        ctx = TriggerRunContext(self.printer, w.masker, self.state_dir, w.name, once=self.once)
        try:
            events = w.task.trigger.spec.watch(ctx, w.params, self._stop)
            try:
                for event in events:
                    if not self._put(w, event):
                        break
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # noqa: BLE001 - one broken trigger must not stop the others
            self._trigger_failed(w, exc)
        finally:
            w.trigger_done.set()

    def _put(self, w: Watched, event: TriggerEvent) -> bool:
        first = True
        while True:
            try:
                if first:
                    w.queue.put_nowait(event)
                else:
                    w.queue.put(event, timeout=CHECK_EVERY)
            except queue.Full:
                first = False
                if self._stop.is_set():
                    return False
                if not w.queue_full:
                    w.queue_full = True
                    self.printer.line(
                        w.name,
                        f"{self.queue_size} events are waiting for the task: the trigger reads "
                        "no new mail until the task catches up (nothing is lost; the mail stays "
                        "on the server)",
                        "warning",
                    )
                continue
            if w.queue_full:
                w.queue_full = False
                self.printer.line(w.name, "the task has caught up; the trigger reads mail again")
            return True

    # --- the task's thread ---------------------------------------------------------------------

    def _consume(self, w: Watched) -> None:
        me = threading.current_thread()
        while not self._user_stop.is_set():
            try:
                event = w.queue.get(timeout=CHECK_EVERY)
            except queue.Empty:
                if w.trigger_done.is_set() and w.queue.empty():
                    return  # nothing more will come
                continue
            if self._user_stop.is_set():
                return  # not acknowledged: it fires after the next start
            me.busy = True  # type: ignore[attr-defined]
            try:
                self._run_event(w, event)
            finally:
                me.busy = False  # type: ignore[attr-defined]

    def _run_event(self, w: Watched, event: TriggerEvent) -> None:
        def started() -> None:
            w.events += 1
            self.printer.line(w.name, f"event: {w.masker.mask(event.summary)}")
            if self.on_start is not None:
                self.on_start(w.name, event)
            try:
                event.ack()
            except Exception as exc:  # noqa: BLE001 - the task runs; say it may run again
                self.printer.line(
                    w.name,
                    f"could not record the event as handled ({type(exc).__name__}: {exc}); it "
                    "fires again after the next start",
                    "error",
                )

        echo = (lambda line: self.printer.raw(f"    {line}")) if self.verbose else None
        out = _TaskOut(started, echo)
        runner = Runner(
            self.host.registry,
            state_dir=self.host.home / "state",
            out=out,  # type: ignore[arg-type]
            interactive=False,
            global_vars=w.global_vars,
            verbose=self.verbose,
        )
        try:
            result = runner.run(w.task, {**self.variables, **event.variables})
        except Exception as exc:  # noqa: BLE001 - a broken run must not end the watch
            if not out.started:
                out.write("")
            w.task_failures += 1
            self.printer.line(w.name, f"the task could not run: {type(exc).__name__}: {exc}",
                              "error")
            return
        if not out.started:
            out.write("")
        if result.error is not None:
            w.task_failures += 1
            self.printer.line(
                w.name,
                f"task failed at step {result.error.step} [{result.error.code}]: "
                f"{result.error.description}",
                "error",
            )
        elif result.errors:
            w.task_failures += 1
            self.printer.line(w.name, f"task finished with {result.errors} error(s)", "warning")


def run_watch(
    host: Host,
    paths: Iterable[str | Path],
    variables: Mapping[str, Any] | None = None,
    *,
    once: bool = False,
    queue_size: int = QUEUE_SIZE,
    verbose: bool = False,
    out: TextIO | None = None,
) -> int:
    """`hostsim watch`: loads the tasks, watches until Ctrl-C/SIGTERM (or, ``once``, until what
    is waiting is handled); returns the exit status. Raises TaskError for a bad task file."""
    tasks = load_tasks(host, paths)
    watch = Watch(
        host, tasks, variables=variables, out=out, once=once, queue_size=queue_size,
        verbose=verbose,
    )
    signals = 0

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            watch.printer.line("hostsim", "stopped at once (second signal)", "warning")
            import os

            os._exit(EXIT_INTERRUPTED)
        name = signal.Signals(signum).name
        busy = watch.running_tasks()
        tail = f"; waiting for {busy} running task(s) (again to stop at once)" if busy else ""
        watch.printer.line("hostsim", f"{name}: stopping{tail}")
        watch.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return watch.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
