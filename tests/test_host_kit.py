"""The contract used by others: a second plugin (installed for real), a pluggy-only host built
from the README, two hosts in one process, a plugin's store checked, tokens for other plugins,
and a form built from the EditorSpecs alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hostsim.cli.commands import CommandContext
from hostsim.runtime.host import Host
from robomail_plugin import host_kit
from robomail_plugin.errors import RecordNotFound, StoreError
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import (
    CHOICES_FROM_PROVIDERS,
    ActionFailed,
    CommandResult,
    CommandScope,
    FieldKind,
    FieldRule,
    ParamType,
    check_field,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def second_site(tmp_path_factory) -> Path:
    """tests/second_plugin installed with pip into a folder of its own (its entry point too)."""
    site = tmp_path_factory.mktemp("second-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(ROOT / "tests" / "second_plugin")],
        check=True, capture_output=True, timeout=120,
    )
    return site


@pytest.fixture
def with_second(second_site, monkeypatch) -> Path:
    """The second plugin on sys.path, as if installed beside robomail."""
    monkeypatch.syspath_prepend(str(second_site))
    monkeypatch.setenv("HOSTSIM_PLUGIN_CACHE", "0")
    import importlib

    importlib.invalidate_caches()
    return second_site


def hostsim(*args: str, site: Path | None = None, env: dict[str, str] | None = None):
    full_env = {**os.environ, "HOSTSIM_PLUGIN_CACHE": "0", **(env or {})}
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site),
                                                              full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "hostsim.cli.main", *args], capture_output=True, text=True,
        env=full_env, timeout=120,
    )


# --- tokens for other plugins ------------------------------------------------------------


def test_hook_robomail_access_token_gives_the_expiry_and_tells_unknown_from_absent(
    host, fake_provider, make_oauth_record
):
    name = make_oauth_record("alice@example.test")
    info = host_kit.access_token(host.pm.hook, name)
    assert fake_provider.is_active(info.value)
    assert info.value not in repr(info)
    assert info.record_name == name and info.expires_at > 0
    with pytest.raises(RecordNotFound):
        host_kit.access_token(host.pm.hook, "no such record")
    bare = Host.load(load_entry_points=False)  # robomail not loaded at all
    with pytest.raises(host_kit.NoTokenProvider, match="install robomail"):
        host_kit.access_token(bare.pm.hook, name)


def test_hook_robomail_token_refused_makes_the_next_call_refresh(
    host, fake_provider, make_oauth_record
):
    name = make_oauth_record("alice@example.test")
    first = host_kit.access_token(host.pm.hook, name).value
    assert host_kit.access_token(host.pm.hook, name).value == first  # cached
    host.pm.hook.robomail_token_refused(record_name=name, token="an older token")
    assert host_kit.access_token(host.pm.hook, name).value == first  # a stale report is ignored
    host.pm.hook.robomail_token_refused(record_name=name, token=first)
    fresh = host_kit.access_token(host.pm.hook, name).value
    assert fresh != first and fake_provider.is_active(fresh)


# --- per-host state ------------------------------------------------------------------------


def test_two_hosts_in_one_process_keep_their_own_credential_stores(tmp_path, monkeypatch):
    monkeypatch.delenv("ROBOMAIL_HOME")
    a = Host.load(home=tmp_path / "a")
    b = Host.load(home=tmp_path / "b")
    save = a.registry.editors["oauth"].command("save")
    save.run(CommandContext(interactive=False), host_kit.bind_params(save.params, {
        "record_name": "only-in-a", "client_account": "a@example.test", "client_id": "cid",
        "authorization_endpoint": "https://auth.example.test/a",
        "token_endpoint": "https://auth.example.test/t", "scope": "mail",
    }))
    listing = b.registry.editors["oauth"].command("list")
    assert listing.run(CommandContext(interactive=False), {}).data == []
    listing = a.registry.editors["oauth"].command("list")
    assert [r["record_name"] for r in listing.run(CommandContext(interactive=False), {}).data] \
        == ["only-in-a"]
    assert (tmp_path / "a" / "data" / "credentials.sqlite3").exists()


# --- a plugin's store: checked, its failures clean -----------------------------------------


class Broken:
    def get(self, *args):
        raise ValueError("connection to the vault lost")

    list = add = update = delete = rename = get


def store_plugin(store):
    class StorePlugin:
        @hookimpl
        def robomail_credential_store(self):
            return store

    return StorePlugin()


def test_a_plugin_store_that_lacks_methods_is_named_with_what_it_lacks():
    host = Host.load(extra_plugins=(store_plugin(["not", "a store"]),))
    with pytest.raises(StoreError, match=r"Plugin 'StorePlugin' offers a credential store "
                                         r"\(list\) that lacks get, list, add, update, delete, "
                                         r"rename"):
        host.registry.editors["oauth"].command("list").run(CommandContext(interactive=False), {})


def test_a_failing_plugin_store_is_a_clean_error_in_the_editor_and_in_a_task(tmp_path):
    host = Host.load(extra_plugins=(store_plugin(Broken()),))
    with pytest.raises(StoreError, match="failed in list: ValueError") as caught:
        host.registry.editors["oauth"].command("list").run(CommandContext(interactive=False), {})
    assert "vault" not in str(caught.value)  # a store's own text may hold secrets
    result = host.run_text(textwrap.dedent("""
        name: t
        steps:
          - action: IMAP Open
            params: {server: 127.0.0.1, port: 1, auth: oauth, oauth_record: R, security: none}
    """))
    assert not result.ok and result.error.code == "store_error"
    assert "failed in get: ValueError" in result.error.description


# --- the second plugin, installed --------------------------------------------------------


def test_the_second_plugin_loads_through_its_entry_point_beside_robomail(with_second):
    host = Host.load()
    assert "second" in dict(host.registry.plugin_names())
    assert "second.token_expiry" in host.registry.actions
    assert {"oauth", "api_key"} <= set(host.registry.editors)
    assert "example_mail" in host.registry.providers()


def test_the_second_plugins_action_gets_robomails_tokens(with_second, fake_provider,
                                                          make_oauth_record):
    host = Host.load()
    name = make_oauth_record("alice@example.test")
    result = host.run_text(textwrap.dedent(f"""
        name: expiry
        steps:
          - action: Token Expiry
            params: {{record: "{name}", report_refused: true}}
    """))
    assert result.ok, result.error
    assert 3000 < int(result.variables["SecondExpiresIn"]) <= 3600
    assert result.variables["SecondGotFresh"] is True


def test_the_second_plugins_store_replaces_the_embedded_one_and_says_so(with_second, monkeypatch,
                                                                         robomail_home):
    monkeypatch.setenv("SECOND_PLUGIN_STORE", "1")
    host = Host.load()
    editor = host.registry.editors["oauth"]
    ctx = CommandContext(interactive=False)
    editor.command("save").run(ctx, host_kit.bind_params(editor.command("save").params, {
        "record_name": "mem", "client_account": "a@example.test", "client_id": "cid",
        "authorization_endpoint": "https://auth.example.test/a",
        "token_endpoint": "https://auth.example.test/t", "scope": "mail",
    }))
    listing = editor.command("list").run(ctx, {})
    assert "Store: the store of plugin 'second' (MemoryOAuthStore)" in listing.message
    assert not (robomail_home / "credentials.sqlite3").exists()


def test_the_second_plugin_through_hostsim(second_site, fake_provider, make_oauth_record):
    name = make_oauth_record("alice@example.test")
    task = Path(os.environ["HOSTSIM_HOME"]).parent / "expiry.yaml"
    task.write_text(f'name: expiry\nsteps:\n  - action: Token Expiry\n'
                    f'    params: {{record: "{name}"}}\n  - action: Log Message\n'
                    f'    params: {{message: "left {{SecondExpiresIn}}"}}\n')
    ran = hostsim("run", str(task), site=second_site)
    assert ran.returncode == 0, ran.stderr
    assert re.search(r"left \d{4}", ran.stdout)
    assert "second.token_expiry" in hostsim("actions", site=second_site).stdout


# --- a form built from the hooks alone ----------------------------------------------------


def form_value(field, providers):
    """What a person types into a form field, knowing only the field's declaration."""
    if field.choices:
        return field.choices[-1]
    if field.kind is FieldKind.SECRET:
        return "typed-secret"
    if FieldRule.URL in field.rules or field.kind is FieldKind.URL:
        return "https://auth.example.test/" + field.name
    return f"{field.name}-value"


def command_params(editor, command, key, tmp_path, providers):
    values = {}
    for p in command.params:
        if p.name == editor.key_field:
            values[p.name] = key
        elif p.choices_from == CHOICES_FROM_PROVIDERS:
            values[p.name] = sorted(providers)[0]
        elif p.type is ParamType.PATH:
            values[p.name] = str(tmp_path / f"{command.id}.json")
        elif p.required:
            values[p.name] = f"{p.name}-{key}"
    return host_kit.bind_params(command.params, values)


def test_a_form_built_from_the_hooks_saves_and_runs_every_command_of_every_editor(
    with_second, tmp_path, monkeypatch
):
    monkeypatch.delenv("ROBOMAIL_KEY")  # rotation then keeps its own key (a key file)
    monkeypatch.setenv("ROBOMAIL_KEYRING", "0")
    host = Host.load()
    providers = host.registry.providers()
    ctx = CommandContext(interactive=False)
    assert {"oauth", "api_key"} <= set(host.registry.editors)
    for editor in host.registry.editors.values():
        save = editor.command(editor.save_command)
        assert {p.name for p in save.params} <= {f.name for f in editor.fields}
        editable = [f for f in editor.fields if not f.read_only]
        for key in ("form-1", "form-2"):
            typed = {f.name: form_value(f, providers) for f in editable}
            typed[editor.key_field] = key
            assert all(check_field(f, typed[f.name]) is None for f in editable), editor.record_type
            result = save.run(ctx, host_kit.bind_params(save.params, typed))
            assert isinstance(result, CommandResult)
        shown = editor.command(editor.show_command).run(
            ctx, host_kit.bind_params(editor.command(editor.show_command).params,
                                      {editor.key_field: "form-1"})).data
        assert set(shown) >= {f.name for f in editor.fields}
        assert all(shown[f.name] in ("***", "") for f in editor.fields if f.secret)
        listed = editor.command(editor.list_command).run(ctx, {}).data
        assert {row[editor.key_field] for row in listed} == {"form-1", "form-2"}
        for command in editor.commands:
            if command.long_running:
                continue  # waits for a person in a browser: the web screen's test runs it
            key = "form-2" if command.scope is CommandScope.RECORD else None
            try:
                result = command.run(ctx, command_params(editor, command, key, tmp_path,
                                                         providers))
            except ActionFailed as exc:  # a classified refusal is a result a form shows
                assert exc.code and str(exc), command.id
            else:
                assert isinstance(result, CommandResult), command.id


def test_check_field_applies_the_declared_rules(host):
    fields = {f.name: f for f in host.registry.editors["oauth"].fields}
    assert check_field(fields["token_endpoint"], "http://example.com/t") is not None
    assert check_field(fields["token_endpoint"], "http://127.0.0.1:8080/t") is None
    assert "required" in check_field(fields["client_id"], "")
    assert "one line" in check_field(fields["client_account"], "a\nb")
    assert "spaces" in check_field(fields["record_name"], " x")
    assert fields["refresh_token"].read_only and fields["refresh_token"].secret


# --- the README's pluggy-only host ---------------------------------------------------------


def readme_host_snippet() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### A host in pluggy alone", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_minimal_host_runs_as_written(tmp_path):
    code = readme_host_snippet()
    assert "hostsim" not in code
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60, env={**os.environ})
    assert ran.returncode == 0, ran.stderr
    assert "OAuth parameters: Record Name, Client Account" in ran.stdout
    assert "subject: Hello from a host of my own" in ran.stdout


def test_the_host_checks_a_plugin_store_at_start_and_plugins_names_the_store(capsys, monkeypatch,
                                                                             robomail_home):
    Host.load(extra_plugins=(store_plugin(["not", "a store"]),))
    assert ("plugin 'StorePlugin' offers a credential store (list) that lacks get, list, add, "
            "update, delete, rename" in capsys.readouterr().err)
    from robomail_plugin.host_kit import credential_store_in_use

    host = Host.load()
    assert credential_store_in_use(host.pm.hook, host.home / "data") == (
        f"robomail's embedded store {robomail_home / 'credentials.sqlite3'}"
    )
    monkeypatch.setenv("ROBOMAIL_STORE", "postgresql://fleet:S3cret@127.0.0.1:5432/robomail")
    said = credential_store_in_use(host.pm.hook, host.home / "data")
    assert said == "PostgreSQL postgresql://fleet@127.0.0.1:5432/robomail (ROBOMAIL_STORE)"
    ran = hostsim("plugins")
    assert "credential store: PostgreSQL postgresql://fleet@127.0.0.1:5432/robomail" in ran.stdout
    assert "S3cret" not in ran.stdout + ran.stderr


def test_the_basic_context_raises_the_connection_codes_the_actions_declare():
    """A host built on host_kit reports what ActionSpec.errors promises, not invalid_parameter."""
    from robomail_plugin.host_kit import BasicActionContext
    from robomail_plugin.schema import ActionFailed

    class Session:
        def close(self) -> None:
            pass

    ctx = BasicActionContext()
    ctx.open_connection("Mail", "imap", Session())
    codes = []
    for attempt in (
        lambda: ctx.open_connection("Mail", "imap", Session()),
        lambda: ctx.connection("Other", "imap"),
        lambda: ctx.connection("Mail", "pop3"),
    ):
        with pytest.raises(ActionFailed) as caught:
            attempt()
        codes.append(caught.value.code)
    assert codes == ["connection_in_use", "connection_not_open", "wrong_connection_kind"]
