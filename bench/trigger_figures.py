"""Email Arrived (IMAP): latency with IDLE and with polling, a soak through restarts and SIGKILLs,
and what watching many mailboxes in one process costs.

* Latency is from the SMTP server's 250 after DATA (submission -> relay -> LMTP -> INBOX) to the
  task starting (``Watch``'s ``on_start``), in this process. Each mailbox gets a message every
  0.6 s, longer than Dovecot's 500 ms notification window, so messages do not ride along on each
  other's notification; several mailboxes take turns to keep the run short. A bare imapclient
  IDLE client on each mailbox times the server's own push (250 -> EXISTS): the baseline.
* The soak runs ``hostsim watch`` in a process of its own while messages go in over SMTP; the
  server is restarted and the watcher SIGKILLed in turns. Each message's subject is unique per
  sending attempt; events are counted from the watchers' event lines.
* Memory and threads are read from /proc for a ``hostsim watch`` of many task files against the
  same of one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import smtplib
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import HOSTSIM, PYTHON, ROOT, SIZES, Bench, Figure

TRIGGER_SIZES = {
    "full": {"latency": 200, "lanes": 4, "soak": 1000, "disruptions": 5, "mailboxes": 50},
    "quick": {"latency": 60, "lanes": 4, "soak": 200, "disruptions": 2, "mailboxes": 20},
    "tiny": {"latency": 6, "lanes": 2, "soak": 24, "disruptions": 1, "mailboxes": 3},
}
GAP = 0.6  # s between two messages to one mailbox (Dovecot notifies IDLE clients after 500 ms)
POLL_INTERVAL = 1
SOAK_SECONDS_PER_DISRUPTION = 4.0  # the soak's sending is spread so disruptions fall inside it
EVENT_RE = re.compile(r"event: UID \d+ in INBOX: '([^']*)'")


def _sizes(size: dict[str, int]) -> dict[str, int]:
    mode = next((m for m, s in SIZES.items() if s is size), "full")
    return TRIGGER_SIZES.get(mode, TRIGGER_SIZES["full"])


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank: the smallest value with ``pct`` % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _message(subject: str, to: str) -> bytes:
    return (
        f"From: Bench <bench@example.test>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}.{time.time_ns()}@example.test>\r\n\r\nTrigger bench.\r\n"
    ).encode()


def _task(name: str, params: dict[str, Any]) -> str:
    return (
        f"name: {name}\ntrigger:\n  type: Email Arrived (IMAP)\n  params: {json.dumps(params)}\n"
        "steps:\n  - action: Log Message\n    params: {message: 'got {json:Msg.subject}'}\n"
    )


def _params(bench: Bench, user: tuple[str, str], **extra: Any) -> dict[str, Any]:
    box = bench.sandbox
    return {"server": box.host, "port": box.ports["imaps"], "ca_file": str(box.ca_file),
            "username": user[0], "password": user[1], "timeout": 10, **extra}


class _Sink:
    """Where the in-process watch prints: lines kept, counted by a substring."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.lines.extend(text.splitlines())
        return len(text)

    def flush(self) -> None:
        return None

    def count(self, text: str) -> int:
        with self._lock:
            return sum(text in line for line in self.lines)


def _wait(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.01)


class _Submitter:
    """One SMTP submission connection (STARTTLS + login), opened again after a failure."""

    def __init__(self, bench: Bench, user: tuple[str, str]) -> None:
        self.box = bench.sandbox
        self.user = user
        self.smtp: smtplib.SMTP | None = None

    def send(self, to: str, message: bytes) -> None:
        if self.smtp is None:
            smtp = smtplib.SMTP(self.box.host, self.box.ports["submission"], timeout=15)
            try:
                smtp.starttls(context=self.box.ssl_context())
                smtp.login(*self.user)
            except BaseException:
                smtp.close()
                raise
            self.smtp = smtp
        try:
            self.smtp.sendmail(self.user[0], [to], message)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            with contextlib.suppress(Exception):
                smtp.quit()
            with contextlib.suppress(Exception):
                smtp.close()


def raw_idle_probe(config_path: str) -> None:
    """``python -m bench.trigger_figures CONFIG``: a bare imapclient IDLE client per mailbox, in
    a process of its own (no GIL shared with the watch). Prints ``ready`` once all are in IDLE,
    and, when a line arrives on stdin, JSON: per mailbox, when each EXISTS count first arrived
    (``time.perf_counter``, CLOCK_MONOTONIC: comparable across processes)."""
    import sys

    from imapclient import IMAPClient

    config = json.loads(Path(config_path).read_text())
    stop = threading.Event()
    seen: list[dict[int, float]] = [{} for _ in config["users"]]
    ready = threading.Barrier(len(config["users"]) + 1)

    def idle(n: int, user: list[str]) -> None:
        context = ssl.create_default_context(cafile=config["ca_file"])
        client = IMAPClient(config["host"], port=config["port"], ssl_context=context)
        client.login(*user)
        client.select_folder("INBOX", readonly=True)
        client.idle()
        ready.wait()
        while not stop.is_set():
            for response in client.idle_check(timeout=0.5):
                if len(response) >= 2 and response[1] == b"EXISTS":
                    seen[n].setdefault(int(response[0]), time.perf_counter())
        with contextlib.suppress(Exception):
            client.idle_done()
            client.logout()

    threads = [threading.Thread(target=idle, args=(n, u)) for n, u in enumerate(config["users"])]
    for thread in threads:
        thread.start()
    ready.wait()
    print("ready", flush=True)
    sys.stdin.readline()
    stop.set()
    for thread in threads:
        thread.join(10)
    print(json.dumps([{str(k): v for k, v in s.items()} for s in seen]), flush=True)


def latency_figures(bench: Bench, size: dict[str, int], log: Any) -> list[Figure]:
    from hostsim.runtime.host import Host
    from hostsim.runtime.task import load_task_text
    from hostsim.runtime.watch import Watch

    sizes = _sizes(size)
    count, lanes = sizes["latency"], sizes["lanes"]
    users = [bench.new_user(f"lat{n}") for n in range(lanes)]
    host = Host.load()
    tasks = []
    for n, user in enumerate(users):
        tasks.append(load_task_text(_task(f"idle-{n}", _params(bench, user)), host.registry))
        polled = _params(bench, user, push="poll", poll_interval=POLL_INTERVAL)
        tasks.append(load_task_text(_task(f"poll-{n}", polled), host.registry))
    started: dict[tuple[str, str], float] = {}

    def on_start(task: str, event: Any) -> None:
        started[task.split("-")[0], str(event.variables["Msg"]["subject"])] = time.perf_counter()

    sink = _Sink()
    watch = Watch(host, tasks, out=sink, on_start=on_start)  # type: ignore[arg-type]
    runner = threading.Thread(target=watch.run, daemon=True)
    runner.start()
    box = bench.sandbox
    config = bench.config_file("raw-idle.json", {
        "host": box.host, "port": box.ports["imaps"], "ca_file": str(box.ca_file),
        "users": [list(user) for user in users],
    })
    probe = subprocess.Popen([PYTHON, "-m", "bench.trigger_figures", str(config)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert probe.stdin is not None and probe.stdout is not None
    raw: list[dict[int, float]] = []
    submitter = _Submitter(bench, users[0])
    accepted: dict[str, float] = {}
    try:
        _wait("every trigger to connect", lambda: sink.count("watching 'INBOX'") == len(tasks), 60)
        if probe.stdout.readline().strip() != "ready":
            raise RuntimeError("the bare IDLE clients did not start")
        log(f"latency: {count} messages over SMTP to {lanes} mailboxes, one every "
            f"{GAP / lanes:.2f} s")
        begin = time.perf_counter()
        for n in range(count):
            due = begin + n * GAP / lanes
            time.sleep(max(0.0, due - time.perf_counter()))
            subject = f"lat-{n}"
            submitter.send(users[n % lanes][0], _message(subject, users[n % lanes][0]))
            accepted[subject] = time.perf_counter()
        _wait("every event", lambda: len(started) >= 2 * count, 60)
        time.sleep(0.2)
    finally:
        submitter.close()
        watch.stop()
        out, _err = probe.communicate("stop\n", timeout=30)
        runner.join(30)
    raw = [{int(k): v for k, v in seen.items()} for seen in json.loads(out.splitlines()[-1])]
    idle = [started["idle", s] - t for s, t in accepted.items()]
    poll = [started["poll", s] - t for s, t in accepted.items()]
    push: list[float] = []
    added: list[float] = []
    for n in range(count):
        subject = f"lat-{n}"
        pushed = raw[n % lanes].get(n // lanes + 1)
        if pushed is not None:
            push.append(pushed - accepted[subject])
            added.append(started["idle", subject] - pushed)
    if len(push) < count:
        raise RuntimeError(f"the bare IDLE clients saw {len(push)} of {count} messages")
    p50, p95 = percentile(idle, 50), percentile(idle, 95)
    how = ("SMTP submission (STARTTLS) -> relay -> LMTP; hostsim's Watch in this process, "
           f"{lanes} mailboxes taking turns, one message per mailbox every {GAP} s")
    dovecot = ("Dovecot sends IDLE clients a change 500 ms after it happens "
               "(NOTIFY_DELAY_MSECS in mailbox-watch.c): no IDLE client on it does better; "
               "the baseline is that push itself")
    return [
        Figure(
            key="trigger_idle_p95",
            title=f"Email Arrived (IMAP) with IDLE, {count} messages: latency p95, SMTP 250 to "
            "task start",
            value=p95, unit="s", baseline=percentile(push, 95),
            baseline_label="bare imapclient IDLE, 250 to EXISTS",
            target="p95 < 0.5 s", limit=0.5, on_value=True, how=how,
            notes=(dovecot, f"p50 {p50:.3f} s, max {max(idle):.3f} s"),
        ),
        Figure(
            key="trigger_idle_added",
            title=f"Email Arrived (IMAP) with IDLE, {count} messages: EXISTS to task start, p95",
            value=percentile(added, 95) * 1000, unit="ms",
            baseline=percentile(push, 95) * 1000,
            baseline_label="the server's push, 250 to EXISTS, p95",
            notes=(f"p50 {percentile(added, 50) * 1000:.1f} ms: DONE, UID SEARCH, UID FETCH of "
                   "the headers, queue, the task's first line",),
        ),
        Figure(
            key="trigger_poll_p95",
            title=f"Email Arrived (IMAP) polling every {POLL_INTERVAL} s, {count} messages: "
            "latency p95",
            value=percentile(poll, 95), unit="s", baseline=p95,
            baseline_label="the same with IDLE",
            notes=(f"p50 {percentile(poll, 50):.3f} s (IDLE: {p50:.3f} s); the default "
                   "poll_interval is 60 s",),
        ),
    ]


# --- the soak ------------------------------------------------------------------------------------


class _Watcher:
    """``hostsim watch`` in a process of its own, printing into a log file."""

    def __init__(self, task: Path, out: Path) -> None:
        self.out = out
        self._fh = out.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [HOSTSIM, "watch", str(task)], stdout=self._fh, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )

    def text(self) -> str:
        return self.out.read_text(encoding="utf-8", errors="replace")

    def end(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signum)
        self.proc.wait(timeout=60)
        self._fh.close()


def soak_figures(bench: Bench, size: dict[str, int], log: Any) -> list[Figure]:
    import signal

    sizes = _sizes(size)
    count, times = sizes["soak"], sizes["disruptions"]
    user = bench.new_user("soak")
    task = bench.private_file("soak.yaml", _task("soak", _params(bench, user)))
    logs: list[_Watcher] = []

    def start_watcher() -> _Watcher:
        watcher = _Watcher(task, bench.work / f"soak-{len(logs)}.log")
        logs.append(watcher)
        return watcher

    def seen() -> list[str]:
        return [s for w in logs for s in EVENT_RE.findall(w.text())]

    watcher = start_watcher()
    _wait("the watcher to connect", lambda: "with IDLE" in watcher.text(), 60)
    accepted: list[str] = []
    failed_attempts = 0
    sent = threading.Event()
    submitter = _Submitter(bench, user)

    pace = SOAK_SECONDS_PER_DISRUPTION * (2 * times + 1) / count  # spread over the disruptions

    def send_all() -> None:
        nonlocal failed_attempts
        begin = time.perf_counter()
        try:
            for n in range(count):
                time.sleep(max(0.0, begin + n * pace - time.perf_counter()))
                attempt = 0
                while True:
                    subject = f"soak-{n}.{attempt}"
                    try:
                        submitter.send(user[0], _message(subject, user[0]))
                    except (OSError, smtplib.SMTPException):
                        failed_attempts += 1
                        attempt += 1
                        time.sleep(0.1)
                        continue
                    accepted.append(subject)
                    break
        finally:
            submitter.close()
            sent.set()

    log(f"soak: {count} messages, the server restarted {times}x and the watcher SIGKILLed "
        f"{times}x in turns")
    began = time.perf_counter()
    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    kills = restarts = 0
    for step in range(1, 2 * times + 1):
        _wait("the sender", lambda s=step: len(accepted) >= s * count // (2 * times + 1)
              or sent.is_set(), 300)
        if step % 2:
            watcher.end(signal.SIGKILL)
            kills += 1
            watcher = start_watcher()
        else:
            bench.sandbox.restart_dovecot(down_for=0.5)
            restarts += 1
    sender.join(300)
    wanted = set(accepted)
    _wait("every accepted message to fire", lambda: wanted <= set(seen()), 180)
    time.sleep(1.0)  # let anything that would fire twice show up
    watcher.end(signal.SIGTERM)
    took = time.perf_counter() - began
    events = seen()
    fired = set(events)
    missed = len(wanted - fired)
    duplicates = len(events) - len(fired)
    extra = len(fired - wanted)  # delivered by an attempt the sender saw fail
    reconnects = sum(w.text().count("reconnected") for w in logs)
    return [
        Figure(
            key="trigger_soak_missed",
            title=f"Email Arrived (IMAP) soak, {count} messages, server restarted {restarts}x, "
            f"watcher SIGKILLed {kills}x: missed events",
            value=missed, unit="", baseline=len(wanted),
            baseline_label="messages the SMTP server accepted",
            target="0 missed", limit=0.0, on_value=True,
            how="`hostsim watch` in a process of its own, IDLE; SMTP submission retried until "
            "accepted, one subject per attempt",
            notes=(f"{took:.0f} s in all; {reconnects} reconnection line(s); {failed_attempts} "
                   f"sending attempt(s) failed during restarts, {extra} of them delivered all "
                   "the same (fired once, not counted)",),
        ),
        Figure(
            key="trigger_soak_duplicates",
            title=f"Email Arrived (IMAP) soak, {count} messages, server restarted {restarts}x, "
            f"watcher SIGKILLed {kills}x: duplicated events",
            value=duplicates, unit="", baseline=kills, baseline_label="SIGKILLs",
            target="<= 1 per kill", limit=1.0,
        ),
    ]


# --- many mailboxes ------------------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "Threads"):
            values[key] = int(rest.split()[0])
    return values


def _watch_many(bench: Bench, users: list[tuple[str, str]], name: str) -> dict[str, float]:
    """RSS (MB) and threads of a ``hostsim watch`` of one task per user, all connected; then one
    message each, which must fire."""
    files = [
        bench.private_file(f"{name}-{n}.yaml", _task(f"{name}-{n}", _params(bench, user)))
        for n, user in enumerate(users)
    ]
    out = bench.work / f"{name}.log"
    with out.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen([HOSTSIM, "watch", *map(str, files)], stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            def text() -> str:
                return out.read_text(encoding="utf-8", errors="replace")

            _wait(f"{len(users)} triggers to connect",
                  lambda: text().count("with IDLE") == len(users), 120)
            time.sleep(1.0)  # settled
            status = _proc_status(proc.pid)
            for user in users:
                bench.sandbox.deliver(user[0], _message(f"hello {user[0]}", user[0]))
            _wait("an event per mailbox", lambda: len(EVENT_RE.findall(text())) == len(users), 60)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return {"rss_mb": status["VmRSS"] / 1024, "threads": float(status["Threads"])}


def mailbox_figures(bench: Bench, size: dict[str, int], log: Any) -> list[Figure]:
    many = _sizes(size)["mailboxes"]
    users = [bench.new_user(f"mb{n}") for n in range(many)]
    log(f"memory and threads: hostsim watch of 1 and of {many} mailboxes")
    one = _watch_many(bench, users[:1], "one")
    all_ = _watch_many(bench, users, "many")
    per = (all_["rss_mb"] - one["rss_mb"]) / max(1, many - 1) * 1024
    return [
        Figure(
            key="trigger_mailboxes_rss",
            title=f"hostsim watch of {many} mailboxes (IDLE) in one process: RSS",
            value=all_["rss_mb"], unit="MB", baseline=one["rss_mb"],
            baseline_label="the same watching 1 mailbox",
            how="VmRSS from /proc once every trigger is in IDLE; then one event per mailbox",
            notes=(f"{per:.0f} KB per extra mailbox",),
        ),
        Figure(
            key="trigger_mailboxes_threads",
            title=f"hostsim watch of {many} mailboxes (IDLE) in one process: threads",
            value=all_["threads"], unit="", baseline=one["threads"],
            baseline_label="the same watching 1 mailbox",
            notes=("two per watched task (its trigger's and its task's) and the main thread",),
        ),
    ]


def trigger_figures(bench: Bench, size: dict[str, int], log: Any) -> list[Figure]:
    return [
        *latency_figures(bench, size, log),
        *soak_figures(bench, size, log),
        *mailbox_figures(bench, size, log),
    ]


if __name__ == "__main__":
    import sys

    raw_idle_probe(sys.argv[1])
