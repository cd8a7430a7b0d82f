"""The OAuth editor end to end: `hostsim oauth ...` against the fake provider, the hooks other
plugins use, provider presets from plugins, a host's own store, and no secret in any output."""

from __future__ import annotations

import base64
import os
import time

import attrs
import pytest
from click.testing import CliRunner
from credentials_support import CANARY, Ctx

from hostsim.cli.main import main
from hostsim.runtime.host import Host
from robomail_plugin.credentials.browser import SUCCESS_TEXT
from robomail_plugin.credentials.editor_spec import RECORD_TYPE
from robomail_plugin.credentials.presets import GOOGLE, MICROSOFT
from robomail_plugin.errors import InvalidParameter, RecordExists, RecordNotFound
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.plugin import plugin
from robomail_plugin.schema import ProviderPreset

SECRETS: list[str] = []


def cli(*args: str, ok: bool = True, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main, ["oauth", *args], env=env, catch_exceptions=False)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    for secret in SECRETS:
        assert secret not in output, f"a secret leaked in the output of {args}"
    assert (result.exit_code == 0) == ok, output
    return output


@pytest.fixture(autouse=True)
def _fresh_secrets():
    SECRETS.clear()
    yield
    SECRETS.clear()


def add_record(p, client_id, secret, name="work"):
    return cli(
        "add", name, "--account", "alice@example.test", "--client-id", client_id,
        "--client-secret", secret, "--auth-endpoint", p.authorize_url,
        "--token-endpoint", p.token_url, "--scope", "mail offline_access",
        "--device-endpoint", p.device_url,
    )


def test_the_user_journey(fake_provider, oauth_client, fake_browser, tmp_path, monkeypatch,
                          robomail_home):
    client_id, secret = oauth_client
    SECRETS.extend([secret, CANARY])
    assert "Added OAuth record 'work'" in add_record(fake_provider, client_id, secret)
    shown = cli("show", "work")
    assert "***" in shown and "(none yet: run get-refresh-token)" in shown

    out = cli("get-refresh-token", "work", "--timeout", "30")
    assert "saved it in the record" in out
    host = Host.load()
    refresh = plugin.services.store.get("work").refresh_token
    assert refresh
    SECRETS.append(refresh)
    assert fake_browser.read_text().strip() == SUCCESS_TEXT

    assert "works: got an access token" in cli("test", "work")
    [access] = [fake_provider.token_requests[-1]]
    assert access["grant_type"] == "refresh_token"

    # other plugins get a token through the hook
    token = host.pm.hook.robomail_get_access_token(record_name="work")
    assert fake_provider.is_active(token)
    SECRETS.append(token)
    assert host.pm.hook.robomail_get_access_token(record_name="nope") is None

    # export with a passphrase from the environment, import on "another installation"
    export_file = tmp_path / "export.json"
    env = {"ROBOMAIL_EXPORT_PASSPHRASE": "a long passphrase"}
    out = cli("export", "work", "--to", str(export_file), "--include-secrets", env=env)
    assert "with secrets encrypted" in out
    assert refresh not in export_file.read_text()
    other = tmp_path / "other-home"
    monkeypatch.setenv("ROBOMAIL_HOME", str(other))
    monkeypatch.setenv("ROBOMAIL_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    assert "give the passphrase" in cli("import", str(export_file), ok=False)
    out = cli("import", str(export_file), "--passphrase", "a long passphrase")
    assert "added 'work'" in out
    assert plugin.services.store.get("work").refresh_token == refresh
    assert "works" in cli("test", "work")
    out = cli("import", str(export_file), "--on-conflict", "rename", env=env)
    assert "renamed 'work' to 'work (2)'" in out
    assert "work (2)" in cli("list")


def test_record_commands(fake_provider, oauth_client):
    client_id, secret = oauth_client
    SECRETS.append(secret)
    add_record(fake_provider, client_id, secret)
    out = cli("add", "work", "--account", "a@b.c", "--client-id", "x", "--client-secret", "",
              "--provider", "google", ok=False)
    assert "exists already" in out
    assert "Updated OAuth record 'work': Scope" in cli("edit", "work", "--scope", "mail")
    assert "Nothing to change" in cli("edit", "work", ok=False)
    out = cli("load-predefined", "work", "microsoft", "--tenant", "organizations")
    assert "Microsoft" in out
    shown = cli("show", "work")
    assert "https://login.microsoftonline.com/organizations/oauth2/v2.0/token" in shown
    assert "offline_access" in shown and "organizations/oauth2/v2.0/devicecode" in shown
    assert "Unknown provider 'yahoo'" in cli("load-predefined", "work", "yahoo", ok=False)
    assert "Renamed" in cli("rename", "work", "home")
    assert "record_not_found" in cli("show", "work", ok=False)
    assert "home" in cli("list")
    assert "add --yes" in cli("delete", "home", ok=False)
    assert "Deleted" in cli("delete", "home", "--yes")
    assert "No OAuth records yet" in cli("list")


def test_add_with_a_provider_and_validation_errors():
    out = cli("add", "g", "--account", "me@gmail.com", "--client-id", "cid.apps",
              "--client-secret", "", "--provider", "google")
    assert "Google (Gmail)'s endpoints" in out
    shown = cli("show", "g")
    assert GOOGLE.authorization_endpoint in shown and "https://mail.google.com/" in shown
    assert "(none: public client)" in shown
    out = cli("add", "bad", "--account", "a@b.c", "--client-id", "x", "--client-secret", "",
              "--auth-endpoint", "http://example.com/a", "--token-endpoint",
              "https://example.com/t", "--scope", "s", ok=False)
    assert "record_invalid" in out and "only https://" in out
    out = cli("add", "noscope", "--account", "a@b.c", "--client-id", "x", "--client-secret", "",
              "--provider", "google", "--scope", " ", ok=False)
    assert "Scope is required" in out


def test_add_without_a_terminal_stores_a_public_client():
    out = cli("add", "m", "--account", "me@outlook.com", "--client-id", "cid", "--provider",
              "microsoft")
    assert "No Client Secret stored (public client)" in out


def test_errors_are_classified_in_the_cli(fake_provider, oauth_client):
    client_id, secret = oauth_client
    SECRETS.append(secret)
    add_record(fake_provider, client_id, secret)
    assert "token_refused" in cli("test", "work", ok=False)  # no refresh token yet
    refresh = fake_provider.mint_refresh_token(client_id, "alice@example.test")
    SECRETS.append(refresh)
    Host.load()
    store = plugin.services.store
    store.update(attrs.evolve(store.get("work"), refresh_token=refresh))
    fake_provider.fail_next("invalid_grant")
    out = cli("test", "work", ok=False)
    assert "expired or was revoked" in out and "get-refresh-token work" in out
    assert store.get("work").refresh_token == refresh


def test_device_flow_from_the_cli(fake_provider, public_oauth_client):
    cli("add", "dev", "--account", "alice@example.test", "--client-id", public_oauth_client,
        "--client-secret", "", "--auth-endpoint", fake_provider.authorize_url,
        "--token-endpoint", fake_provider.token_url, "--scope", "mail offline_access",
        "--device-endpoint", fake_provider.device_url)
    out = cli("get-refresh-token", "dev", "--device")
    assert "enter the code" in out and "(device code)" in out
    assert "works" in cli("test", "dev")


def test_export_never_writes_secrets_in_plain_text(fake_provider, oauth_client, tmp_path):
    client_id, secret = oauth_client
    add_record(fake_provider, client_id, secret)
    path = tmp_path / "plain.json"
    assert "without secrets" in cli("export", "--to", str(path))
    assert secret not in path.read_text()
    before = path.read_text()
    refused = cli("export", "work", "--to", str(path), "--include-secrets", ok=False)
    assert "only encrypted" in refused and "Nothing was written" in refused
    assert path.read_text() == before
    assert "record_not_found" in cli("export", "nope", "--to", str(path), ok=False)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert "import_invalid" in cli("import", str(bad), ok=False)


def test_rotate_key_from_the_cli(fake_provider, oauth_client, monkeypatch):
    client_id, secret = oauth_client
    add_record(fake_provider, client_id, secret)
    assert "give the new key" in cli("rotate-key", "--yes", ok=False)
    new = base64.urlsafe_b64encode(os.urandom(32)).decode()
    SECRETS.append(new)
    out = cli("rotate-key", "--new-key", new, "--yes")
    assert "Set ROBOMAIL_KEY to the new key now" in out
    assert "Wrong key" in cli("list", ok=False)
    monkeypatch.setenv("ROBOMAIL_KEY", new)
    assert "work" in cli("list")
    monkeypatch.delenv("ROBOMAIL_KEY")
    monkeypatch.setenv("ROBOMAIL_KEYRING", "0")


class FastmailPlugin:
    """A plugin adding a provider preset."""

    preset = ProviderPreset(
        key="fastmail_test",
        title="Fastmail (test)",
        authorization_endpoint="https://api.fastmail.test/oauth/authorize",
        token_endpoint="https://api.fastmail.test/oauth/refresh",  # noqa: S106
        scope="urn:ietf:params:oauth:scope:mail",
    )

    @hookimpl
    def robomail_oauth_providers(self):
        return [self.preset]


class ClashingPlugin:
    @hookimpl
    def robomail_oauth_providers(self):
        return [attrs.evolve(MICROSOFT, title="Fake Microsoft")]


def test_presets_from_other_plugins():
    host = Host.load(extra_plugins=(FastmailPlugin(),))
    editor = host.registry.editors[RECORD_TYPE]
    # robomail's own and this test's plugin's; another installed plugin may offer more
    assert {"google", "microsoft", "fastmail_test"} <= set(plugin.services.providers())
    editor.command("add").run(Ctx(), {"record_name": "fm", "client_account": "me@fastmail.test",
                                      "client_id": "cid", "provider": "fastmail_test"})
    assert plugin.services.store.get("fm").token_endpoint.endswith("/oauth/refresh")
    Host.load(extra_plugins=(ClashingPlugin(),))
    with pytest.raises(InvalidParameter, match="key 'microsoft'"):
        plugin.services.providers()


class MemoryStore:
    """A host's own store (robomail_credential_store)."""

    def __init__(self):
        self.records = {}

    def get(self, name):
        if name not in self.records:
            raise RecordNotFound(f"no {name}")
        return self.records[name]

    def list(self):
        return [self.records[k] for k in sorted(self.records)]

    def add(self, record):
        if record.record_name in self.records:
            raise RecordExists("exists")
        self.records[record.record_name] = record

    def update(self, record):
        self.get(record.record_name)
        self.records[record.record_name] = record

    def delete(self, name):
        self.get(name)
        del self.records[name]

    def rename(self, old, new):
        self.records[new] = attrs.evolve(self.records.pop(old), record_name=new)

    def rotate_key(self, new_key=None):
        return "n/a"


class StorePlugin:
    def __init__(self):
        self.store = MemoryStore()

    @hookimpl
    def robomail_credential_store(self):
        return self.store


def test_a_host_can_replace_the_store(fake_provider, public_oauth_client, robomail_home):
    provider_plugin = StorePlugin()
    host = Host.load(extra_plugins=(provider_plugin,))
    editor = host.registry.editors[RECORD_TYPE]
    editor.command("add").run(Ctx(), {
        "record_name": "mem", "client_account": "alice@example.test",
        "client_id": public_oauth_client, "authorization_endpoint": fake_provider.authorize_url, "token_endpoint": fake_provider.token_url,
        "scope": "mail offline_access",
    })
    assert "mem" in provider_plugin.store.records
    assert not (robomail_home / "credentials.sqlite3").exists()
    refresh = fake_provider.mint_refresh_token(public_oauth_client, "alice@example.test")
    provider_plugin.store.update(attrs.evolve(provider_plugin.store.get("mem"),
                                              refresh_token=refresh))
    fake_provider.rotate_refresh_tokens = True
    token = host.pm.hook.robomail_get_access_token(record_name="mem")
    assert fake_provider.is_active(token)
    assert provider_plugin.store.get("mem").refresh_token != refresh  # rotated, saved via update


def test_the_editor_spec_declares_fields_and_commands():
    host = Host.load()
    editor = host.registry.editors[RECORD_TYPE]
    assert [f.label for f in editor.fields][:8] == [
        "Record Name", "Client Account", "Client ID", "Client Secret", "Refresh Token",
        "Authorization Endpoint", "Access Token Endpoint", "Scope",
    ]
    assert {f.name for f in editor.fields if f.secret} == {"client_secret", "refresh_token"}
    ids = [c.id for c in editor.commands]
    assert ids == ["list", "show", "save", "add", "edit", "delete", "rename", "load_predefined",
                   "get_refresh_token", "export", "import", "test", "doctor", "rotate_key",
                   "copy_store"]
    for command in editor.commands:
        for p in command.params:
            if p.name in ("client_secret", "passphrase", "new_key"):
                assert p.secret, (command.id, p.name)
        names = [p.name for p in command.params if p.positional]
        if "record_name" in [p.name for p in command.params]:
            assert names[0] == "record_name"


class AnsweringCtx(Ctx):
    """A person at the terminal who answers each prompt from a script, in order."""

    interactive = True

    def __init__(self, answers):
        self.answers = dict(answers)
        self.asked = []

    def prompt(self, text, *, secret=False):
        self.asked.append(text)
        return self.answers[text]


def test_add_at_a_terminal_asks_for_every_missing_required_field():
    host = Host.load()
    ctx = AnsweringCtx({
        "Client Account": "me@gmail.com", "Client ID": "cid.apps.example",
        "Client Secret (leave empty for a public client)": "",
    })
    host.registry.editors[RECORD_TYPE].command("add").run(ctx, {"record_name": "g",
                                                                    "provider": "google"})
    assert ctx.asked == ["Client Account", "Client ID",
                         "Client Secret (leave empty for a public client)"]
    stored = plugin.services.store.get("g")
    assert (stored.client_account, stored.client_id) == ("me@gmail.com", "cid.apps.example")
    ctx = AnsweringCtx({"Client ID": "x", "Authorization Endpoint": "https://a.example/auth",
                        "Access Token Endpoint": "https://a.example/token", "Scope": "mail",
                        "Client Secret (leave empty for a public client)": "s3"})
    host.registry.editors[RECORD_TYPE].command("add").run(ctx, {"record_name": "h",
                                                                    "client_account": "h@x"})
    assert ctx.asked[:4] == ["Client ID", "Authorization Endpoint", "Access Token Endpoint",
                             "Scope"]


def test_no_browser_without_a_terminal_finishes_with_redirect_url(fake_provider, oauth_client):
    import requests

    client_id, secret = oauth_client
    SECRETS.append(secret)
    add_record(fake_provider, client_id, secret, name="far")
    out = cli("get-refresh-token", "far", "--no-browser")
    assert "--redirect-url 'ADDRESS'" in out and "within 300 s" in out
    url = next(line for line in out.splitlines() if line.startswith("http"))
    hop = requests.get(url, allow_redirects=False, timeout=10)  # the person signs in elsewhere
    address = hop.headers["Location"]
    out = cli("get-refresh-token", "far", "--redirect-url", address)
    assert "Got a Refresh Token for 'far' (redirect URL)" in out
    assert "works" in cli("test", "far")
    out = cli("get-refresh-token", "far", "--redirect-url", address, ok=False)
    assert "no sign-in was started for this record" in out  # single use


def test_redirect_url_after_the_timeout_is_refused(fake_provider, oauth_client):
    client_id, secret = oauth_client
    add_record(fake_provider, client_id, secret, name="late")
    cli("get-refresh-token", "late", "--no-browser")
    time.sleep(1.2)
    out = cli("get-refresh-token", "late", "--redirect-url", "http://127.0.0.1:1/?code=x&state=y",
              "--timeout", "1", ok=False)
    assert "started over 1 s ago (--timeout)" in out


def test_device_flow_honours_the_timeout(fake_provider, public_oauth_client):
    fake_provider.device_auto_approve = False
    cli("add", "slow", "--account", "alice@example.test", "--client-id", public_oauth_client,
        "--client-secret", "", "--auth-endpoint", fake_provider.authorize_url,
        "--token-endpoint", fake_provider.token_url, "--scope", "mail offline_access",
        "--device-endpoint", fake_provider.device_url)
    started = time.monotonic()
    out = cli("get-refresh-token", "slow", "--device", "--timeout", "2", ok=False)
    assert time.monotonic() - started < 15
    assert "Waiting up to 2 s (--timeout)" in out and "expired before sign-in finished" in out
