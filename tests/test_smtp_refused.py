"""Refused recipients, against a real (aiosmtpd) SMTP server that refuses some RCPT TO.

Dovecot's submission service accepts every recipient of its domain, so a small server of our own
plays the strict relay here."""

from __future__ import annotations

import socket

import pytest
from aiosmtpd.controller import Controller
from corpus.mailtest import run

from hostsim.runtime.host import Host


class Strict:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody"):
            return f"550 5.1.1 <{address}>: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 queued"


@pytest.fixture
def strict():
    handler = Strict()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def host(tmp_path):
    return Host.load(home=tmp_path / "hostsim")


def send(host, port, **params):
    base = {"server": "127.0.0.1", "port": port, "security": "none", "auth": "none",
            "from": "robot@example.test", "subject": "s", "body": "b"}
    return run(host, [{"action": "SMTP Send Email", "params": {**base, **params}}])


def test_some_refused_is_a_warning_naming_them(host, strict):
    handler, port = strict
    result = send(host, port, to="ok@example.test; nobody1@example.test",
                  bcc="nobody2@example.test")
    assert result.ok, result.error
    warning = next(line for line in result.log if "WARNING" in line)
    assert "nobody1@example.test" in warning and "nobody2@example.test" in warning
    assert "550" in warning
    assert handler.received[0][1] == ["ok@example.test"]


def test_fail_on_any_refused(host, strict):
    handler, port = strict
    result = send(host, port, to="ok@example.test, nobody@example.test",
                  fail_on_any_refused=True)
    assert result.error.code == "send_failed"
    assert "nobody@example.test" in result.error.description
    assert "was sent to the other 1" in result.error.description


def test_all_refused_is_an_error(host, strict):
    handler, port = strict
    result = send(host, port, to="nobody1@example.test", cc="nobody2@example.test")
    assert result.error.code == "send_failed"
    assert "refused every recipient" in result.error.description
    assert "nobody2@example.test" in result.error.description
    assert handler.received == []


def test_starttls_required_but_not_offered(host, strict):
    _handler, port = strict
    result = send(host, port, to="ok@example.test", security="starttls")
    assert result.error.code == "connect_failed"
    assert "STARTTLS" in result.error.description
