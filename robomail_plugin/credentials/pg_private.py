"""A private PostgreSQL server on 127.0.0.1 in a temporary folder, for tests and benchmarks.

Tests of the shared store need a real database, not a mock: this starts Debian's PostgreSQL
(``scripts/install-postgres``) from ``initdb`` in a throw-away folder, with a password
(scram-sha-256) and a socket in that folder, and stops it by its PID. As root the server runs as
the ``postgres`` system user (``initdb`` refuses root), on a folder that user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from robomail_plugin.private_files import free_port

SERVER_USER = "postgres"
SUPERUSER = "robomail"
START_TIMEOUT_S = 30.0


class PrivatePostgresError(RuntimeError):
    """The private server cannot be found, started or stopped; the message says what to do."""


def find_bindir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's newest, else the first on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit()
        else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise PrivatePostgresError(
        "PostgreSQL is not installed (no pg_ctl in /usr/lib/postgresql/*/bin or on PATH). "
        "Run scripts/install-postgres (Debian's postgresql package), then try again."
    )


class PrivatePostgres:
    """A server: ``start()``, ``url(db)``, ``stop()`` and ``start()`` again, ``cleanup()``."""

    def __init__(self, *, password: str | None = None) -> None:
        self.bindir = find_bindir()
        self.password = password or secrets.token_urlsafe(18)
        self.host = "127.0.0.1"
        self.port = 0
        self.pid: int | None = None
        self.folder = Path(tempfile.mkdtemp(prefix="rm-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._as_root = os.geteuid() == 0
        self._initialised = False

    def __repr__(self) -> str:
        return f"PrivatePostgres({self.host}:{self.port}, pid={self.pid})"

    # --- running commands as the server's user ----------------------------------------------

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=self.folder, check=False, timeout=120
        )
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout)[-1500:]
            log = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
            raise PrivatePostgresError(f"{args[0]} failed ({proc.returncode}): {tail}\n{log}")
        return proc

    def _init(self) -> None:
        if self._as_root:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PrivatePostgresError(
                    f"No {SERVER_USER!r} system user: run scripts/install-postgres."
                ) from None
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.folder.chmod(0o700)
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._as_root:
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "scram-sha-256",
                f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "-N",
            )
        finally:
            pwfile.unlink()
        self._initialised = True

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> PrivatePostgres:
        """Starts the server (initialising the folder the first time) and waits until ready."""
        if not self._initialised:
            self._init()
        keep_port = self.port
        last = ""
        for _ in range(3):
            self.port = keep_port or free_port()
            options = (
                f"-c listen_addresses={self.host} -p {self.port} -k {self.folder} "
                "-c max_connections=200"
            )
            proc = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                "-w", "-t", str(int(START_TIMEOUT_S)), "start", check=False,
            )
            if proc.returncode == 0:
                self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
                return self
            last = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
            if keep_port:
                break
        raise PrivatePostgresError(f"PostgreSQL did not start:\n{last}")

    def stop(self, *, how: signal.Signals = signal.SIGINT) -> None:
        """Stops the server by its PID (SIGINT: fast shutdown) and waits for it to exit."""
        pid, self.pid = self.pid, None
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, how)
        deadline = time.monotonic() + START_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.02)

    def cleanup(self) -> None:
        """Stops the server if it runs and removes its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # --- addresses and databases ------------------------------------------------------------

    def url(self, dbname: str = "postgres", *, password: str | None = None) -> str:
        """A ``postgresql://`` URL for ``dbname`` (with the password, or another one)."""
        secret = self.password if password is None else password
        return (
            f"postgresql://{SUPERUSER}:{quote(secret, safe='')}@{self.host}:{self.port}/"
            f"{quote(dbname, safe='')}"
        )

    def create_database(self, name: str) -> str:
        """Creates an empty database and returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie of ours counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True
