"""Small operating-system helpers shared by the plugin and hostsim: a file written atomically
(mode 0600 unless told), an flock held for a block, and loopback ports the OS calls free.

Standard library only and light to import: hosts load it at start-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

POLL_S = 0.02  # how often flocked() tries again while another process holds the lock


def write_private(
    path: str | os.PathLike[str], data: bytes | str, mode: int = 0o600, *, fsync: bool = True
) -> None:
    """Replaces ``path`` with ``data`` (text as UTF-8) so a reader sees the old file or the new one.

    The data goes to a temp file in the same folder, created with ``mode`` (less the umask; 0o666
    for an ordinary file), flushed to disk when ``fsync``, then renamed into place. The temp file
    is removed when anything fails, and the error raised. The folder must exist.
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def flocked(
    path: str | os.PathLike[str],
    timeout: float | None = None,
    *,
    busy: Callable[[bool], None] | None = None,
) -> Iterator[None]:
    """An exclusive flock on ``path`` (created 0600, its folder 0700) for the ``with`` block.

    Without ``timeout`` it waits as long as it takes. With one it tries every POLL_S seconds;
    each time the lock is taken, ``busy(expired)`` is called (``expired``: the timeout has passed)
    and may raise to give up; past the timeout, TimeoutError is raised if ``busy`` did not.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            _flock_within(fd, path, timeout, busy)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _flock_within(fd: int, path: Path, timeout: float, busy: Callable[[bool], None] | None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        expired = time.monotonic() > deadline
        if busy is not None:
            busy(expired)
        if expired:
            raise TimeoutError(f"{path} has been locked by another process for over {timeout} s")
        time.sleep(POLL_S)


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports the OS calls free right now (bound to port 0, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """A loopback port the OS calls free right now."""
    return free_ports(1)[0]
