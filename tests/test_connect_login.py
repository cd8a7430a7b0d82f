"""connect.py against the real sandbox: TLS modes, password and OAuth logins, and their failures."""

from __future__ import annotations

import time

import pytest
from mail_fixtures import imap_params

from robomail_plugin import errors
from robomail_plugin.credentials.tokens import AccessToken
from robomail_plugin.declare import params_of
from robomail_plugin.shared_params import LOGINS
from robomail_plugin.transport.connect import ConnectionSettings, open_imap, open_pop3, open_smtp

PORT_KEYS = {
    ("imap", "ssl"): "imaps",
    ("imap", "starttls"): "imap",
    ("pop3", "ssl"): "pop3s",
    ("pop3", "starttls"): "pop3",
    ("smtp", "ssl"): "submissions",
    ("smtp", "starttls"): "submission",
}
OPENERS = {"imap": open_imap, "pop3": open_pop3, "smtp": open_smtp}


def settings_for(sandbox, user, protocol, security, **extra):
    params = {
        "server": sandbox.host,
        "port": sandbox.ports[PORT_KEYS[(protocol, security)]],
        "security": security,
        "ca_file": str(sandbox.ca_file),
        "timeout": 20,
        "username": user.username,
        "password": user.password,
        **extra,
    }
    return ConnectionSettings.from_params(protocol, params)


def close(protocol, conn):
    if protocol == "imap":
        conn.logout()
    elif protocol == "pop3":
        conn.quit()
    else:
        conn.quit()


def check_alive(protocol, conn):
    if protocol == "imap":
        assert conn.select_folder("INBOX")[b"EXISTS"] == 0
    elif protocol == "pop3":
        assert conn.stat() == (0, 0)
    else:
        assert conn.noop()[0] == 250


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_password_login(sandbox, mail_user, mail_services, protocol, security):
    settings = settings_for(sandbox, mail_user, protocol, security)
    conn = OPENERS[protocol](settings, mail_services)
    try:
        check_alive(protocol, conn)
    finally:
        close(protocol, conn)


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
@pytest.mark.parametrize(
    ("security", "mech"), [("ssl", "xoauth2"), ("starttls", "oauthbearer"), ("ssl", "oauthbearer")]
)
def test_oauth_login(sandbox, mail_user, mail_services, oauth_record, protocol, security, mech):
    settings = settings_for(
        sandbox, mail_user, protocol, security, auth="oauth", oauth_record=oauth_record, sasl=mech
    )
    conn = OPENERS[protocol](settings, mail_services)
    try:
        check_alive(protocol, conn)
    finally:
        close(protocol, conn)


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_wrong_password_is_login_failed_without_the_password(sandbox, mail_user, mail_services,
                                                              protocol):
    settings = settings_for(sandbox, mail_user, protocol, "ssl", password="wrong-Secret-123")
    with pytest.raises(errors.LoginFailed) as info:
        OPENERS[protocol](settings, mail_services)
    text = str(info.value)
    assert "wrong-Secret-123" not in text and mail_user.password not in text
    assert mail_user.username in text
    assert info.value.server_reply


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
@pytest.mark.parametrize("mech", ["xoauth2", "oauthbearer"])
def test_rejected_cached_token_is_refreshed_once(
    sandbox, fake_provider, mail_user, mail_services, oauth_record, protocol, mech
):
    """A revoked cached token: the server rejects it, the plugin refreshes and gets in."""
    stale = fake_provider.mint_access_token(mail_user.username)
    fake_provider.revoke(stale)
    mail_services.tokens.remember(
        AccessToken(value=stale, expires_at=time.time() + 3600, record_name=oauth_record)
    )
    before = len(fake_provider.token_requests)
    settings = settings_for(
        sandbox, mail_user, protocol, "ssl", auth="oauth", oauth_record=oauth_record, sasl=mech
    )
    conn = OPENERS[protocol](settings, mail_services)
    try:
        check_alive(protocol, conn)
    finally:
        close(protocol, conn)
    refreshes = fake_provider.token_requests[before:]
    assert [r.get("grant_type") for r in refreshes] == ["refresh_token"]


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
@pytest.mark.parametrize(("mech", "status"), [("xoauth2", "401"), ("oauthbearer", "invalid_token")])
def test_token_rejected_for_good_gives_decoded_status_and_advice(
    sandbox, fake_provider, make_oauth_record, mail_user, mail_services, protocol, mech, status
):
    # The token belongs to mail_user, the record says another account: every token is refused.
    record = make_oauth_record(mail_user.username, account="someone-else@example.test")
    settings = settings_for(
        sandbox, mail_user, protocol, "ssl", auth="oauth", oauth_record=record, sasl=mech
    )
    before = len(fake_provider.token_requests)
    started = time.monotonic()
    with pytest.raises(errors.LoginFailed) as info:
        OPENERS[protocol](settings, mail_services)
    assert time.monotonic() - started < 10  # answered the error challenge; did not hang
    text = str(info.value)
    assert f"status {status}" in text
    assert "hostsim oauth test" in text
    assert ("SMTP AUTH" in text) == (protocol == "smtp")
    requests = fake_provider.token_requests[before:]
    assert len(requests) == 2  # the first token, then one forced refresh
    assert requests[0]["refresh_token"] not in text


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_introspection_down_is_a_temporary_failure(
    sandbox, fake_provider, mail_user, mail_services, oauth_record, protocol
):
    settings = settings_for(sandbox, mail_user, protocol, "ssl", auth="oauth",
                            oauth_record=oauth_record)
    fake_provider.introspection_down = True
    with pytest.raises(errors.LoginTemporaryFailure) as info:
        OPENERS[protocol](settings, mail_services)
    assert "try again later" in str(info.value)


def test_revoked_refresh_token_says_get_refresh_token(
    sandbox, fake_provider, mail_user, mail_services, oauth_record
):
    fake_provider.revoke(mail_services.store.get(oauth_record).refresh_token)
    settings = settings_for(sandbox, mail_user, "imap", "ssl", auth="oauth",
                            oauth_record=oauth_record)
    with pytest.raises(errors.TokenError) as info:
        open_imap(settings, mail_services)
    assert "Get Refresh Token" in str(info.value)


def test_untrusted_certificate_is_connect_failed(sandbox, mail_user, mail_services):
    params = imap_params(sandbox, mail_user)
    del params["ca_file"]
    with pytest.raises(errors.ConnectFailed) as info:
        open_imap(ConnectionSettings.from_params("imap", params), mail_services)
    assert f"{sandbox.host}:{sandbox.ports['imaps']}" in str(info.value)
    assert "ca_file" in str(info.value)


def test_verify_tls_false_connects_and_warns(sandbox, mail_user, mail_services):
    params = imap_params(sandbox, mail_user)
    del params["ca_file"]
    params["verify_tls"] = False
    logged: list[tuple[str, str]] = []
    client = open_imap(
        ConnectionSettings.from_params("imap", params),
        mail_services,
        log=lambda msg, level="info": logged.append((level, msg)),
    )
    client.logout()
    assert [level for level, _ in logged] == ["warning"]
    assert "certificate checks are OFF" in logged[0][1]


def test_refused_port_is_connect_failed(sandbox, mail_user, mail_services):
    params = imap_params(sandbox, mail_user)
    params["port"] = _closed_port()
    with pytest.raises(errors.ConnectFailed) as info:
        open_imap(ConnectionSettings.from_params("imap", params), mail_services)
    assert f"127.0.0.1:{params['port']}" in str(info.value)
    assert "check server and port" in str(info.value)


def test_ssl_on_a_plain_port_is_connect_failed(sandbox, mail_user, mail_services):
    params = imap_params(sandbox, mail_user)
    params["port"] = sandbox.ports["imap"]  # plain IMAP port, but security: ssl
    with pytest.raises(errors.ConnectFailed, match="TLS failed|security"):
        open_imap(ConnectionSettings.from_params("imap", params), mail_services)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tcp_nodelay_is_set(sandbox, mail_user, mail_services):
    import socket

    for security in ("ssl", "starttls"):
        client = open_imap(
            ConnectionSettings.from_params("imap", imap_params(sandbox, mail_user,
                                                               security=security)),
            mail_services,
        )
        try:
            assert client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            client.logout()


def test_settings_defaults_and_repr():
    s = ConnectionSettings.from_params(
        "smtp", {"server": "mail.x.test", "username": "u", "password": "Pw-Secret"}
    )
    assert (s.port, s.security, s.auth, s.sasl, s.timeout, s.verify_tls) == (
        587, "starttls", "password", "xoauth2", 60.0, True)
    assert "Pw-Secret" not in repr(s)
    assert ConnectionSettings.from_params("imap", {"server": "h", "username": "u"}).port == 993
    assert ConnectionSettings.from_params(
        "pop3", {"server": "h", "username": "u", "security": "starttls"}).port == 110
    assert ConnectionSettings.from_params(
        "smtp", {"server": "h", "username": "u", "security": "ssl"}).port == 465


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"server": ""}, "server"),
        ({"server": "h", "auth": "oauth"}, "oauth_record"),
        ({"server": "h"}, "username"),
        ({"server": "h", "username": "u", "auth": "none"}, "'auth': 'none'"),
        ({"server": "h", "username": "u", "port": 70000}, "out of range"),
    ],
)
def test_settings_errors(params, needle):
    with pytest.raises(errors.InvalidParameter, match=needle):
        ConnectionSettings.from_params("imap", params)


def connection_params(protocol):
    return params_of(LOGINS[protocol])


def test_connection_params_are_shared_and_declared_once():
    names = [p.name for p in connection_params("imap")]
    assert names == ["server", "port", "security", "auth", "username", "password",
                     "oauth_record", "sasl", "timeout", "verify_tls", "ca_file"]
    assert [p.name for p in connection_params("imap") if p.secret] == ["password"]
    smtp_auth = next(p for p in connection_params("smtp") if p.name == "auth")
    assert smtp_auth.choices == ("password", "oauth", "none")
    assert next(p for p in connection_params("smtp") if p.name == "security").default == "starttls"


@pytest.mark.parametrize("action, extra", [
    ("IMAP Open", {}),
    ("POP3 Open", {}),
    ("SMTP Send Email", {"to": "bob@example.test", "subject": "s", "body": "b"}),
])
def test_a_wrong_record_name_is_record_not_found_before_any_connection(host, action, extra):
    """Nothing listens on port 1: the record is looked up first, so the error names it."""
    import yaml

    params = {"server": "127.0.0.1", "port": 1, "security": "none", "auth": "oauth",
              "oauth_record": "No Such Record", **extra}
    result = host.run_text(yaml.safe_dump({"name": "t", "steps": [
        {"action": action, "params": params}]}))
    assert not result.ok
    assert result.error.code == "record_not_found", result.error
    assert "No Such Record" in result.error.description
