"""A private Dovecot 2.3 (IMAP, POP3, submission, LMTP) on loopback that checks OAuth tokens.

Everything lives in one short folder under /tmp (config, sockets, certificates, mail, logs) and
goes away on ``stop()``. Passwords come from a passwd-file; XOAUTH2 and OAUTHBEARER tokens are
checked on every login against the fake provider's introspection endpoint, so a token robomail
obtained is the token the server checks. docs/sandbox.md ("How it works") says why each setting
is there.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime as dt
import grp
import imaplib
import ipaddress
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import webbrowser
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from imapclient import imap_utf7

from hostsim.devservers.foreground import StopSignals, write_secrets_file
from hostsim.devservers.local_server import LocalMailServer
from hostsim.devservers.relay import LmtpRelay
from robomail_plugin.private_files import free_ports

if TYPE_CHECKING:
    from hostsim.devservers.fakeprovider import FakeProvider

DOVECOT_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
DOVECOT_ENV = "HOSTSIM_DOVECOT"
DEFAULT_USERS = ("alice@example.test", "bob@example.test", "carol@example.test")
PORT_NAMES = ("imap", "imaps", "pop3", "pop3s", "submission", "submissions", "lmtp", "relay")
PORT_HELP = {
    "imap": "plain IMAP, STARTTLS offered",
    "imaps": "IMAP over TLS",
    "pop3": "plain POP3, STLS offered",
    "pop3s": "POP3 over TLS",
    "submission": "SMTP submission, STARTTLS",
    "submissions": "SMTP submission over TLS (implicit)",
    "lmtp": "local delivery (no login)",
}
SPECIAL_FOLDERS = ("Drafts", "Sent", "Trash", "Junk")
START_ATTEMPTS = 3
# What each persona's mail servers offer and say on connect: Outlook takes XOAUTH2 but not
# OAUTHBEARER. (Dovecot cannot change its XOAUTH2 failure challenge or its failure lines.)
PERSONA_MAIL: dict[str, dict[str, Any]] = {
    "generic": {"oauth": ("xoauth2", "oauthbearer"), "greetings": {}},
    "google": {
        "oauth": ("xoauth2", "oauthbearer"),
        "greetings": {"imap": "Gimap ready for requests", "pop3": "Gpop ready for requests",
                      "submission": "ESMTP ready - gsmtp"},
    },
    "microsoft": {
        "oauth": ("xoauth2",),
        "greetings": {"imap": "The Microsoft Exchange IMAP4 service is ready.",
                      "pop3": "The Microsoft Exchange POP3 service is ready.",
                      "submission": "Microsoft ESMTP MAIL Service ready"},
    },
}


PR_SET_PDEATHSIG = 1  # linux/prctl.h


class SandboxError(RuntimeError):
    """The sandbox cannot start or cannot do what was asked; the message says what to do."""


def find_dovecot() -> str:
    """The dovecot binary, or a SandboxError telling the user how to install it.

    HOSTSIM_DOVECOT (a development knob) names the binary to use instead of searching; a path that
    is not there makes Dovecot missing, which is how the tests check the install message.
    """
    override = os.environ.get(DOVECOT_ENV, "").strip()
    for path in (override,) if override else (shutil.which("dovecot"), *DOVECOT_CANDIDATES):
        if path and os.access(path, os.X_OK):
            return path
    looked = f"{override} (from {DOVECOT_ENV})" if override else "/usr/sbin/dovecot"
    raise SandboxError(
        f"Dovecot is not installed (no {looked}). Install it with scripts/install-dovecot "
        "(as root; it uses Debian's dovecot-core, -imapd, -pop3d, -submissiond and -lmtpd), "
        "then start the sandbox again."
    )


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a localhost leaf that Python's strict default context accepts.

    Returns (ca.pem, server.pem, server.key).
    """
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "robomail sandbox CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def folder_dirname(folder: str) -> str:
    """The Maildir++ directory name of an IMAP folder ("A/B" -> ".A.B", names in modified UTF-7)."""
    if folder.upper() == "INBOX":
        return ""
    parts = [imap_utf7.encode(part).decode("ascii") for part in folder.split("/")]
    return "." + ".".join(parts)


def _crlf(message: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", message)


def _die_with_parent() -> None:
    """Linux: Dovecot gets SIGTERM when the process that started it dies, so a test run that is
    killed leaves no mail server behind."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Sandbox(LocalMailServer):
    """A private Dovecot: ``start()``, use ``host``/``ports``/``users``/``ca_file``, ``stop()``."""

    def __init__(
        self,
        provider: FakeProvider | None = None,
        *,
        introspection_url: str | None = None,
        users: dict[str, str] | None = None,
        persona: str | None = None,
    ) -> None:
        self.introspection_url = introspection_url or (
            provider.introspect_url if provider is not None else None
        )
        # Answer as that provider's mail servers do where Dovecot can (PERSONA_MAIL).
        self.persona = persona or (provider.persona if provider is not None else "generic")
        if self.persona not in PERSONA_MAIL:
            raise SandboxError(f"Unknown persona {self.persona!r}: use one of "
                               f"{', '.join(PERSONA_MAIL)}.")
        self.users: dict[str, str] = (
            dict(users)
            if users is not None
            else {u: secrets.token_urlsafe(12) for u in DEFAULT_USERS}
        )
        super().__init__()
        self._proc: subprocess.Popen[bytes] | None = None
        self._relay: LmtpRelay | None = None

    def __repr__(self) -> str:  # no passwords
        state = f"{self.host} {self.ports}" if self._proc else "stopped"
        return f"<Sandbox {state}>"

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Write the config, start Dovecot and the relay, and wait until every port accepts."""
        if self._proc is not None:
            raise SandboxError("The sandbox is running already.")
        dovecot = find_dovecot()
        base = Path(tempfile.mkdtemp(dir="/tmp", prefix="rm-"))
        base.chmod(0o755)
        self.base = base
        try:
            for sub in ("run", "state", "tls"):
                (base / sub).mkdir()
            (base / "mail").mkdir()
            self._own(base / "mail")
            self.ca_file, cert, key = make_certificates(base / "tls")
            self._write_users()
            self._write_oauth_conf()
            self._start_dovecot(dovecot, cert, key)
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)
        return self

    def _start_dovecot(self, dovecot: str, cert: Path, key: Path) -> None:
        assert self.base is not None
        last_log = ""
        for _ in range(START_ATTEMPTS):
            self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
            self._relay = LmtpRelay(self.ports["relay"], self.ports["lmtp"])
            try:
                self._relay.start()
            except (OSError, RuntimeError) as exc:  # port taken in the meantime: pick again
                last_log = str(exc)
                self._relay = None
                continue
            conf = self.base / "dovecot.conf"
            conf.write_text(self._config(cert, key))
            with open(self.base / "dovecot.out", "ab") as out:
                self._proc = subprocess.Popen(
                    [dovecot, "-F", "-c", str(conf)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            if self._wait_ready():
                return
            last_log = self.log_text()
            self._stop_dovecot()
            self._relay.stop()
            self._relay = None
            if "in use" not in last_log:
                break
        raise SandboxError(
            "Dovecot did not start. Its log says:\n"
            + last_log[-3000:]
            + "\nCheck that Dovecot 2.3 is installed (scripts/install-dovecot)."
        )

    def _wait_ready(self) -> bool:
        proc = self._proc
        assert proc is not None
        ports = [p for name, p in self.ports.items() if name != "relay"]  # the relay is ours
        return self._ports_accept(ports, lambda: proc.poll() is None)

    def stop(self) -> None:
        """Stop Dovecot (SIGTERM to the PID in master.pid) and the relay; remove the folder."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        self._stop_dovecot()
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    def _stop_dovecot(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert self.base is not None
        pid = proc.pid
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.base / "run" / "master.pid").read_text().strip())
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def restart_dovecot(self, down_for: float = 0.0) -> None:
        """Stop Dovecot (SIGTERM by PID), wait ``down_for`` seconds, start it again on the same
        ports with the same users and mail: for clients that must ride out a server restart.

        Its mail processes go with it (SIGTERM to the process group Dovecot leads), as in a real
        restart; left alone they would serve their clients for another 10 s."""
        if self.base is None or self._proc is None:
            raise SandboxError("The sandbox is not running.")
        group = self._proc.pid  # started with start_new_session: it leads its process group
        self._stop_dovecot()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGTERM)
        time.sleep(down_for)
        with open(self.base / "dovecot.out", "ab") as out:
            self._proc = subprocess.Popen(
                [find_dovecot(), "-F", "-c", str(self.base / "dovecot.conf")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        if not self._wait_ready():
            raise SandboxError("Dovecot did not start again. Its log says:\n"
                               + self.log_text()[-3000:])

    # --- configuration --------------------------------------------------------------------------

    def _write_user(self, username: str) -> bool:
        """Write users/<name>, one passwd-file per user; returns whether it replaced one.

        One file per user means a new user is seen at once: Dovecot rereads a passwd-file at most
        once a second, and only when its mtime or size changed.
        """
        assert self.base is not None
        folder = self.base / "users"
        if not folder.exists():
            folder.mkdir()
            self._share_with_auth(folder, 0o750)
        path = folder / username.lower()
        old_mtime = int(path.stat().st_mtime) if path.exists() else None
        tmp = folder / f".{username.lower()}.tmp"
        tmp.write_text(f"{username.lower()}:{{PLAIN}}{self.users[username]}::::::\n")
        self._share_with_auth(tmp)
        if old_mtime is not None:  # a new mtime makes Dovecot reread it
            mtime = max(int(time.time()), old_mtime + 1)
            os.utime(tmp, (mtime, mtime))
        tmp.replace(path)
        return old_mtime is not None

    def _write_users(self) -> None:
        for username in self.users:
            self._write_user(username)

    def _write_oauth_conf(self) -> None:
        assert self.base is not None
        path = self.base / "dovecot-oauth2.conf.ext"
        path.write_text(
            "introspection_mode = post\n"
            f"introspection_url = {self.introspection_url or 'http://127.0.0.1:9/none'}\n"
            "force_introspection = yes\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
            "timeout_msecs = 5000\n"
        )
        self._share_with_auth(path)

    def _share_with_auth(self, path: Path, mode: int = 0o640) -> None:
        """Readable by Dovecot's auth process (user dovecot when root), not by everyone."""
        if self._root:
            with contextlib.suppress(KeyError):
                os.chown(path, 0, grp.getgrnam("dovecot").gr_gid)
        path.chmod(mode)

    def _config(self, cert: Path, key: Path) -> str:
        assert self.base is not None
        b, p = self.base, self.ports
        if self._root:
            privileges = ""
            nochroot = ""
        else:
            me = pwd.getpwuid(os.getuid()).pw_name
            group = grp.getgrgid(os.getgid()).gr_name
            privileges = (
                f"default_internal_user = {me}\n"
                f"default_internal_group = {group}\n"
                f"default_login_user = {me}\n"
            )
            nochroot = "  chroot =\n"
        mail = PERSONA_MAIL[self.persona]
        oauth_mechs = " ".join(mail["oauth"])
        oauth = (
            f"passdb {{\n  driver = oauth2\n  mechanisms = {oauth_mechs}\n"
            f"  args = {b}/dovecot-oauth2.conf.ext\n}}\n"
            if self.introspection_url
            else ""
        )
        greetings = "".join(
            f"protocol {proto} {{\n  login_greeting = {text}\n}}\n"
            for proto, text in mail["greetings"].items()
        )
        folders = "".join(
            f"  mailbox {name} {{\n    special_use = \\{name}\n    auto = subscribe\n  }}\n"
            for name in SPECIAL_FOLDERS
        )
        # One login service per protocol, each with a plain (STARTTLS) and an implicit-TLS port.
        logins = "".join(
            f"service {service}-login {{\n"
            f"  inet_listener {plain} {{\n    port = {p[plain]}\n  }}\n"
            f"  inet_listener {tls} {{\n    port = {p[tls]}\n    ssl = yes\n  }}\n"
            f"  service_count = 0\n  process_min_avail = 1\n{nochroot}}}\n"
            for service, plain, tls in (
                ("imap", "imap", "imaps"),
                ("pop3", "pop3", "pop3s"),
                ("submission", "submission", "submissions"),
            )
        )
        return f"""# robomail sandbox: generated, private, throw-away
instance_name = robomail-{b.name}
base_dir = {b}/run
state_dir = {b}/state
log_path = {b}/dovecot.log
listen = 127.0.0.1
protocols = imap pop3 submission lmtp
hostname = localhost
{privileges}ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login {oauth_mechs}
auth_failure_delay = 0
auth_cache_size = 0
auth_verbose = yes
mail_location = maildir:~/Maildir
mail_max_userip_connections = 200
stats_writer_socket_path =
first_valid_uid = {min(self._uid, 500)}
submission_relay_host = 127.0.0.1
submission_relay_port = {p["relay"]}
namespace inbox {{
  inbox = yes
  separator = /
{folders}}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {b}/users/%u
}}
{oauth}{greetings}userdb {{
  driver = static
  args = uid={self._uid} gid={self._gid} home={b}/mail/%u allow_all_users=yes
}}
{logins}service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {p["lmtp"]}
  }}
}}
service imap {{
  process_min_avail = 2
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{nochroot}}}
"""

    # --- users and mail -------------------------------------------------------------------------

    def add_user(self, username: str, password: str) -> None:
        """Add a password user (usable at once) or change a password (takes about a second)."""
        if any(c in username + password for c in ":/\n\r") or username.startswith("."):
            raise SandboxError(
                "User names and passwords must not contain ':', '/' or line breaks, "
                "and user names must not start with '.'."
            )
        with self._lock:
            self.users[username] = password
            if self.base is not None and self._write_user(username):
                # Dovecot may have read the old file this second; it rereads in the next one.
                time.sleep(1.02 - time.time() % 1)

    def maildir(self, username: str) -> Path:
        """The user's Maildir (it may not exist before the first login or delivery)."""
        if self.base is None:
            raise SandboxError("The sandbox is not running.")
        return self.base / "mail" / username.lower() / "Maildir"

    def folder_path(self, username: str, folder: str = "INBOX") -> Path:
        """The Maildir directory that holds ``folder`` (with cur/, new/, tmp/)."""
        return (
            self.maildir(username) / folder_dirname(folder)
            if folder.upper() != "INBOX"
            else (self.maildir(username))
        )

    def _ensure_folder(self, username: str, folder: str) -> Path:
        maildir = self.maildir(username)
        for path in (maildir.parent, maildir):
            if not path.exists():
                path.mkdir(mode=0o700)
                self._own(path)
        target = self.folder_path(username, folder)
        if not target.exists():
            target.mkdir(mode=0o700)
            self._own(target)
        for sub in ("cur", "new", "tmp"):
            path = target / sub
            if not path.exists():
                path.mkdir(mode=0o700)
                self._own(path)
        if target != maildir and not (target / "maildirfolder").exists():
            (target / "maildirfolder").touch()
            self._own(target / "maildirfolder")
        return target

    def seed(self, username: str, messages: list[bytes], folder: str = "INBOX") -> None:
        """Write messages straight into the folder's Maildir new/ (fast; no server round trip)."""
        with self._lock:
            target = self._ensure_folder(username, folder)
            tmp, new = os.path.join(target, "tmp", ""), os.path.join(target, "new", "")
            stamp = int(time.time())
            pid = os.getpid()
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            for message in messages:
                self._seq += 1
                name = f"{stamp}.M{self._seq}P{pid}.sandbox"
                fd = os.open(tmp + name, flags, 0o600)
                try:
                    view = memoryview(message)
                    while view:
                        view = view[os.write(fd, view) :]
                    if self._root:
                        os.fchown(fd, self._uid, self._gid)
                finally:
                    os.close(fd)
                os.rename(tmp + name, new + name)

    def deliver(self, username: str, message: bytes, folder: str = "INBOX") -> None:
        """Deliver through the real server: LMTP for INBOX, IMAP APPEND for other folders."""
        if self.base is None:
            raise SandboxError("The sandbox is not running.")
        data = _crlf(message)
        if folder.upper() == "INBOX":
            with smtplib.LMTP(self.host, self.ports["lmtp"], timeout=30) as lmtp:
                lmtp.ehlo_or_helo_if_needed()
                options = ["BODY=8BITMIME"] if any(b > 127 for b in data) else []
                lmtp.sendmail("sandbox@localhost", [username], data, mail_options=options)
            return
        if username not in self.users:
            raise SandboxError(f"{username} has no password here; use add_user() or seed().")
        with imaplib.IMAP4_SSL(
            self.host, self.ports["imaps"], ssl_context=self.ssl_context(), timeout=30
        ) as imap:
            imap.login(username, self.users[username])
            name = imap_utf7.encode(folder).decode("ascii")
            quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            imap.create(quoted)  # fails harmlessly when it exists
            typ, data_ = imap.append(quoted, None, None, data)
            if typ != "OK":
                raise SandboxError(f"APPEND to {folder!r} failed: {data_!r}")
            imap.logout()

    def clear(self, username: str, *, remove_folders: bool = False) -> None:
        """Delete every message of the user in every folder (and, if asked, the extra folders)."""
        with self._lock:
            maildir = self.maildir(username)
            if not maildir.exists():
                return
            keep = {folder_dirname(f) for f in SPECIAL_FOLDERS}
            folders = [maildir] + [
                d for d in maildir.iterdir() if d.is_dir() and d.name.startswith(".")
            ]
            for folder in folders:
                if remove_folders and folder != maildir and folder.name not in keep:
                    shutil.rmtree(folder, ignore_errors=True)
                    continue
                for sub in ("new", "cur", "tmp"):
                    path = folder / sub
                    if path.is_dir():
                        for entry in os.scandir(path):
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(entry.path)

    # --- helpers for clients --------------------------------------------------------------------

    def log_text(self) -> str:
        """Dovecot's log and its startup output (no secrets: auth_debug is off)."""
        if self.base is None:
            return ""
        parts = []
        for name in ("dovecot.out", "dovecot.log"):
            with contextlib.suppress(OSError):
                parts.append((self.base / name).read_text(errors="replace"))
        return "".join(parts)


SANDBOX_RECORD = "sandbox"
SANDBOX_CLIENT = "demo-client"
EXAMPLE_TASK = Path(__file__).resolve().parents[2] / "examples" / "imap-mail-loop.yaml"
SAMPLE_MAIL = (
    ("Invoice 2026-114", "billing@shop.example", "Amount due: 42.00 EUR"),
    ("Spring offers", "newsletter@shop.example", "Twenty percent off everything."),
    ("Team lunch on Friday", "bob@example.test", "Pizza at noon?"),
)
_SANDBOX_TOKEN_URL = re.compile(r"http://127\.0\.0\.1:\d+/token")


class _AutoConsentBrowser(webbrowser.BaseBrowser):
    """Get Refresh Token's browser: follows the sign-in in a thread, as a person's browser would
    (the fake provider consents at once), and keeps any error for the message."""

    def __init__(self) -> None:
        super().__init__("hostsim-sandbox-browser")
        self.error: str | None = None

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        threading.Thread(target=self._follow, args=(url,), daemon=True).start()
        return True

    def _follow(self, url: str) -> None:
        from hostsim.devservers.fakebrowser import FakeBrowserError, follow

        try:
            follow(url)
        except FakeBrowserError as exc:
            self.error = str(exc)


@contextlib.contextmanager
def _auto_consent_browser() -> Iterator[_AutoConsentBrowser]:
    browser = _AutoConsentBrowser()
    webbrowser.register(browser.name, None, browser, preferred=True)
    try:
        yield browser
    finally:
        webbrowser._browsers.pop(browser.name, None)  # type: ignore[attr-defined]
        webbrowser._tryorder = None  # type: ignore[attr-defined]  # BROWSER etc. read anew


def _quiet_context() -> Any:
    """An editor-command context that keeps progress lines (the sign-in URL) for an error message
    instead of printing them."""
    from hostsim.cli.commands import CommandContext

    class QuietContext(CommandContext):
        lines: list[str]

        def log(self, message: str, level: str = "info") -> None:
            self.lines.append(self.masker.mask(message))

    ctx = QuietContext(interactive=False)
    ctx.lines = []
    return ctx


def _answers(url: str) -> bool:
    """Whether something listens at the URL's host and port (a sandbox still running)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=1):
            return True
    except OSError:
        return False


class SandboxRecord:
    """The OAuth record ``hostsim sandbox`` keeps in the user's credential store while it runs.

    It is made through the OAuth editor's own commands (add, then Get Refresh Token with a browser
    that signs in by itself), so the client secret and the tokens stay in the encrypted store and
    never reach the terminal. ``remove()`` deletes it: its endpoints die with the fake provider.
    A record of that name left by a sandbox that was killed is replaced; any other is kept.
    """

    def __init__(self, name: str, provider: FakeProvider, client_secret: str) -> None:
        from hostsim.runtime.host import Host
        from hostsim.runtime.registry import RegistrationError

        self.name = name
        self.provider = provider
        self.client_secret = client_secret
        self.created = False
        self.replaced_stale = False
        try:
            editor = Host.load().registry.editors.get("oauth")
        except RegistrationError as exc:
            raise SandboxError(f"a plugin could not be loaded: {exc}") from None
        if editor is None:
            raise SandboxError(
                "robomail's OAuth editor is not loaded (is robomail installed and not blocked?). "
                "Start with --no-record to run the servers without a record."
            )
        self._editor = editor
        self._ctx = _quiet_context()
        self._ctx.add_secret(client_secret)

    def _run(self, command_id: str, **given: Any) -> Any:
        from robomail_plugin.host_kit import command_params

        command = self._editor.command(command_id)
        return command.run(self._ctx, command_params(command, self.name, **given))

    def make_room(self) -> None:
        """Before anything starts: delete a record of that name a killed sandbox left, or say
        why the name cannot be used (SandboxError)."""
        from robomail_plugin.schema import ActionFailed

        try:
            self._replace_stale()
        except ActionFailed as exc:
            raise SandboxError(self._failed(str(exc))) from None

    def create(self) -> None:
        """Add the record and get its refresh token; SandboxError says what went wrong."""
        from robomail_plugin.schema import ActionFailed

        try:
            self._run(
                "add",
                account=self.provider.consent_user,
                client_id=SANDBOX_CLIENT,
                client_secret=self.client_secret,
                auth_endpoint=self.provider.authorize_url,
                token_endpoint=self.provider.token_url,
                scope="mail offline_access",
            )
            self.created = True
            with _auto_consent_browser() as browser:
                try:
                    self._run("get_refresh_token", timeout=30)
                except ActionFailed as exc:
                    why = f" The sign-in page said: {browser.error}" if browser.error else ""
                    raise SandboxError(self._failed(str(exc) + why)) from None
        except ActionFailed as exc:
            raise SandboxError(self._failed(str(exc))) from None

    def _failed(self, why: str) -> str:
        return (
            f"The OAuth record {self.name!r} could not be set up: {self._ctx.masker.mask(why)}\n"
            "Start with --no-record to run the servers without it."
        )

    def _replace_stale(self) -> None:
        from robomail_plugin.errors import RecordNotFound

        try:
            shown = self._run("show").data
        except RecordNotFound:
            return
        endpoint = str(shown.get("token_endpoint", ""))
        if shown.get("client_id") != SANDBOX_CLIENT or not _SANDBOX_TOKEN_URL.fullmatch(endpoint):
            raise SandboxError(
                f"Your credential store has an OAuth record named {self.name!r} that no sandbox "
                "made; it is left as it is. Give the sandbox's record another name: "
                "hostsim sandbox --record NAME (or start with --no-record)."
            )
        if endpoint != self.provider.token_url and _answers(endpoint):  # (ours reused its port)
            raise SandboxError(
                f"Another hostsim sandbox is running with the OAuth record {self.name!r}. Give "
                "this one another name: hostsim sandbox --record NAME."
            )
        self._run("delete")  # a sandbox that was killed left it; its provider is gone
        self.replaced_stale = True

    def remove(self) -> bool:
        """Delete the record if it is still this sandbox's; whether it did."""
        from robomail_plugin.schema import ActionFailed

        if not self.created:
            return False
        try:
            if self._run("show").data.get("token_endpoint") != self.provider.token_url:
                return False  # replaced by someone else since: not ours to delete
            self._run("delete")
        except ActionFailed:
            return False
        self.created = False
        return True


def _sample_mail(to: str) -> list[bytes]:
    out = []
    for subject, sender, body in SAMPLE_MAIL:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, to, subject
        msg["Message-ID"] = f"<{secrets.token_hex(8)}@sandbox.test>"
        msg.set_content(body)
        out.append(bytes(msg))
    return out


def _example_path() -> str:
    """The example task as the user can type it: relative when under the current folder."""
    if not EXAMPLE_TASK.exists():
        return "examples/" + EXAMPLE_TASK.name
    try:
        return str(EXAMPLE_TASK.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(EXAMPLE_TASK)


def try_it_command(box: Sandbox, record: str) -> str:
    """The one command that runs the IMAP example against the sandbox with the record."""
    words = [
        "hostsim", "run", _example_path(),
        "--var", f"Server={box.host}",
        "--var", f"Port={box.ports['imaps']}",
        "--var", f"CaFile={box.ca_file}",
        "--var", f"Record={record}",
    ]
    return " ".join(shlex.quote(w) for w in words)


def write_task_vars(box: Sandbox, record: str, user: str) -> Path:
    """vars.json in the sandbox folder: what a task needs to reach the sandbox (no secrets)."""
    assert box.base is not None
    path = box.base / "vars.json"
    values = {
        "Server": box.host,
        "Port": box.ports["imaps"],
        "ImapPort": box.ports["imaps"],
        "Pop3Port": box.ports["pop3s"],
        "SmtpPort": box.ports["submission"],
        "CaFile": str(box.ca_file),
        "Record": record,
        "User": user,
    }
    path.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    return path


def serve_forever(
    users: dict[str, str] | None = None, *, record: str | None = SANDBOX_RECORD
) -> None:
    """Run a fake provider and a sandbox in the foreground (``hostsim sandbox``) until Ctrl-C,
    SIGTERM or SIGHUP; with ``record``, also an OAuth record and sample mail to try a task on.

    Every clean stop removes the sandbox folder (credentials, TLS keys, mail) and the record.
    """
    from hostsim.devservers.fakeprovider import FakeProvider

    find_dovecot()  # a missing Dovecot is the only thing said
    provider = FakeProvider()
    client_secret = secrets.token_urlsafe(18)
    provider.register_client(SANDBOX_CLIENT, client_secret)
    provider.register_client("demo-public-client", None)
    box: Sandbox | None = None
    made: SandboxRecord | None = None
    folder: Path | None = None
    with StopSignals() as stop:
        try:
            provider.start()
            if record:
                made = SandboxRecord(record, provider, client_secret)
                made.make_room()
            box = Sandbox(provider, users=users)  # after start: it needs the provider's URL
            box.start()
            folder = box.base
            assert folder is not None
            print(f"Mail sandbox on {box.host} (folder {folder})")
            for name, what in PORT_HELP.items():
                print(f"  {name:<12} {box.ports[name]:<10} {what}")
            print(f"  CA file      {box.ca_file}")
            secrets_file = write_secrets_file(
                folder / "credentials.json",
                {"users": dict(box.users), "clients": {SANDBOX_CLIENT: client_secret}},
            )
            print("Users (password logins): " + ", ".join(box.users))
            print(f"Fake OAuth provider at {provider.base_url}")
            print(f"  authorize {provider.authorize_url}")
            print(f"  token     {provider.token_url}")
            print(f"  client_id {SANDBOX_CLIENT} (confidential), demo-public-client (public)")
            print(f"Passwords and the client secret: {secrets_file} (mode 0600; never printed)")
            print(f"  signs in as {provider.consent_user}")
            if made is not None:
                made.create()
                _print_try_it(box, made, provider.consent_user)
            print("Press Ctrl-C to stop.", flush=True)
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stop.stopping()
            try:
                removed = made.remove() if made is not None else False
                if box is not None:
                    box.stop()
            finally:
                provider.stop()
            if folder is not None:
                also = f" and the OAuth record {record!r}" if removed else ""
                with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                    print(f"Sandbox stopped: removed {folder}{also}.", flush=True)


def _print_try_it(box: Sandbox, made: SandboxRecord, user: str) -> None:
    box.seed(user, _sample_mail(user))
    vars_file = write_task_vars(box, made.name, user)
    if made.replaced_stale:
        print(f"Replaced the OAuth record {made.name!r} a sandbox that was killed left behind.")
    print(f"OAuth record {made.name!r} is in your credential store ({user}, refresh token set);")
    print("  the sandbox deletes it when it stops.")
    print(f"{len(SAMPLE_MAIL)} sample messages are in {user}'s INBOX.")
    print(f"Task variables (no secrets): {vars_file}")
    same = [n for n in ("ROBOMAIL_HOME", "ROBOMAIL_KEY", "HOSTSIM_HOME") if os.environ.get(n)]
    where = f" (with the same {', '.join(same)})" if same else ""
    print(f"Try it from another terminal{where}:")
    print(f"  {try_it_command(box, made.name)}")
