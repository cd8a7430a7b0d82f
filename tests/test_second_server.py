"""robomail's IMAP and POP3 actions against two server implementations: Dovecot (the sandbox)
and GNU Mailutils (imap4d, pop3d; hostsim/mailutils.py), which lacks MOVE, UIDPLUS, keywords,
CONDSTORE and SPECIAL-USE, so the fallbacks meet a real server. docs/servers.md lists what each
server offers and what robomail does without it.

Also here: no password in clear when the server says not to (LOGINDISABLED, POP3 without USER),
raw searches with non-ASCII text, and a connection that is dropped after it broke.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from imap_helpers import log, logged, run, run_ok, step
from imapclient import IMAPClient
from mail_fixtures import MailUser, make_message

from hostsim.mailutils import MailutilsServer

pytestmark = pytest.mark.sandbox  # Dovecot or Mailutils: both are private servers on loopback


@pytest.fixture(scope="session")
def mailutils() -> Iterator[MailutilsServer]:
    """A running GNU Mailutils imap4d + pop3d (scripts/install-mailutils unpacks them)."""
    server = MailutilsServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@attrs.frozen
class Target:
    """One server under test and a fresh user with an empty mailbox on it."""

    name: str
    server: Any  # hostsim.sandbox.Sandbox or hostsim.mailutils.MailutilsServer
    user: MailUser

    def seed(self, messages: list[bytes], folder: str = "INBOX") -> None:
        self.server.seed(self.user.username, messages, folder)

    def imap(self, security: str = "ssl", **extra: Any) -> dict[str, Any]:
        """IMAP Open params (password login)."""
        port = self.server.ports["imaps" if security == "ssl" else "imap"]
        return {
            "server": self.server.host,
            "port": port,
            "security": security,
            "ca_file": str(self.server.ca_file),
            "username": self.user.username,
            "password": self.user.password,
            "timeout": 20,
            **extra,
        }

    def pop3(self, security: str = "ssl", **extra: Any) -> dict[str, Any]:
        """POP3 Open params (password login)."""
        port = self.server.ports["pop3s" if security == "ssl" else "pop3"]
        return {
            "server": self.server.host,
            "port": port,
            "security": security,
            "ca_file": str(self.server.ca_file),
            "username": self.user.username,
            "password": self.user.password,
            "timeout": 20,
            **extra,
        }

    def client(self, folder: str | None = "INBOX") -> IMAPClient:
        """A direct IMAP connection for setting up and checking the mailbox."""
        c = IMAPClient(
            self.server.host, port=self.server.ports["imaps"], ssl_context=self.server.ssl_context()
        )
        c.login(self.user.username, self.user.password)
        if folder:
            c.select_folder(folder)
        return c

    def subjects(self, folder: str = "INBOX") -> dict[int, str]:
        """UID -> Subject of the messages in ``folder``, not counting those marked \\Deleted."""
        with self.client(None) as c:
            c.select_folder(folder, readonly=True)
            uids = c.search(["UNDELETED"])
            data = c.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]) if uids else {}
        out = {}
        for uid, entry in data.items():
            raw = entry[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode()
            out[uid] = raw.split(":", 1)[1].strip() if ":" in raw else ""
        return out


def _new_user(server: Any) -> MailUser:
    user = MailUser(f"s{secrets.token_hex(5)}@example.test", secrets.token_urlsafe(12))
    server.add_user(user.username, user.password)
    return user


@pytest.fixture(params=["dovecot", "mailutils"])
def target(request) -> Target:
    """Each test that takes it runs once against Dovecot and once against Mailutils."""
    server = request.getfixturevalue("sandbox" if request.param == "dovecot" else "mailutils")
    return Target(request.param, server, _new_user(server))


@pytest.fixture
def mu_user(mailutils) -> MailUser:
    return _new_user(mailutils)


def imap_open(params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"action": "IMAP Open", "params": {**params, **extra}}


def pop3_step(action: str, do: list[dict[str, Any]] | None = None, **params: Any) -> dict:
    return step(f"POP3 {action}", do=do, **params)


# --- no password in clear --------------------------------------------------------------------


def test_imap_refuses_a_clear_password_when_the_server_says_logindisabled(host, mailutils, mu_user):
    """RFC 3501: a client must not send LOGIN after LOGINDISABLED; robomail said 'wrong
    password' after sending it in clear."""
    target = Target("mailutils", mailutils, mu_user)
    result = run(host, [imap_open(target.imap("none"))])
    assert not result.ok
    assert result.error.code == "connect_failed", result.error
    text = result.error.description
    assert "LOGINDISABLED" in text and "security: starttls" in text and "in clear" in text
    assert f"LOGIN {mu_user.username}" not in mailutils.log_text("imap4d")  # never sent
    # the same port with STARTTLS takes the password
    run_ok(host, [imap_open(target.imap("starttls")), step("IMAP Close")])


def test_pop3_refuses_a_clear_password_when_the_server_offers_no_user(host, mailutils, mu_user):
    """A POP3 server that lists no USER in CAPA takes no password on this connection."""
    target = Target("mailutils", mailutils, mu_user)
    result = run(host, [pop3_step("Open", **target.pop3("none"))])
    assert not result.ok
    assert result.error.code == "connect_failed", result.error
    text = result.error.description
    assert "USER" in text and "security: starttls" in text and "in clear" in text
    assert f"USER {mu_user.username}" not in mailutils.log_text("pop3d")  # never sent
    run_ok(host, [pop3_step("Open", **target.pop3("starttls")), pop3_step("Close")])


# --- raw searches with non-ASCII values (CHARSET UTF-8, values as literals) ---------------------


def _utf8_header_message(subject: str) -> bytes:
    """A message whose Subject is raw UTF-8 (RFC 6532), not an encoded word."""
    return (
        f"From: a@example.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n"
    ).encode()


RAW_CASES = {
    'SUBJECT "Grüße"': ["Grüße aus Köln", "Grüße, roh"],
    'OR (SUBJECT "Hello") (SUBJECT "Köln")': ["Grüße aus Köln", "Hello", "Köln again"],
    'NOT SUBJECT "Köln" NOT SUBJECT "roh"': ["Hello"],
    "subject köln": ["Grüße aus Köln", "Köln again"],
    '(SUBJECT "roh")': ["Grüße, roh"],
}


def test_raw_search_with_non_ascii_values(host, target):
    """8-bit values go as literals where they stand, with CHARSET UTF-8: the whole text as one
    literal was refused by every server (a string, not search keys)."""
    target.seed(
        [make_message(s) for s in ("Grüße aus Köln", "Hello", "Köln again")]
        + [_utf8_header_message("Grüße, roh")]
    )
    steps = [imap_open(target.imap(), folder="INBOX")]
    for i, query in enumerate(RAW_CASES):
        steps.append(
            step("IMAP Mail Loop", raw_search=query, do=[log(f"Q{i}:{{json:Msg.subject}}")])
        )
    result = run_ok(host, steps)
    for i, (query, expected) in enumerate(RAW_CASES.items()):
        assert sorted(logged(result, f"Q{i}")) == expected, (target.name, query)


def test_raw_search_refuses_line_breaks_and_literals(host, target):
    """A line break in raw_search would end the command and start another (here: LOGOUT)."""
    target.seed([make_message("one")])
    for query, needle in (
        ("ALL\r\nX1 LOGOUT", "control characters"),
        ('SUBJECT "open', "not closed"),
        ("SUBJECT {3}", "double quotes"),
    ):
        result = run(host, [imap_open(target.imap(), folder="INBOX"),
                            step("IMAP Mail Loop", raw_search=query, do=[])])
        assert result.error is not None and result.error.code == "invalid_parameter", query
        assert needle in result.error.description


# --- a connection that broke is dropped, not used again ------------------------------------------


def _descends_from_me(pid: int) -> bool:
    """Whether ``pid`` is a process this test session started (directly or below)."""
    me = os.getpid()
    while pid > 1:
        if pid == me:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def _server_end(port: int) -> list[int]:
    """The PIDs (started by this test session) holding the server end of an established TCP
    connection on 127.0.0.1:``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "01":  # ESTABLISHED
            inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not _descends_from_me(int(proc.name)):
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                pids.append(int(proc.name))
    return pids


class _PauseServer(io.StringIO):
    """The task's log, read as it is written: at "PAUSE" the server process serving the
    connection stops (SIGSTOP), at "RESUME" it goes on and answers what waited."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.stopped: list[int] = []

    def write(self, text: str) -> int:
        if "PAUSE" in text and "Log Message" not in text:
            self.stopped = _server_end(self.port)
            assert self.stopped, "no server process holds the connection"
            for pid in self.stopped:
                os.kill(pid, signal.SIGSTOP)
        elif "RESUME" in text and "Log Message" not in text:
            self.resume()
            time.sleep(0.5)  # its late answer to the search arrives on the old connection
        return super().write(text)

    def resume(self) -> None:
        for pid in self.stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.stopped = []


def test_a_connection_that_timed_out_is_dropped_not_used_again(host, target):
    """After a timeout client and server no longer agree where the conversation is (the late
    answer is still on its way). The broken session stayed registered: every later step used it
    and failed, and IMAP Open could not take the name again. It is dropped and the name freed."""
    target.seed([make_message(f"m{i}") for i in range(3)])
    params = target.imap(timeout=1)
    steps = [
        imap_open(params, folder="INBOX"),
        log("PAUSE"),
        step("IMAP Mail Loop", do=[]),  # times out: the server is stopped
        log("RESUME"),
        step("IMAP Mail Loop", messages="flagged", do=[log("S:{json:Msg.subject}")]),
        imap_open(params, folder="INBOX"),
        step("IMAP Mail Loop", messages="flagged", do=[log("S:{json:Msg.subject}")]),
        step("IMAP Folder Info", save_to="Info"),
    ]
    text = yaml.safe_dump({"name": "t", "on_error": "continue", "steps": steps})
    out = _PauseServer(params["port"])
    try:
        result = host.run_text(text, out=out)
    finally:
        out.resume()
    assert logged(result) == []  # nothing is flagged
    log_text = "\n".join(result.log)
    assert "[step 3] ERROR" in log_text and "timed out" in log_text
    assert "[step 5] ERROR" in log_text and "dropped" in log_text
    assert "[step 6] ERROR" not in log_text  # the name was free again
    assert json.loads(result.variables["Info"])["total"] == 3
    assert result.errors == 2, log_text
