"""Helpers for the trigger tests: a watch run in a thread, a loopback proxy that can go silent,
SMTP submission into the sandbox, and task files with a ``trigger:``.

Everything listens on 127.0.0.1; every thread and socket here is closed by the test that made it.
"""

from __future__ import annotations

import contextlib
import json
import smtplib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from hostsim.runtime.host import Host
from hostsim.runtime.task import load_task_text
from hostsim.runtime.watch import Watch
from robomail_plugin.schema import TriggerEvent

WAIT = 30.0  # seconds: generous bounds for things that take well under one on loopback


def wait_until(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def submit(box: Any, user: str, password: str, message: bytes) -> None:
    """Sends over the sandbox's SMTP submission port (STARTTLS + login): relay, LMTP, INBOX."""
    with smtplib.SMTP(box.host, box.ports["submission"], timeout=30) as smtp:
        smtp.starttls(context=box.ssl_context())
        smtp.login(user, password)
        smtp.sendmail(user, [user], message)


def trigger_task(
    name: str,
    params: dict[str, Any],
    *,
    kind: str = "Email Arrived (IMAP)",
    steps: str | None = None,
) -> str:
    """A task file's text: the trigger with ``params`` (as JSON, valid YAML) and steps that log
    the message's subject and UID."""
    body = steps or (
        "  - action: Log Message\n"
        "    params: {message: 'got {json:Msg.subject} uid {MsgUid}'}\n"
    )
    return (
        f"name: {name}\n"
        "trigger:\n"
        f"  type: {kind}\n"
        f"  params: {json.dumps(params)}\n"
        "steps:\n" + body
    )


def imap_trigger_params(box: Any, user: Any, **extra: Any) -> dict[str, Any]:
    params = {
        "server": box.host,
        "port": box.ports["imaps"],
        "ca_file": str(box.ca_file),
        "username": user.username,
        "password": user.password,
        "timeout": 10,
    }
    params.update(extra)
    return params


class Lines:
    """A thread-safe text sink collecting whole lines (hostsim's printer writes line by line)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.lines.extend(text.splitlines())
        return len(text)

    def flush(self) -> None:
        return None

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def having(self, text: str) -> list[str]:
        return [line for line in self.snapshot() if text in line]


class WatchRun:
    """``hostsim watch`` in a thread of this process: events as they start, lines as printed."""

    def __init__(self, host: Host, *texts: str, **options: Any) -> None:
        tasks = [load_task_text(text, host.registry) for text in texts]
        self.out = Lines()
        self.events: list[tuple[str, TriggerEvent]] = []
        self._lock = threading.Lock()
        self.watch = Watch(host, tasks, out=self.out, verbose=True, on_start=self._started,
                           **options)
        self.status: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _started(self, task: str, event: TriggerEvent) -> None:
        with self._lock:
            self.events.append((task, event))

    def _run(self) -> None:
        self.status = self.watch.run()

    def __enter__(self) -> WatchRun:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> int | None:
        self.watch.stop()
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the watch did not stop"
        return self.status

    def subjects(self) -> list[str]:
        with self._lock:
            return [str(e.variables["Msg"]["subject"]) for _, e in self.events]

    def wait_events(self, count: int, timeout: float = WAIT) -> list[TriggerEvent]:
        wait_until(f"{count} event(s); lines so far: {self.out.snapshot()}",
                   lambda: len(self.events) >= count, timeout)
        with self._lock:
            return [e for _, e in self.events]

    def wait_line(self, text: str, timeout: float = WAIT, count: int = 1) -> list[str]:
        return wait_until(
            f"{count} line(s) with {text!r}; lines so far: {self.out.snapshot()}",
            lambda: len(self.out.having(text)) >= count and self.out.having(text),
            timeout,
        )


class _Pair:
    """One proxied connection: the client's socket and the server's."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.silent = False

    def pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not self.silent:
                    dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of a server port.

    ``silence()`` makes the open connections drop everything in both directions while staying
    open: a half-open link, as a NAT box that forgot the connection leaves it (nothing arrives,
    nothing fails). ``inject(data)`` writes to the clients as if the server had; ``cut()``
    closes the open connections. New connections are forwarded normally.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs: list[_Pair] = []
        self.accepted = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
                pair = _Pair(client, upstream)
                with self._lock:
                    self.pairs.append(pair)
                    self.accepted += 1
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pair.pump, args=(src, dst), daemon=True).start()

    def _open(self) -> list[_Pair]:
        with self._lock:
            return list(self.pairs)

    def silence(self) -> None:
        for pair in self._open():
            pair.silent = True

    def inject(self, data: bytes) -> None:
        for pair in self._open():
            pair.client.sendall(data)

    def cut(self) -> None:
        with self._lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            pair.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()
        self.cut()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
