"""Mail errors are classified as what they are: a POP3 connection the server closed, a login the
server refused for a reason other than the password (RFC 2449 response codes), and an SMTP 552
size refusal.

The closed connection is the real Dovecot, ended by its own admin tool. Dovecot is not set up to
lock POP3 mailboxes or limit message size, so a scripted POP3 server and an aiosmtpd server on
127.0.0.1 give those replies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from corpus.mailtest import add_oauth_record, new_user, pop3_params, run

from hostsim.runtime.host import Host
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import ActionSpec, Param, ParamType

PASSWORD = "pw-Zq9x-never-shown"


# --- a real POP3 connection that the server closes -----------------------------------------------


class MailAdmin:
    """A step that does what a mail administrator does to live sessions (Dovecot's doveadm)."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox

    def _doveadm(self, *args: str) -> str:
        conf = str(self.sandbox.base / "dovecot.conf")
        proc = subprocess.run(["doveadm", "-c", conf, *args], capture_output=True, text=True,
                              timeout=30, check=True)
        return proc.stdout

    def _pop3_pids(self, user: str) -> list[int]:
        rows = [line.split() for line in self._doveadm("who", "-1", user).splitlines()[1:]]
        return [int(row[2]) for row in rows if len(row) > 2 and row[1] == "pop3"]

    def end_sessions(self, ctx: Any, params: Any) -> None:
        user = params["user"]
        pids = self._pop3_pids(user)
        assert pids, "no POP3 session to end"
        if params["how"] == "kick":  # Dovecot says goodbye, then closes
            self._doveadm("kick", user)
        else:  # the session process dies: the connection just closes
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self._pop3_pids(user) and time.monotonic() < deadline:
            time.sleep(0.05)

    @hookimpl
    def robomail_register_actions(self) -> list[ActionSpec]:
        return [ActionSpec(
            id="mailadmin.end_sessions", title="Admin End POP3 Sessions", category="Test",
            run=self.end_sessions,
            params=(Param(name="user"),
                    Param(name="how", type=ParamType.CHOICE, choices=("kick", "kill"))),
        )]


@pytest.mark.parametrize("how", ["kill", "kick"])
def test_a_pop3_connection_the_server_closed_is_connect_failed(tmp_path, sandbox, how):
    user = new_user(sandbox)
    host = Host.load(home=tmp_path / "hostsim", extra_plugins=(MailAdmin(sandbox),))
    result = run(host, [
        {"action": "POP3 Open", "params": pop3_params(sandbox, user)},
        {"action": "Admin End POP3 Sessions", "params": {"user": user[0], "how": how}},
        {"action": "POP3 Messages Count", "params": {}},
    ])
    assert result.error is not None and result.error.step == 3
    assert result.error.code == "connect_failed", result.error
    assert "closed the connection" in result.error.description
    if how == "kick":  # its last words are kept
        assert "Server shutting down" in result.error.description
    assert "-ERR EOF" not in result.error.description


# --- POP3 logins refused for another reason than the password ------------------------------------


class ScriptedPop3:
    """A POP3 server on 127.0.0.1 answering each command from a script (None: hang up)."""

    def __init__(self, script: dict[str, str | None]) -> None:
        self.script = script
        self.commands: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as f:
                f.write(b"+OK scripted POP3 ready\r\n")
                f.flush()
                for line in f:
                    command = line.decode("ascii", "replace").split(" ", 1)[0].strip().upper()
                    self.commands.append(command)
                    # CAPA unscripted: -ERR, as an RFC 1939 server without it says (a bare
                    # "+OK" would leave the client waiting for the list's end)
                    default = "-ERR no CAPA" if command == "CAPA" else "+OK"
                    reply = "+OK bye" if command == "QUIT" else self.script.get(command, default)
                    if reply is None:
                        break
                    f.write(reply.encode() + b"\r\n")
                    f.flush()
                    if command == "QUIT":
                        break

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def scripted():
    servers: list[ScriptedPop3] = []

    def start(**script: str | None) -> ScriptedPop3:
        servers.append(ScriptedPop3(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _open(tmp_path, port: int, **params: Any) -> Any:
    base = {"server": "127.0.0.1", "port": port, "security": "none", "timeout": 10,
            "username": "robot@example.test", "password": PASSWORD}
    host = Host.load(home=tmp_path / "hostsim")
    return run(host, [{"action": "POP3 Open", "params": {**base, **params}}])


@pytest.mark.parametrize(
    "reply, code, says",
    [
        ("-ERR [IN-USE] Mailbox is locked by another POP3 session", "login_temporary",
         "in use by another POP3 session"),
        ("-ERR [LOGIN-DELAY] Minimum time between logins not reached", "login_temporary",
         "too soon after the previous login"),
        ("-ERR [SYS/TEMP] Internal error occurred", "login_temporary",
         "temporary problem on the server"),
        ("-ERR [SYS/PERM] Mail store damaged", "server_error",
         "not with the user name or password"),
    ],
)
def test_pop3_login_response_codes_are_not_a_wrong_password(tmp_path, scripted, reply, code,
                                                             says):
    server = scripted(PASS=reply)
    result = _open(tmp_path, server.port)
    assert result.error.code == code, result.error
    assert says in result.error.description
    assert reply in result.error.description and result.error.server_reply == reply
    assert "Check the user name and password" not in result.error.description
    assert PASSWORD not in result.error.description
    assert not any(PASSWORD in line for line in result.log)


def test_pop3_oauth_login_to_a_locked_mailbox_is_not_retried_as_a_bad_token(
        tmp_path, scripted, fake_provider):
    add_oauth_record(fake_provider, "robot@example.test")
    server = scripted(AUTH="-ERR [IN-USE] Mailbox is locked by another POP3 session")
    result = _open(tmp_path, server.port, auth="oauth", oauth_record="Mail", sasl="xoauth2")
    assert result.error.code == "login_temporary", result.error
    assert "in use by another POP3 session" in result.error.description
    assert server.commands.count("AUTH") == 1  # a fresh token would not unlock it


def test_pop3_server_hanging_up_at_login_is_connect_failed(tmp_path, scripted):
    server = scripted(PASS=None)
    result = _open(tmp_path, server.port)
    assert result.error.code == "connect_failed", result.error
    assert "closed the connection" in result.error.description
    assert "rejected the login" not in result.error.description


# --- SMTP 552: the message is too big ------------------------------------------------------------


class Refusing:
    """An aiosmtpd handler that gives a scripted reply at RCPT or at the end of DATA."""

    def __init__(self, rcpt: dict[str, str] | None = None, data: str | None = None) -> None:
        self.rcpt = rcpt or {}
        self.data = data
        self.received: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        for prefix, reply in self.rcpt.items():
            if address.startswith(prefix):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data:
            return self.data
        self.received.append(envelope.content)
        return "250 queued"


@pytest.fixture
def smtp_server():
    controllers: list[Controller] = []

    def start(handler: Refusing, **smtp_params: Any) -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_params)
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


def _send(tmp_path, port: int, **params: Any) -> Any:
    base = {"server": "127.0.0.1", "port": port, "security": "none", "auth": "none",
            "from": "robot@example.test", "to": "ok@example.test", "subject": "report",
            "body": "x" * 20_000}
    host = Host.load(home=tmp_path / "hostsim")
    return run(host, [{"action": "SMTP Send Email", "params": {**base, **params}}])


def test_smtp_552_at_mail_from_is_a_too_big_message_with_the_limit(tmp_path, smtp_server):
    handler = Refusing()
    port = smtp_server(handler, data_size_limit=5000)  # advertises SIZE 5000
    result = _send(tmp_path, port)
    assert result.error.code == "send_failed", result.error
    description = result.error.description
    assert "too big" in description and "at most 5000 bytes" in description
    assert "552" in description
    assert "sender" not in description and "From address" not in description
    assert handler.received == []


def test_smtp_552_after_data_is_a_too_big_message(tmp_path, smtp_server):
    handler = Refusing(data="552 5.3.4 Message size exceeds fixed maximum message size")
    port = smtp_server(handler, data_size_limit=None)  # no SIZE: the limit is not known
    result = _send(tmp_path, port)
    assert result.error.code == "send_failed", result.error
    assert "too big" in result.error.description
    assert "at most" not in result.error.description
    assert "5.3.4" in result.error.description


def test_smtp_552_size_at_rcpt_is_a_too_big_message_but_a_full_mailbox_is_not(
        tmp_path, smtp_server):
    handler = Refusing(rcpt={"ok": "552 5.3.4 Message too big for this recipient",
                             "full": "552 5.2.2 Mailbox full, quota exceeded"})
    port = smtp_server(handler)
    result = _send(tmp_path, port)
    assert result.error.code == "send_failed", result.error
    assert "too big" in result.error.description
    assert "Check the addresses" not in result.error.description
    full = _send(tmp_path, port, to="full@example.test")
    assert "refused every recipient" in full.error.description
    assert "too big" not in full.error.description
