"""A private Dovecot 2.3 (IMAP, POP3, submission, LMTP) on loopback that checks OAuth tokens.

Everything lives in one short folder under /tmp (config, sockets, certificates, mail, logs) and
goes away on ``stop()``. Passwords come from a passwd-file; XOAUTH2 and OAUTHBEARER tokens are
checked on every login against the fake provider's introspection endpoint, so a token robomail
obtained is the token the server checks. See docs/sandbox.md and
/work/shared/reference/dovecot-oauth.md for why each setting is there.
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
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from imapclient import imap_utf7

from hostsim.relay import LmtpRelay

if TYPE_CHECKING:
    from hostsim.fakeprovider import FakeProvider

DOVECOT_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")
DOVECOT_ENV = "HOSTSIM_DOVECOT"
MAIL_UID = 5000
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
READY_TIMEOUT = 15.0


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


def free_ports(count: int) -> list[int]:
    """Distinct ports the OS calls free right now (bound to port 0, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


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


class Sandbox:
    """A private Dovecot: ``start()``, use ``host``/``ports``/``users``/``ca_file``, ``stop()``."""

    host = "127.0.0.1"

    def __init__(
        self,
        provider: FakeProvider | None = None,
        *,
        introspection_url: str | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.introspection_url = introspection_url or (
            provider.introspect_url if provider is not None else None
        )
        self.users: dict[str, str] = (
            dict(users)
            if users is not None
            else {u: secrets.token_urlsafe(12) for u in DEFAULT_USERS}
        )
        self.ports: dict[str, int] = {}
        self.base: Path | None = None
        self.ca_file: Path = Path()
        self._proc: subprocess.Popen[bytes] | None = None
        self._relay: LmtpRelay | None = None
        self._lock = threading.Lock()
        self._seq = 0
        self._root = os.geteuid() == 0
        self._uid = MAIL_UID if self._root else os.getuid()
        self._gid = MAIL_UID if self._root else os.getgid()

    def __repr__(self) -> str:  # no passwords
        state = f"{self.host} {self.ports}" if self._proc else "stopped"
        return f"<Sandbox {state}>"

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
        assert self._proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        pending = [p for name, p in self.ports.items() if name != "relay"]
        while pending and time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            port = pending[0]
            try:
                with socket.create_connection((self.host, port), timeout=1):
                    pending.pop(0)
            except OSError:
                time.sleep(0.02)
        return not pending

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

    # --- configuration --------------------------------------------------------------------------

    def _own(self, path: Path) -> None:
        if self._root:
            os.chown(path, self._uid, self._gid)

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
        oauth = (
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {b}/dovecot-oauth2.conf.ext\n}}\n"
            if self.introspection_url
            else ""
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
auth_mechanisms = plain login xoauth2 oauthbearer
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
{oauth}userdb {{
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

    def ssl_context(self) -> ssl.SSLContext:
        """A default (strict) client context that trusts the sandbox's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def log_text(self) -> str:
        """Dovecot's log and its startup output (no secrets: auth_debug is off)."""
        if self.base is None:
            return ""
        parts = []
        for name in ("dovecot.out", "dovecot.log"):
            with contextlib.suppress(OSError):
                parts.append((self.base / name).read_text(errors="replace"))
        return "".join(parts)


def write_secrets_file(path: Path, secrets_by_kind: dict[str, dict[str, str]]) -> Path:
    """Writes throw-away secrets to a file only its owner can read, so no terminal shows them."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(secrets_by_kind, fh, indent=2)
    return path


def serve_forever(users: dict[str, str] | None = None) -> None:
    """Run a fake provider and a sandbox in the foreground (``hostsim sandbox``) until Ctrl-C."""
    from hostsim.fakeprovider import FakeProvider

    provider = FakeProvider()
    client_secret = secrets.token_urlsafe(18)
    provider.register_client("demo-client", client_secret)
    provider.register_client("demo-public-client", None)
    provider.start()
    try:
        with Sandbox(provider, users=users) as box:
            print(f"Mail sandbox on {box.host} (folder {box.base})")
            for name, what in PORT_HELP.items():
                print(f"  {name:<12} {box.ports[name]:<10} {what}")
            print(f"  CA file      {box.ca_file}")
            assert box.base is not None
            secrets_file = write_secrets_file(
                box.base / "credentials.json",
                {"users": dict(box.users), "clients": {"demo-client": client_secret}},
            )
            print("Users (password logins): " + ", ".join(box.users))
            print(f"Fake OAuth provider at {provider.base_url}")
            print(f"  authorize {provider.authorize_url}")
            print(f"  token     {provider.token_url}")
            print("  client_id demo-client (confidential), demo-public-client (public)")
            print(f"Passwords and the client secret: {secrets_file} (mode 0600; never printed)")
            print(f"  signs in as {provider.consent_user}")
            print("Press Ctrl-C to stop.", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        provider.stop()
