"""The hook contract: documented, tested, loaded the way a real host loads it."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hostsim.cli.main import main
from hostsim.cli.manifest import (
    MANIFEST_PATH,
    REFERENCE_PATH,
    build_manifest,
    check_manifest,
    check_reference,
)
from hostsim.runtime.host import Host
from hostsim.runtime.plugins import make_plugin_manager
from hostsim.runtime.registry import RegistrationError, Registry
from robomail_plugin import hookspecs
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import ActionSpec, Param, ParamType

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith(f"{hookspecs.PROJECT_NAME}_"))


def signature_of(name: str) -> str:
    """The exact signature as the README heads its section: ``name(arg: type) -> type``."""
    sig = inspect.signature(getattr(hookspecs, name))
    args = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({args}) -> {sig.return_annotation}"


def test_there_are_hooks_and_all_carry_the_prefix():
    assert "robomail_register_actions" in HOOKS and "robomail_get_access_token" in HOOKS
    assert all(n.startswith("robomail_") for n in HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_every_hookspec_has_a_full_docstring(name):
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert doc.strip(), f"{name} has no docstring"
    assert ":returns:" in doc
    sig = inspect.signature(getattr(hookspecs, name))
    for param in sig.parameters:
        assert f":param {param}:" in doc, f"{name}: :param {param}: is not documented"
    opts = getattr(hookspecs, name).robomail_spec
    if opts.get("firstresult"):
        assert "first non-None result" in doc


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_readme_section_headed_by_its_signature(name):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"### `{signature_of(name)}`" in readme


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test_of_its_own(name):
    """Each hook has a test named ``test_hook_<hook name>...`` that calls it for real."""
    pattern = re.compile(rf"^def test_hook_{name}\w*\(", re.MULTILINE)
    assert any(
        pattern.search(path.read_text(encoding="utf-8"))
        for path in (ROOT / "tests").glob("test_*.py")
    ), f"no test_hook_{name}... test"


def test_plugin_is_loaded_through_the_installed_entry_point():
    pm = make_plugin_manager()
    plugin = pm.get_plugin("robomail")
    assert plugin is not None, "the robomail entry point was not loaded"
    assert pm.plugin_dists["robomail"].split()[0] == "robomail"


def test_blocked_plugin_is_not_loaded(monkeypatch):
    monkeypatch.setenv("HOSTSIM_BLOCK_PLUGINS", "robomail")
    pm = make_plugin_manager()
    assert pm.get_plugin("robomail") is None
    assert pm.is_blocked("robomail")


def test_tracing_writes_hook_calls(monkeypatch, capfd):
    monkeypatch.setenv("HOSTSIM_TRACE", "1")
    Host.load()
    assert "robomail_register_actions" in capfd.readouterr().err


def test_hook_robomail_configure_gives_plugins_the_host_services(robomail_home):
    seen = []

    class Probe:
        @hookimpl
        def robomail_configure(self, host):
            seen.append(host)

    host = Host.load(extra_plugins=(Probe(),))
    assert seen and seen[0].data_dir == host.home / "data"
    assert seen[0].hook is host.pm.hook
    # historic: a plugin registered later still gets the call
    late = Probe()
    host.pm.register(late)
    assert len(seen) == 2


def test_action_ids_follow_the_naming_rule(host):
    for spec in host.registry.actions.values():
        if spec.id.startswith("robomail."):
            expected = "robomail." + re.sub(r"[^a-z0-9]+", "_", spec.title.lower()).strip("_")
            assert spec.id == expected


def test_secret_looking_params_are_declared_secret(host):
    for spec in host.registry.actions.values():
        for p in spec.params:
            if re.search(r"password|secret|token$", p.name) and not p.sets_variable:
                assert p.secret, f"{spec.id}.{p.name} looks secret but is not declared secret"


def _conflicting(title: str, action_id: str):
    class Conflict:
        @hookimpl
        def robomail_register_actions(self):
            return [ActionSpec(id=action_id, title=title, category="X", run=lambda c, p: None)]

    return Conflict()


@pytest.mark.parametrize(
    ("title", "action_id", "message"),
    [
        ("Another", "hostsim.set_variable", "action id 'hostsim.set_variable'"),
        ("set variable", "other.set_var", "share the title"),
    ],
)
def test_conflicting_registrations_fail_loudly(title, action_id, message):
    pm = make_plugin_manager(extra_plugins=(_conflicting(title, action_id),))
    with pytest.raises(RegistrationError, match=message):
        Registry.collect(pm)


def test_malformed_registrations_are_rejected_when_declared():
    with pytest.raises(ValueError, match="snake_case"):
        Param(name="Bad Name")
    with pytest.raises(ValueError, match="needs choices"):
        Param(name="x", type=ParamType.CHOICE)
    with pytest.raises(ValueError, match="plugin.snake_case_name"):
        ActionSpec(id="NoDot", title="x", category="x", run=lambda c, p: None)


def test_manifest_on_disk_is_in_sync_with_the_code(host):
    assert check_manifest(host.registry, ROOT / MANIFEST_PATH) == []


def test_action_reference_is_in_sync_with_the_declarations(host):
    assert check_reference(host.registry, ROOT / REFERENCE_PATH) == []


def test_manifest_check_reports_drift(host, tmp_path):
    stale = build_manifest(host.registry)
    stale["actions"] = [*stale["actions"], {"id": "robomail.gone", "title": "Gone"}]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(stale))
    problems = check_manifest(host.registry, path)
    assert problems and "'actions' differs" in problems[0]


def test_cli_lists_and_describes_actions():
    runner = CliRunner()
    listed = runner.invoke(main, ["actions", "--json"])
    assert listed.exit_code == 0
    ids = {a["id"] for a in json.loads(listed.output)}
    assert {"hostsim.set_variable", "hostsim.for_each", "hostsim.log_message"} <= ids
    described = runner.invoke(main, ["describe", "For Each"])
    assert described.exit_code == 0 and "save_index_to" in described.output
    missing = runner.invoke(main, ["describe", "Nope"])
    assert missing.exit_code != 0 and "hostsim actions" in missing.output


def test_cli_run_reports_a_bad_task_file_clearly(tmp_path):
    task = tmp_path / "bad.yaml"
    task.write_text("name: x\nsteps:\n  - action: Nope\n")
    result = CliRunner().invoke(main, ["run", str(task)])
    assert result.exit_code == 1
    assert "step 1: unknown action 'Nope'" in result.output


def test_installed_console_script_runs():
    exe = Path(sys.executable).with_name("hostsim")
    out = subprocess.run([str(exe), "plugins"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "robomail" in out.stdout


def test_hook_robomail_register_actions_collects_every_plugins_actions(host):
    results = host.pm.hook.robomail_register_actions()
    ids = {spec.id for result in results for spec in result}
    assert {"hostsim.set_variable", "hostsim.log_message", "hostsim.for_each"} <= ids
    assert ids == set(host.registry.actions)


def test_hook_robomail_register_credential_editors_offers_the_oauth_editor(host):
    editors = [e for result in host.pm.hook.robomail_register_credential_editors() for e in result]
    oauth = {e.record_type: e for e in editors}["oauth"]
    fields = {f.name: f for f in oauth.fields}
    assert {"record_name", "client_account", "client_id", "client_secret", "refresh_token",
            "authorization_endpoint", "token_endpoint", "scope"} <= set(fields)
    assert fields["client_secret"].secret and fields["refresh_token"].secret
    assert fields["record_name"].required
    commands = {c.id for c in oauth.commands}
    assert {"get_refresh_token", "load_predefined", "export", "import"} <= commands


def test_hook_robomail_oauth_providers_has_google_and_microsoft(host):
    presets = {p.key: p for result in host.pm.hook.robomail_oauth_providers() for p in result}
    google, microsoft = presets["google"], presets["microsoft"]
    assert google.authorization_endpoint == "https://accounts.google.com/o/oauth2/v2/auth"
    assert google.token_endpoint == "https://oauth2.googleapis.com/token"
    assert google.scope == "https://mail.google.com/"
    assert google.extra_authorize_params == {"access_type": "offline", "prompt": "consent"}
    assert "offline_access" in microsoft.scope.split()
    assert microsoft.token_endpoint.startswith("https://login.microsoftonline.com/")


def test_hook_robomail_oauth_providers_from_another_plugin_are_offered(robomail_home):
    from robomail_plugin.schema import ProviderPreset

    class Fastmail:
        @hookimpl
        def robomail_oauth_providers(self):
            return [ProviderPreset(key="examplemail", title="Example Mail",
                                   authorization_endpoint="https://auth.example.com/authorize",
                                   token_endpoint="https://auth.example.com/token", scope="mail")]

    host = Host.load(extra_plugins=(Fastmail(),))
    assert {"google", "microsoft", "examplemail"} <= set(host.registry.providers())


def test_hook_robomail_get_access_token_serves_other_plugins(host, fake_provider, make_oauth_record):
    name = make_oauth_record("alice@example.test")
    token = host.pm.hook.robomail_get_access_token(record_name=name)
    assert isinstance(token, str) and fake_provider.is_active(token)
    # cached: a second call does not reach the token endpoint again
    before = len(fake_provider.token_requests)
    assert host.pm.hook.robomail_get_access_token(record_name=name) == token
    assert len(fake_provider.token_requests) == before
    assert host.pm.hook.robomail_get_access_token(record_name="no such record") is None


def test_hook_robomail_credential_store_replaces_the_embedded_store(robomail_home):
    from robomail_plugin.credentials.records import OAuthRecord

    class MemoryStore:
        def __init__(self):
            self.records = {}

        def get(self, name):
            from robomail_plugin.errors import RecordNotFound

            if name not in self.records:
                raise RecordNotFound(f"no record {name!r}")
            return self.records[name]

        def list(self):
            return list(self.records.values())

        def add(self, record):
            self.records[record.record_name] = record

        def update(self, record):
            self.records[record.record_name] = record

        def delete(self, name):
            del self.records[name]

        def rename(self, old, new):
            self.records[new] = self.records.pop(old)

    memory = MemoryStore()

    class FleetPlugin:
        @hookimpl
        def robomail_credential_store(self):
            return memory

    host = Host.load(extra_plugins=(FleetPlugin(),))
    assert host.pm.hook.robomail_credential_store() is memory
    memory.add(OAuthRecord(record_name="Fleet", client_account="a@example.test", client_id="c",
                           client_secret="", refresh_token="",
                           authorization_endpoint="https://auth.example.com/a",
                           token_endpoint="https://auth.example.com/t", scope="mail"))
    editor = host.registry.editors["oauth"]
    from hostsim.cli.commands import CommandContext

    result = editor.command("list").run(CommandContext(interactive=False), {})
    assert "Fleet" in result.message
    assert not (robomail_home / "credentials.sqlite3").exists()
