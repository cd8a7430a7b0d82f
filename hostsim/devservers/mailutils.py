"""A second mail server for the tests: GNU Mailutils' imap4d and pop3d on loopback.

robomail's IMAP and POP3 actions are tested against Dovecot (hostsim/devservers/sandbox.py)
and, with this,
against a server that lacks much of what Dovecot offers (no MOVE, UIDPLUS, CONDSTORE, SPECIAL-USE,
keywords), so the fallbacks run against a real server too. See docs/servers.md.

The daemons come from Debian's packages, unpacked (not installed: they would replace Dovecot) by
scripts/install-mailutils into .venv/mailutils/root. Everything else lives in one folder under
/tmp that ``stop()`` removes: the configs, a throw-away CA, the users' passwd file, the Maildirs.
The plain ports never take a password in clear: IMAP advertises LOGINDISABLED until STARTTLS,
and POP3 offers no USER until STLS.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hostsim.devservers.foreground import StopSignals, write_secrets_file
from hostsim.devservers.local_server import LocalMailServer
from hostsim.devservers.sandbox import SandboxError, _die_with_parent, make_certificates
from robomail_plugin.private_files import free_ports

MAILUTILS_ENV = "HOSTSIM_MAILUTILS"
PORT_NAMES = ("imap", "imaps", "pop3", "pop3s")
PORT_HELP = {
    "imap": "plain IMAP, STARTTLS offered, LOGINDISABLED before it",
    "imaps": "IMAP over TLS",
    "pop3": "plain POP3, STLS offered, no USER before it",
    "pop3s": "POP3 over TLS",
}
DOMAIN = "example.test"
START_ATTEMPTS = 3
_SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class MailutilsError(SandboxError):
    """Mailutils is missing or cannot start; the message says what to do."""


def find_mailutils() -> Path:
    """The folder with usr/sbin/imap4d and usr/sbin/pop3d (the private root, or / when Mailutils
    is installed system-wide), or a MailutilsError saying how to get it."""
    override = os.environ.get(MAILUTILS_ENV, "").strip()
    here = Path(__file__).resolve().parents[2]
    candidates = (
        [Path(override)]
        if override
        else [
            Path(sys.prefix) / "mailutils" / "root",
            here / ".venv" / "mailutils" / "root",
            Path("/"),
        ]
    )
    for root in candidates:
        if all(os.access(root / "usr" / "sbin" / d, os.X_OK) for d in ("imap4d", "pop3d")):
            return root
    looked = f"{override} (from {MAILUTILS_ENV})" if override else str(candidates[0])
    raise MailutilsError(
        f"GNU Mailutils' imap4d and pop3d are not there (looked in {looked}). Unpack them with "
        "scripts/install-mailutils (it downloads Debian's mailutils-imap4d and -pop3d without "
        "installing them, so Dovecot stays), then run again."
    )


def sha512_crypt(password: str) -> str:
    """A ``$6$`` hash for the passwd file (Mailutils' generic authentication calls crypt(3)).

    libcrypt through ctypes: Python's crypt module is deprecated (and gone in 3.13).
    """
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    salt = "$6$" + "".join(secrets.choice(_SALT_CHARS) for _ in range(16))
    out = lib.crypt(password.encode("utf-8"), salt.encode("ascii"))
    if not out or not out.startswith(b"$6$"):
        raise MailutilsError("crypt(3) could not make a SHA-512 password hash.")
    return str(out.decode("ascii"))


class MailutilsServer(LocalMailServer):
    """imap4d + pop3d: ``start()``, use ``host``/``ports``/``users``/``ca_file``, ``stop()``.

    Users are ``local@example.test`` (one virtual domain); each has a Maildir INBOX and folders
    beside it, which ``seed()`` fills by writing files, as ``Sandbox.seed`` does for Dovecot.
    """

    name = "mailutils"

    def __init__(self, users: dict[str, str] | None = None) -> None:
        super().__init__()
        self.users: dict[str, str] = dict(users or {})
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._hashes: dict[str, str] = {}

    def __repr__(self) -> str:  # no passwords
        state = f"{self.host} {self.ports}" if self._procs else "stopped"
        return f"<MailutilsServer {state}>"

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> MailutilsServer:
        """Write the configs and start both daemons; wait until every port accepts."""
        if self._procs:
            raise MailutilsError("The Mailutils server is running already.")
        root = find_mailutils()
        base = Path(tempfile.mkdtemp(dir="/tmp", prefix="rm-mu-"))
        base.chmod(0o755)  # the daemons' children run as the mail user
        self.base = base
        try:
            for sub in ("run", "tls", "passwd", "locks", "mail"):
                (base / sub).mkdir()
            self._own(base / "mail")
            self._own(base / "locks")
            self.ca_file, cert, key = make_certificates(base / "tls")
            for path in (cert, key):
                self._own(path)
            self._write_passwd()
            for username in self.users:
                self._ensure_folder(username, "INBOX")
            self._start_daemons(root, cert, key)
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)
        return self

    def _start_daemons(self, root: Path, cert: Path, key: Path) -> None:
        assert self.base is not None
        last_log = ""
        for _ in range(START_ATTEMPTS):
            self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
            for daemon in ("imap4d", "pop3d"):
                conf = self.base / f"{daemon}.conf"
                conf.write_text(self._config(daemon, cert, key))
                with open(self.base / f"{daemon}.log", "ab") as out:
                    self._procs[daemon] = subprocess.Popen(
                        [str(root / "usr" / "sbin" / daemon), "--config-file", str(conf)],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=out,
                        env=self._env(root),
                        start_new_session=True,
                        preexec_fn=_die_with_parent,
                    )
            if self._wait_ready():
                return
            last_log = self.log_text()
            self._stop_daemons()
            if "in use" not in last_log:
                break
        raise MailutilsError(
            "GNU Mailutils (imap4d, pop3d) did not start. Its log says:\n"
            + last_log[-3000:]
            + "\nRun scripts/install-mailutils to unpack it again."
        )

    @staticmethod
    def _env(root: Path) -> dict[str, str]:
        """The environment, with the private root's libraries first if any were unpacked."""
        env = dict(os.environ)
        libs = [
            str(p)
            for p in (root / "usr" / "lib" / f"{os.uname().machine}-linux-gnu", root / "usr/lib")
            if root != Path("/") and p.is_dir()
        ]
        if libs:
            env["LD_LIBRARY_PATH"] = ":".join([*libs, env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
        return env

    def _wait_ready(self) -> bool:
        return self._ports_accept(
            self.ports.values(), lambda: all(p.poll() is None for p in self._procs.values())
        )

    def stop(self) -> None:
        """Stop both daemons (SIGTERM to the PIDs started here) and remove the folder."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        self._stop_daemons()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def _stop_daemons(self) -> None:
        procs, self._procs = self._procs, {}
        for proc in procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            # The children serving connections are in the session started for the daemon.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.poll() is None for p in self._procs.values())

    # --- configuration --------------------------------------------------------------------------

    def _config(self, daemon: str, cert: Path, key: Path) -> str:
        assert self.base is not None
        b, p = self.base, self.ports
        if daemon == "imap4d":
            # LOGIN is refused until STARTTLS (and advertised so: LOGINDISABLED).
            servers = (
                f"server {self.host}:{p['imap']} {{ tls-mode ondemand; transcript yes; }};\n"
                f"server {self.host}:{p['imaps']} {{ tls-mode connection; }};\n"
                "login-disabled yes;\n"
                "namespace personal {\n"
                f'  prefix "" {{ directory "{b}/mail/${{user}}"; delimiter "/"; '
                "mailbox-type maildir; };\n};\n"
            )
        else:
            # "required": USER only after STLS (CAPA lists no USER before it).
            servers = (
                f"server {self.host}:{p['pop3']} {{ tls-mode required; transcript yes; }};\n"
                f"server {self.host}:{p['pop3s']} {{ tls-mode connection; }};\n"
                f"mandatory-locking {{ enable yes; lock-directory {b}/locks; }};\n"
            )
        return f"""# robomail second server ({daemon}): generated, private, throw-away
mode daemon;
foreground yes;
max-children 100;
pidfile {b}/run/{daemon}.pid;
logging {{ syslog false; }};
tcp-wrappers {{ enable no; }};
tls-file-checks {{ key-file none; cert-file none; ca-file none; }};
tls {{
  ssl-certificate-file {cert};
  ssl-key-file {key};
  ssl-ca-file {self.ca_file};
}};
auth {{ authentication generic; authorization virtdomain; }};
virtdomain {{ passwd-dir {b}/passwd; }};
mailbox {{
  mailbox-type maildir;
  mailbox-pattern "maildir://{b}/mail/${{local_part}}/INBOX";
}};
{servers}"""

    def _write_passwd(self) -> None:
        """passwd/example.test: one line per user (the daemons read it at each login)."""
        assert self.base is not None
        lines = []
        for username, password in sorted(self.users.items()):
            local = self._local_part(username)
            hashed = self._hashes.get(username)
            if hashed is None:
                hashed = self._hashes[username] = sha512_crypt(password)
            home = self.base / "mail" / local
            lines.append(f"{local}:{hashed}:{self._uid}:{self._gid}::{home}:/bin/false\n")
        folder = self.base / "passwd"
        tmp = folder / f".{DOMAIN}.tmp"
        tmp.write_text("".join(lines))
        tmp.chmod(0o644)
        tmp.replace(folder / DOMAIN)

    @staticmethod
    def _local_part(username: str) -> str:
        local, _, domain = username.lower().partition("@")
        if domain != DOMAIN or not local or any(c in local for c in ":/\n\r"):
            raise MailutilsError(
                f"User names here are local@{DOMAIN} without ':' or '/', not {username!r}."
            )
        return local

    # --- users and mail -------------------------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        """Add a password user or change a password (usable at the next login)."""
        self._local_part(username)
        if any(c in password for c in "\n\r"):
            raise MailutilsError("Passwords must not contain line breaks.")
        with self._lock:
            self.users[username] = password
            self._hashes.pop(username, None)
            if self.base is not None:
                self._write_passwd()
                self._ensure_folder(username, "INBOX")

    def home(self, username: str) -> Path:
        """The folder that holds the user's INBOX and other folders (Maildirs)."""
        if self.base is None:
            raise MailutilsError("The Mailutils server is not running.")
        return self.base / "mail" / self._local_part(username)

    def folder_path(self, username: str, folder: str = "INBOX") -> Path:
        """The Maildir (cur/, new/, tmp/) of ``folder``; "A/B" is the directory A/B."""
        home = self.home(username)
        return home / "INBOX" if folder.upper() == "INBOX" else home.joinpath(*folder.split("/"))

    def _ensure_folder(self, username: str, folder: str) -> Path:
        home = self.home(username)
        target = self.folder_path(username, folder)
        parts = target.relative_to(home).parts
        chain = [home.joinpath(*parts[:i]) for i in range(len(parts) + 1)]
        for path in [*chain, target / "cur", target / "new", target / "tmp"]:
            if not path.exists():
                path.mkdir(mode=0o700)
                self._own(path)
        return target

    def seed(self, username: str, messages: list[bytes], folder: str = "INBOX") -> None:
        """Write messages into the folder's Maildir new/ (the server sees them at the next
        SELECT or STAT). Mailutils reads Maildir files with LF line ends (as the format has
        them; a CRLF file reads as an empty message), so CRLF becomes LF here."""
        with self._lock:
            target = self._ensure_folder(username, folder)
            stamp = int(time.time())
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            for message in messages:
                self._seq += 1
                name = f"{stamp}.M{self._seq}P{os.getpid()}.robomail"
                fd = os.open(target / "tmp" / name, flags, 0o600)
                try:
                    view = memoryview(message.replace(b"\r\n", b"\n"))
                    while view:
                        view = view[os.write(fd, view) :]
                    if self._root:
                        os.fchown(fd, self._uid, self._gid)
                finally:
                    os.close(fd)
                os.rename(target / "tmp" / name, target / "new" / name)

    # --- helpers for clients --------------------------------------------------------------------

    def log_text(self, daemon: str | None = None) -> str:
        """The daemons' logs (the plain ports log a transcript; passwords show as ***)."""
        if self.base is None:
            return ""
        parts = []
        for name in (daemon,) if daemon else ("imap4d", "pop3d"):
            with contextlib.suppress(OSError):
                parts.append((self.base / f"{name}.log").read_text(errors="replace"))
        return "".join(parts)


def main() -> None:
    """``python -m hostsim.devservers.mailutils``: the second server in the foreground until
    Ctrl-C, with one user whose password is in a 0600 file (never printed), to try a task
    against it."""
    server = MailutilsServer({"alice@example.test": secrets.token_urlsafe(12)})
    with StopSignals() as stop:
        try:
            server.start()
            assert server.base is not None
            print(f"GNU Mailutils on {server.host} (folder {server.base})")
            for name, what in PORT_HELP.items():
                print(f"  {name:<6} {server.ports[name]:<6} {what}")
            print(f"  CA file {server.ca_file}")
            secrets_file = write_secrets_file(
                server.base / "credentials.json", {"users": dict(server.users)}
            )
            print(f"User alice@example.test; its password is in {secrets_file} (mode 0600)")
            print("Press Ctrl-C to stop.", flush=True)
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop.stopping()
            server.stop()


if __name__ == "__main__":
    main()
