"""robomail's IMAP and POP3 actions against two server implementations: Dovecot (the sandbox)
and GNU Mailutils (imap4d, pop3d; hostsim/devservers/mailutils.py), which lacks MOVE, UIDPLUS, keywords,
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

from hostsim.devservers.mailutils import MailutilsServer

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
    server: Any  # hostsim.devservers.sandbox.Sandbox or hostsim.devservers.mailutils.MailutilsServer
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
    steps.append(  # the same values as conditions (SEARCH keys robomail writes itself)
        step(
            "IMAP Mail Loop",
            conditions=[{"field": "subject", "op": "contains", "value": "grüße"}],
            do=[log("C:{json:Msg.subject}")],
        )
    )
    result = run_ok(host, steps)
    for i, (query, expected) in enumerate(RAW_CASES.items()):
        assert sorted(logged(result, f"Q{i}")) == expected, (target.name, query)
    assert sorted(logged(result, "C")) == ["Grüße aus Köln", "Grüße, roh"]


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


# --- the IMAP and POP3 actions on both servers ---------------------------------------------------


def _three(target: Target) -> None:
    target.seed(
        [
            make_message("first", body="one"),
            make_message("second", body="two", attachment=("a.txt", b"attached")),
            make_message("third", body="three"),
        ]
    )


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_imap_open_with_a_password(host, target, security):
    _three(target)
    result = run_ok(
        host,
        [
            imap_open(target.imap(security), folder="INBOX"),
            step("IMAP Folder Info", save_to="Info"),
            step("IMAP Close"),
        ],
    )
    info = json.loads(result.variables["Info"])
    assert (info["folder"], info["total"], info["unseen"]) == ("INBOX", 3, 3)


def test_imap_select_loop_download_flags_delete_info(host, target, tmp_path):
    _three(target)
    target.seed([make_message("filed")], folder="Archive")
    steps = [
        imap_open(target.imap()),
        step("IMAP Select Mail Folder", folder="INBOX", save_info_to="Selected"),
        step(
            "IMAP Mail Loop",
            conditions=[{"field": "subject", "op": "not_contains", "value": "third"}],
            do=[log("S:{json:Msg.uid} {json:Msg.subject} {json:Msg.seen}")],
        ),
        step("IMAP Set Message Flags", uid="1", flags="\\Flagged \\Seen"),
        step("IMAP Set Message Flags", uid="1", flags="\\Seen", operation="remove"),
        step("IMAP Get Message Flags", uid="1", save_to="Flags1", as_json=True),
        step(
            "IMAP Download Message",
            uid="2",
            folder=str(tmp_path / "eml"),
            attachments_folder=str(tmp_path / "att"),
            mark_seen=True,
            save_path_to="EmlPath",
        ),
        step("IMAP Get Message Flags", uid="2", save_to="Flags2"),
        step("IMAP Mail Loop", messages="flagged", do=[log("F:{json:Msg.subject}")]),
        step("IMAP Set Message Flags", uid="3", flags="\\Deleted"),
        step("IMAP Delete Marked Messages", save_count_to="Expunged"),
        step("IMAP Folder Info", save_to="Inbox"),
        step("IMAP Folder Info", folder="Archive", save_to="Archive"),
        step("IMAP Select Mail Folder", folder="Archive", read_only=True),
        step("IMAP Mail Loop", do=[log("A:{json:Msg.subject}")]),
        step("IMAP Close"),
    ]
    result = run_ok(host, steps)
    v = result.variables
    assert json.loads(v["Selected"])["total"] == 3
    assert logged(result) == ["1 first False", "2 second False"]
    assert set(json.loads(v["Flags1"])) - {"\\Recent"} == {"\\Flagged"}
    assert "\\Seen" in v["Flags2"].split()  # mark_seen
    assert logged(result, "F") == ["first"]
    saved = Path(v["EmlPath"]).read_bytes()
    assert b"Subject: second" in saved and (tmp_path / "att" / "a.txt").read_bytes() == b"attached"
    assert int(v["Expunged"]) == 1
    inbox = json.loads(v["Inbox"])
    assert (inbox["total"], inbox["unseen"]) == (2, 1)  # 1 lost its \Seen, 2 was downloaded
    assert json.loads(v["Archive"])["total"] == 1
    assert logged(result, "A") == ["filed"]
    assert target.subjects() == {1: "first", 2: "second"}


def test_imap_move_message(host, target):
    """Dovecot moves with MOVE; Mailutils has no MOVE and no UIDPLUS, so robomail copies, marks
    the original \\Deleted and says it stays until Delete Marked Messages."""
    _three(target)
    steps = [
        imap_open(target.imap(), folder="INBOX"),
        step("IMAP Move Message", uid="2", destination="Archive", create_if_missing=True,
             save_new_uid_to="NewUid"),
        step("IMAP Mail Loop", messages="undeleted", do=[log("S:{json:Msg.subject}")]),
        step("IMAP Delete Marked Messages", save_count_to="Expunged"),
        step("IMAP Folder Info", folder="Archive", save_to="Archive"),
    ]
    result = run_ok(host, steps)
    v = result.variables
    assert logged(result) == ["first", "third"]
    assert json.loads(v["Archive"])["total"] == 1
    assert set(target.subjects("Archive").values()) == {"second"}
    assert set(target.subjects().values()) == {"first", "third"}
    log_text = "\n".join(result.log)
    if target.name == "dovecot":
        assert "(MOVE)" in log_text
        assert int(v["NewUid"]) == 1  # from COPYUID (UIDPLUS)
        assert int(v["Expunged"]) == 0
    else:
        assert "COPY + \\Deleted" in log_text and "stay in 'INBOX' marked \\Deleted" in log_text
        assert v["NewUid"] == ""  # no UIDPLUS: the new UID is not known
        assert int(v["Expunged"]) == 1


def test_imap_move_and_flags_when_uids_are_not_sequence_numbers(host, target):
    """After an expunge UIDs and sequence numbers differ. Mailutils answers UID SEARCH UID n as
    if n were a sequence number, and its STORE answers carry no UID: the checks of Move and Set
    Message Flags must not rely on either (issue 11)."""
    target.seed([make_message(f"m{i}") for i in range(1, 6)])
    steps = [
        imap_open(target.imap(), folder="INBOX"),
        step("IMAP Set Message Flags", uid="1,2", flags="\\Deleted"),
        step("IMAP Delete Marked Messages"),  # UIDs 3, 4, 5 are now at 1, 2, 3
        step("IMAP Set Message Flags", uid="4", flags="\\Flagged"),
        step("IMAP Move Message", uid="3", destination="Done", create_if_missing=True),
        step("IMAP Delete Marked Messages"),
        step("IMAP Mail Loop", do=[log("S:{json:Msg.uid} {json:Msg.subject}")]),
        step("IMAP Mail Loop", messages="flagged", do=[log("F:{json:Msg.uid}")]),
        step("IMAP Set Message Flags", uid="2", flags="\\Seen"),  # gone: message_not_found
    ]
    result = run(host, steps)
    assert result.error is not None and result.error.code == "message_not_found", result.error
    assert result.error.action == "robomail.imap_set_message_flags"
    assert "no message with UID 2 in folder 'INBOX'" in result.error.description
    assert logged(result) == ["4 m4", "5 m5"]
    assert logged(result, "F") == ["4"]
    assert set(target.subjects("Done").values()) == {"m3"}


def test_imap_delete_marked_by_uid_and_keywords(host, target):
    """Expunging only some UIDs needs UIDPLUS, and keywords need a server that keeps them
    (PERMANENTFLAGS \\*): Dovecot has both, Mailutils neither, and says so."""
    _three(target)
    steps = [
        imap_open(target.imap(), folder="INBOX"),
        step("IMAP Set Message Flags", uid="1:3", flags="\\Deleted"),
        step("IMAP Delete Marked Messages", uids="1", save_count_to="N"),
        step("IMAP Set Message Flags", uid="2", flags="$Work"),
        step("IMAP Folder Info", save_to="Info"),  # the connection is still usable
    ]
    result = run(host, steps, on_error="continue")
    v = result.variables
    assert json.loads(v["Info"])["total"] == (2 if target.name == "dovecot" else 3)
    log_text = "\n".join(result.log)
    if target.name == "dovecot":
        assert result.errors == 0, log_text
        assert int(v["N"]) == 1
    else:
        assert result.errors == 2, log_text
        assert "lacks UIDPLUS, so it cannot expunge only some UIDs" in log_text
        assert "[step 4] ERROR" in log_text and "server_error" in log_text


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_pop3_open_count_loop_download_delete(host, target, tmp_path, security):
    _three(target)
    params = target.pop3(security)
    result = run_ok(
        host,
        [
            pop3_step("Open", **params, save_count_to="N"),
            pop3_step("Messages Count", save_count_to="C", save_size_to="Size"),
            pop3_step("Mail Loop", do=[log("S:{json:Msg.number} {json:Msg.subject}")]),
            pop3_step("Mail Loop", retrieve="whole", order="newest", max_messages=1,
                      do=[log("B:{json:Msg.body_text}")]),
            pop3_step("Download Email", number=2, folder=str(tmp_path / "eml"),
                      attachments_folder=str(tmp_path / "att"), save_path_to="P"),
            pop3_step("Delete Email", number=1),
            pop3_step("Messages Count", save_count_to="During"),
            pop3_step("Close", on_close="commit"),
            pop3_step("Open", **params, save_count_to="After"),
            pop3_step("Mail Loop", do=[log("L:{json:Msg.subject}")]),
            pop3_step("Close"),
        ],
    )
    v = result.variables
    assert int(v["N"]) == 3 and int(v["C"]) == 3 and int(v["Size"]) > 500
    assert logged(result) == ["1 first", "2 second", "3 third"]
    assert logged(result, "B") == ["three"]
    assert b"Subject: second" in Path(v["P"]).read_bytes()
    assert (tmp_path / "att" / "a.txt").read_bytes() == b"attached"
    assert int(v["During"]) == 2 and int(v["After"]) == 2
    assert logged(result, "L") == ["second", "third"]


def test_pop3_a_second_session_on_a_locked_mailbox(host, mailutils, mu_user):
    """Mailutils locks a mailbox per POP3 session: the second login is -ERR [IN-USE], reported as
    temporary, not as a wrong password; after the first closes, it opens."""
    target = Target("mailutils", mailutils, mu_user)
    _three(target)
    params = target.pop3()
    result = run(
        host,
        [
            pop3_step("Open", **params, connection="A"),
            pop3_step("Open", **params, connection="B"),
        ],
    )
    assert result.error is not None and result.error.code == "login_temporary", result.error
    assert "in use by another POP3 session" in result.error.description
    assert "[IN-USE]" in (result.error.server_reply or "")
    run_ok(host, [pop3_step("Open", **params, connection="B", save_count_to="N")])
