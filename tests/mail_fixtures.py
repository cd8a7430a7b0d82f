"""Fixtures for the mail tests (loaded by tests/conftest.py): sandbox users, OAuth records, tasks.

Each test gets its own sandbox user (a fresh mailbox), so tests never see each other's mail and
need no clean-up. OAuth records are stored in the test's own ROBOMAIL_HOME, where the host's
plugin finds them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import attrs
import pytest

from robomail_plugin.credentials.records import OAuthRecord
from robomail_plugin.services import Services


@attrs.frozen
class MailUser:
    """A sandbox mailbox: its address and password."""

    username: str
    password: str = attrs.field(repr=False)


def make_message(
    subject: str = "Hello",
    *,
    sender: str = "Sender <sender@example.test>",
    to: str = "rcpt@example.test",
    cc: str | None = None,
    body: str = "Just a test.",
    date: Any = None,
    attachment: tuple[str, bytes] | None = None,
    html: str | None = None,
) -> bytes:
    """A small RFC 5322 message as bytes (CRLF line ends, as a server stores it)."""
    import datetime as dt

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    when = date or dt.datetime(2024, 3, 15, 10, 0, tzinfo=dt.UTC)
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain="example.test")
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        name, data = attachment
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def mail_user(sandbox) -> MailUser:
    """A fresh sandbox user with an empty mailbox."""
    username = f"t{secrets.token_hex(5)}@example.test"
    password = secrets.token_urlsafe(12)
    sandbox.add_user(username, password)
    return MailUser(username, password)


@pytest.fixture
def mail_services(robomail_home) -> Services:
    """robomail's services on this test's ROBOMAIL_HOME (the store the host's plugin uses)."""
    return Services()


@pytest.fixture
def make_oauth_record(fake_provider, mail_services) -> Callable[..., str]:
    """Stores an OAuth record whose refresh token the provider minted; returns its Record Name.

    ``account`` is the record's Client Account (default: the token's user); giving another one
    makes the server reject every token (the token belongs to someone else).
    """
    counter = iter(range(1, 1000))

    def make(username: str, *, account: str | None = None, name: str | None = None) -> str:
        client_id = "mail-" + secrets.token_hex(5)
        client_secret = secrets.token_urlsafe(16)
        fake_provider.register_client(client_id, client_secret)
        record_name = name or f"Sandbox OAuth {next(counter)}"
        mail_services.store.add(
            OAuthRecord(
                record_name=record_name,
                client_account=account or username,
                client_id=client_id,
                client_secret=client_secret,
                refresh_token=fake_provider.mint_refresh_token(client_id, username),
                authorization_endpoint=fake_provider.authorize_url,
                token_endpoint=fake_provider.token_url,
                scope="mail offline_access",
            )
        )
        return record_name

    return make


@pytest.fixture
def oauth_record(make_oauth_record, mail_user) -> str:
    """The Record Name of an OAuth record for ``mail_user``."""
    return make_oauth_record(mail_user.username)


@pytest.fixture
def imap_task_vars(sandbox, mail_user, oauth_record) -> dict[str, Any]:
    """Variables for the example tasks: server, ports, CA, user, password, OAuth record."""
    return {
        "Server": sandbox.host,
        "ImapsPort": sandbox.ports["imaps"],
        "ImapPort": sandbox.ports["imap"],
        "CaFile": str(sandbox.ca_file),
        "User": mail_user.username,
        "Password": mail_user.password,
        "OAuthRecord": oauth_record,
    }


def imap_params(
    sandbox,
    user: MailUser,
    *,
    auth: str = "password",
    security: str = "ssl",
    record: str | None = None,
    sasl: str = "xoauth2",
) -> dict[str, Any]:
    """Connection params for an IMAP action against the sandbox."""
    port = sandbox.ports["imaps" if security == "ssl" else "imap"]
    params: dict[str, Any] = {
        "server": sandbox.host,
        "port": port,
        "security": security,
        "auth": auth,
        "ca_file": str(sandbox.ca_file),
        "timeout": 20,
    }
    if auth == "password":
        params.update(username=user.username, password=user.password)
    else:
        params.update(oauth_record=record, sasl=sasl)
    return params
