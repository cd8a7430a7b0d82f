"""The private Dovecot: OAuth and password logins, delivery and seeding, over real sockets."""

from __future__ import annotations

import base64
import imaplib
import poplib
import secrets
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from hostsim.devservers import sandbox as sandbox_module
from hostsim.devservers.sandbox import Sandbox, SandboxError, folder_dirname

MECHS = ["XOAUTH2", "OAUTHBEARER"]


@pytest.fixture
def user(sandbox) -> tuple[str, str]:
    """A fresh password user of the session sandbox: (username, password)."""
    name = f"u{secrets.token_hex(4)}@example.test"
    password = secrets.token_urlsafe(10)
    sandbox.add_user(name, password)
    return name, password


def sasl(mech: str, username: str, token: str, port: int) -> str:
    if mech == "XOAUTH2":
        return f"user={username}\x01auth=Bearer {token}\x01\x01"
    return f"n,a={username},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01"


def imaps(box: Sandbox) -> imaplib.IMAP4_SSL:
    conn = imaplib.IMAP4_SSL(
        box.host, box.ports["imaps"], ssl_context=box.ssl_context(), timeout=10
    )
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def imap_oauth(box: Sandbox, mech: str, username: str, token: str) -> imaplib.IMAP4_SSL:
    conn = imaps(box)
    answers = iter([sasl(mech, username, token, box.ports["imaps"]).encode()])
    try:
        conn.authenticate(mech, lambda challenge: next(answers, b""))
    except BaseException:
        conn.shutdown()
        raise
    return conn


def pop_oauth(box: Sandbox, mech: str, username: str, token: str) -> poplib.POP3_SSL:
    """AUTH with an initial response (poplib has no AUTH); answers an error challenge."""
    conn = poplib.POP3_SSL(box.host, box.ports["pop3s"], context=box.ssl_context(), timeout=10)
    blob = base64.b64encode(sasl(mech, username, token, box.ports["pop3s"]).encode()).decode()
    try:
        resp = conn._shortcmd(f"AUTH {mech} {blob}")
        if not resp.startswith(b"+OK"):  # "+ <challenge>": the token was refused
            conn._putcmd("")
            conn._getresp()
    except BaseException:
        conn.close()
        raise
    return conn


def smtp_auth_object(mech: str, username: str, token: str, port: int) -> Callable[..., str]:
    calls = []

    def auth(challenge: bytes | None = None) -> str:
        calls.append(challenge)
        return sasl(mech, username, token, port) if len(calls) == 1 else ""

    return auth


def message(sender: str, to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content("Hello from the sandbox test.\n")
    return msg


@pytest.mark.parametrize("mech", MECHS)
def test_imap_oauth_login(sandbox, fake_provider, user, mech):
    token = fake_provider.mint_access_token(user[0])
    conn = imap_oauth(sandbox, mech, user[0], token)
    assert conn.select("INBOX")[0] == "OK"
    assert b"MOVE" in conn.capability()[1][0] and b"UIDPLUS" in conn.capability()[1][0]
    conn.logout()


@pytest.mark.parametrize("mech", MECHS)
def test_imap_rejected_and_unavailable(sandbox, fake_provider, user, mech):
    token = fake_provider.mint_access_token(user[0])
    fake_provider.revoke(token)
    with pytest.raises(imaplib.IMAP4.error, match=r"\[AUTHENTICATIONFAILED\]"):
        imap_oauth(sandbox, mech, user[0], token)
    with pytest.raises(imaplib.IMAP4.error, match=r"\[AUTHENTICATIONFAILED\]"):
        imap_oauth(sandbox, mech, user[0], fake_provider.mint_access_token("someone@else.test"))
    fake_provider.introspection_down = True
    good = fake_provider.mint_access_token(user[0])
    with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
        imap_oauth(sandbox, mech, user[0], good)
    fake_provider.introspection_down = False
    imap_oauth(sandbox, mech, user[0], good).logout()


@pytest.mark.parametrize("mech", MECHS)
def test_pop3_oauth_login(sandbox, fake_provider, user, mech):
    sandbox.seed(user[0], [b"Subject: one\n\nbody\n"])
    token = fake_provider.mint_access_token(user[0])
    conn = pop_oauth(sandbox, mech, user[0], token)
    assert conn.stat()[0] == 1
    conn.quit()
    fake_provider.revoke(token)
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Authentication failed"):
        pop_oauth(sandbox, mech, user[0], token)
    fake_provider.introspection_down = True
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        pop_oauth(sandbox, mech, user[0], fake_provider.mint_access_token(user[0]))


@pytest.mark.parametrize("mech", MECHS)
def test_submission_oauth_and_delivery(sandbox, fake_provider, user, mech):
    """STARTTLS submission with a token; the message arrives in the recipient's INBOX."""
    rcpt_name = f"r{secrets.token_hex(4)}@example.test"
    sandbox.add_user(rcpt_name, "rcpt-pass")
    token = fake_provider.mint_access_token(user[0])
    port = sandbox.ports["submission"]
    subject = f"Hello {secrets.token_hex(6)}"
    with smtplib.SMTP(sandbox.host, port, timeout=10) as smtp:
        smtp.starttls(context=sandbox.ssl_context())
        smtp.auth(mech, smtp_auth_object(mech, user[0], token, port))
        smtp.send_message(message(user[0], rcpt_name, subject))
    with imaps(sandbox) as conn:
        conn.login(rcpt_name, "rcpt-pass")
        conn.select("INBOX")
        typ, data = conn.search(None, "SUBJECT", subject.split()[1])
        assert typ == "OK" and len(data[0].split()) == 1


def test_submission_refusals_and_implicit_tls(sandbox, fake_provider, user):
    port = sandbox.ports["submissions"]
    token = fake_provider.mint_access_token(user[0])
    with smtplib.SMTP_SSL(sandbox.host, port, context=sandbox.ssl_context(), timeout=10) as smtp:
        smtp.auth("XOAUTH2", smtp_auth_object("XOAUTH2", user[0], token, port))
        assert smtp.noop()[0] == 250
    fake_provider.revoke(token)
    with smtplib.SMTP_SSL(sandbox.host, port, context=sandbox.ssl_context(), timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            smtp.auth("XOAUTH2", smtp_auth_object("XOAUTH2", user[0], token, port))
        assert info.value.smtp_code == 535
    fake_provider.introspection_down = True
    token = fake_provider.mint_access_token(user[0])
    with smtplib.SMTP_SSL(sandbox.host, port, context=sandbox.ssl_context(), timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            smtp.auth("OAUTHBEARER", smtp_auth_object("OAUTHBEARER", user[0], token, port))
        assert info.value.smtp_code == 454


def test_password_logins_with_starttls(sandbox, user):
    ctx = sandbox.ssl_context()
    with imaplib.IMAP4(sandbox.host, sandbox.ports["imap"], timeout=10) as conn:
        conn.starttls(ssl_context=ctx)
        assert conn.login(*user)[0] == "OK"
    with imaps(sandbox) as conn, pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        conn.login(user[0], "wrong")
    pop = poplib.POP3(sandbox.host, sandbox.ports["pop3"], timeout=10)
    pop.stls(context=ctx)
    pop.user(user[0])
    assert pop.pass_(user[1]).startswith(b"+OK")
    pop.quit()
    with smtplib.SMTP(sandbox.host, sandbox.ports["submission"], timeout=10) as smtp:
        smtp.starttls(context=ctx)
        assert smtp.login(*user)[0] == 235


def test_certificate_passes_strict_verification(sandbox):
    for name in ("localhost", "127.0.0.1"):
        with (
            socket.create_connection((sandbox.host, sandbox.ports["imaps"]), timeout=5) as raw,
            sandbox.ssl_context().wrap_socket(raw, server_hostname=name) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    with (
        socket.create_connection((sandbox.host, sandbox.ports["pop3s"]), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_seed_visible_over_imap_and_pop3(sandbox, user):
    messages = [f"Subject: seeded {i}\nFrom: a@b.test\n\nbody {i}\n".encode() for i in range(100)]
    started = time.monotonic()
    sandbox.seed(user[0], messages)
    assert time.monotonic() - started < 1.0
    with imaps(sandbox) as conn:
        conn.login(*user)
        assert conn.select("INBOX") == ("OK", [b"100"])
        typ, data = conn.fetch("100", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"seeded 99" in data[0][1]
    pop = poplib.POP3_SSL(sandbox.host, sandbox.ports["pop3s"], context=sandbox.ssl_context())
    pop.user(user[0])
    pop.pass_(user[1])
    assert pop.stat()[0] == 100
    assert b"body 0" in b"\n".join(pop.retr(1)[1])
    pop.quit()


def test_folders_deliver_and_clear(sandbox, user):
    name = user[0]
    sandbox.deliver(name, b"Subject: via lmtp\n\nhi\n")
    sandbox.deliver(name, "Subject: in a folder\n\nça va\n".encode(), folder="Reçus/été")
    sandbox.seed(name, [b"Subject: seeded in folder\n\nx\n"], folder="Reçus/été")
    sandbox.seed(name, [b"Subject: sent\n\nx\n"], folder="Sent")
    assert (sandbox.maildir(name) / folder_dirname("Reçus/été") / "new").is_dir()
    with imaps(sandbox) as conn:
        conn.login(*user)
        assert conn.create('"Projets/Deux"')[0] == "OK"
        folder = '"Re&AOc-us/&AOk-t&AOk-"'  # "Reçus/été" in modified UTF-7
        assert conn.select(folder) == ("OK", [b"2"])
        assert conn.select("INBOX") == ("OK", [b"1"])
        assert conn.select("Sent") == ("OK", [b"1"])
        conn.close()
        # MOVE and UIDPLUS are on.
        conn.select("INBOX")
        typ, data = conn.uid("MOVE", "1:*", folder)
        assert typ == "OK"
        conn.close()
    sandbox.clear(name)
    with imaps(sandbox) as conn:
        conn.login(*user)
        for box in ("INBOX", folder, "Sent"):
            assert conn.select(box) == ("OK", [b"0"])
        conn.close()
    sandbox.clear(name, remove_folders=True)
    with imaps(sandbox) as conn:
        conn.login(*user)
        listed = b" ".join(conn.list()[1])
        assert b"Projets" not in listed and b"Re&AOc-us" not in listed and b"Sent" in listed


def test_add_user_changes_password(sandbox, user):
    sandbox.add_user(user[0], "new-password")
    with imaps(sandbox) as conn:
        assert conn.login(user[0], "new-password")[0] == "OK"
    assert "new-password" not in repr(sandbox)
    with pytest.raises(SandboxError, match="must not contain"):
        sandbox.add_user("x:y", "p")


def test_missing_dovecot_says_what_to_do(fake_provider, monkeypatch):
    monkeypatch.setattr(sandbox_module, "DOVECOT_CANDIDATES", ())
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SandboxError, match="scripts/install-dovecot"):
        Sandbox(fake_provider).start()


def test_second_instance_side_by_side(sandbox, fake_provider):
    """Two sandboxes run at once (distinct ports and instance names) and stop cleanly."""
    with Sandbox(fake_provider, users={"dave@example.test": "pw"}) as other:
        assert set(other.ports.values()).isdisjoint(sandbox.ports.values())
        base = other.base
        with imaps(other) as conn:
            assert conn.login("dave@example.test", "pw")[0] == "OK"
    assert not base.exists()
    assert not other.running
