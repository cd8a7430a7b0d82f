"""A loopback TCP relay that delays every chunk by a fixed time each way: a real network's latency.

On loopback a round trip costs about 0.1 ms, so a loop that sends three commands per message
looks almost as fast as one that sends one. Over a real network each round trip costs 20-100 ms;
this relay puts ``delay`` seconds between a chunk leaving one side and reaching the other (in
both directions, keeping order), without limiting bandwidth, so the figures measured through it
count round trips as a real network does. TLS passes through untouched. It listens on 127.0.0.1
only and stops with ``stop()``.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time

_STOP = object()


class DelayProxy:
    """Relays 127.0.0.1:<port> to ``target``; each chunk arrives ``delay`` seconds late."""

    def __init__(self, target: tuple[str, int], delay: float = 0.020) -> None:
        self.target = target
        self.delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> DelayProxy:
        threading.Thread(target=self._accept, name="delay-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, server]
            self._pipe(client, server)
            self._pipe(server, client)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        """Two threads per direction: one reads and stamps each chunk, one delivers it on time."""
        chunks: queue.Queue[object] = queue.Queue()

        def read() -> None:
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    chunks.put(_STOP)
                    return
                chunks.put((time.monotonic() + self.delay, data))

        def deliver() -> None:
            while True:
                item = chunks.get()
                if item is _STOP:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                due, data = item  # type: ignore[misc]
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    dst.sendall(data)
                except OSError:
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=deliver, daemon=True).start()
