"""hostsim with plugins other than robomail installed: their editors get commands, a broken one is
named and left out, robomail's manifest stays robomail's, and hostsim needs its extra.

Each plugin is a throwaway distribution (a ``.dist-info`` folder with ``entry_points.txt`` beside
its module) on PYTHONPATH of a fresh `hostsim` process, as a ``pip install`` would leave it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from click.testing import CliRunner

from hostsim.cli.main import main
from hostsim.cli.manifest import MANIFEST_PATH, REFERENCE_PATH
from robomail_plugin.hookspecs import ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parent.parent
SECRET = "n0tes-S3CRET-value"

NOTES_PLUGIN = '''
import json
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import (
    ActionSpec, CommandResult, CommandScope, EditorCommand, EditorField, FieldKind, Param,
    ProviderPreset, EditorSpec,
)


class Notes:
    """An editor of named notes kept in the host's data folder, an action and a provider."""

    path = None

    @hookimpl
    def robomail_configure(self, host):
        self.path = host.data_dir / "notes.json"

    def _load(self):
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def _add(self, ctx, params):
        notes = self._load()
        notes[params["note_name"]] = {"text": params["text"], "token": bool(params["token"])}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(notes))
        return CommandResult(message=f"added {params['note_name']} (token {params['token']})")

    def _list(self, ctx, params):
        notes = self._load()
        return CommandResult(message=", ".join(notes) or "no notes", data=notes)

    def _forget(self, ctx, params):
        notes = self._load()
        del notes[params["note_name"]]
        self.path.write_text(json.dumps(notes))
        return CommandResult(message=f"forgot {params['note_name']}")

    @hookimpl
    def robomail_register_credential_editors(self):
        name = Param(name="note_name", required=True, positional=True, help="the note")
        return [EditorSpec(
            record_type="note_pad",
            title="Note pad",
            fields=[EditorField(name="note_name", label="Name", required=True),
                    EditorField(name="text", label="Text"),
                    EditorField(name="token", label="Token", kind=FieldKind.SECRET)],
            key_field="note_name",
            list_command="list",
            commands=[
                EditorCommand(id="list", label="List the notes", run=self._list),
                EditorCommand(id="add_note", label="Add a note", run=self._add,
                              scope=CommandScope.RECORD,
                              params=[name, Param(name="text", aliases=["body"], help="text"),
                                      Param(name="token", secret=True, help="a token")]),
                EditorCommand(id="forget", label="Forget a note", run=self._forget,
                              scope=CommandScope.RECORD, params=[name],
                              confirm="Forget this note?"),
            ],
        )]

    @hookimpl
    def robomail_register_actions(self):
        return [ActionSpec(id="notes.read_note", title="Read Note", category="Notes",
                           run=lambda ctx, params: None)]

    @hookimpl
    def robomail_oauth_providers(self):
        return [ProviderPreset(key="notesmail", title="Notes Mail",
                               authorization_endpoint="https://auth.example.com/a",
                               token_endpoint="https://auth.example.com/t", scope="mail")]


plugin = Notes()
'''


def install(site: Path, name: str, module_text: str, *, value: str | None = None) -> None:
    """A distribution ``<name>dist 1.0`` whose entry point ``name`` is ``<name>_mod:plugin``."""
    site.mkdir(exist_ok=True)
    (site / f"{name}_mod.py").write_text(textwrap.dedent(module_text), encoding="utf-8")
    info = site / f"{name}dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}dist\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{name} = {value or f'{name}_mod:plugin'}\n", encoding="utf-8"
    )


def hostsim(site: Path, *args: str, cwd: Path | None = None, **env: str):
    """`hostsim ARGS` in a fresh process that sees the distributions in ``site``."""
    paths = [str(site), os.environ.get("PYTHONPATH", "")]
    full = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, paths)),
        "HOSTSIM_PLUGIN_CACHE": "0",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "hostsim.cli.main", *args], capture_output=True, text=True,
        timeout=120, env=full, cwd=cwd, stdin=subprocess.DEVNULL, check=False,
    )


# --- a CLI for every editor ------------------------------------------------------------------


def test_another_plugins_editor_gets_hostsim_commands(tmp_path):
    site = tmp_path / "site"
    install(site, "notes", NOTES_PLUGIN)

    listed = hostsim(site, "--help")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^\s+note-pad\s+Note pad", listed.stdout, re.MULTILINE)
    assert re.search(r"^\s+oauth\s", listed.stdout, re.MULTILINE)

    added = hostsim(site, "note-pad", "add-note", "first", "--body", "hello", "--token", SECRET)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added first (token ***)"
    for args in (("note-pad", "--json", "list"), ("note-pad", "list", "--json")):
        shown = hostsim(site, *args)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout) == {
            "message": "first", "data": {"first": {"text": "hello", "token": True}},
        }
    assert hostsim(site, "note_pad", "list").stdout.strip() == "first"

    refused = hostsim(site, "note-pad", "forget", "first")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert hostsim(site, "note-pad", "list").stdout.strip() == "first"
    forgot = hostsim(site, "note-pad", "forget", "first", "--yes")
    assert forgot.returncode == 0 and forgot.stdout.strip() == "forgot first"
    for run in (listed, added, refused, forgot):
        assert SECRET not in run.stdout + run.stderr


def test_an_editor_nobody_registers_is_an_unknown_command(tmp_path):
    missing = hostsim(tmp_path / "empty", "note-pad", "list")
    assert missing.returncode == 2
    assert "No such command 'note-pad'" in missing.stderr
    assert "hostsim plugins" in missing.stderr


def test_oauth_takes_json_before_and_after_its_command():
    runner = CliRunner()
    added = runner.invoke(main, ["oauth", "add", "w", "--provider", "google", "--account",
                                 "a@example.test", "--client-id", "cid", "--client-secret",
                                 SECRET])
    assert added.exit_code == 0, added.output
    for args in (["oauth", "--json", "show", "w"], ["oauth", "show", "w", "--json"]):
        shown = runner.invoke(main, args)
        assert shown.exit_code == 0, shown.output
        data = json.loads(shown.output)["data"]
        assert data["client_id"] == "cid" and data["client_secret"] == "***"
        assert SECRET not in shown.output


# --- plugins that fail to load ---------------------------------------------------------------

BROKEN = {
    "import": "import robomail_no_such_module\n",
    "attribute": "value = 1\n",
    "unknown hook": (
        "from robomail_plugin.hookspecs import hookimpl\n\n\n"
        "class P:\n    @hookimpl\n    def robomail_registr_actions(self):\n        return []\n\n\n"
        "plugin = P()\n"
    ),
}


def test_a_broken_plugin_is_named_on_one_line_and_the_others_still_load(tmp_path):
    site = tmp_path / "site"
    for number, (what, text) in enumerate(BROKEN.items()):
        install(site, f"broken{number}", f"# {what}\n{text}")
    install(site, "notes", NOTES_PLUGIN)

    actions = hostsim(site, "actions")
    assert actions.returncode == 0, actions.stderr
    assert "robomail.imap_mail_loop" in actions.stdout and "notes.read_note" in actions.stdout
    assert "Traceback" not in actions.stderr
    lines = sorted(actions.stderr.splitlines())  # in the order the distributions are found
    assert len(lines) == len(BROKEN)
    for number, line in enumerate(lines):
        assert line.startswith(f"hostsim: plugin 'broken{number}' (broken{number}dist 1.0) was "
                               "not loaded: ")
        assert line.endswith(f"set HOSTSIM_BLOCK_PLUGINS=broken{number}")
    assert "ModuleNotFoundError: No module named 'robomail_no_such_module'" in lines[0]
    assert "AttributeError" in lines[1]
    assert "robomail_registr_actions" in lines[2]

    plugins = hostsim(site, "plugins", HOSTSIM_BLOCK_PLUGINS="broken1")
    assert plugins.returncode == 0, plugins.stderr
    rows = dict(line.split("\t", 1) for line in plugins.stdout.splitlines() if "\t" in line)
    assert rows["robomail"] == "robomail 0.1.0" and rows["notes"] == "notesdist 1.0"
    assert rows["broken0"].startswith("not loaded (broken0dist 1.0): ModuleNotFoundError")
    assert rows["broken1"] == "blocked (broken1dist 1.0)"
    assert rows["broken2"].startswith("not loaded (broken2dist 1.0): ")
    assert len(plugins.stderr.splitlines()) == 2  # broken1 is blocked: not tried, not reported


def test_plugins_lists_a_blocked_plugin_as_blocked(tmp_path):
    plugins = hostsim(tmp_path / "empty", "plugins", HOSTSIM_BLOCK_PLUGINS="robomail")
    assert plugins.returncode == 0, plugins.stderr
    assert "robomail\tblocked (robomail 0.1.0)" in plugins.stdout.splitlines()
    assert "built in" not in plugins.stdout.replace("hostsim-core\tbuilt in", "")


MALFORMED = '''
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import ActionSpec


class P:
    @hookimpl
    def robomail_register_actions(self):
        return [ActionSpec(id=ACTION_ID, title="Bad Action", category="X",
                           run=lambda ctx, params: None)]


plugin = P()
'''


def test_a_registration_error_names_the_plugin(tmp_path):
    site = tmp_path / "site"
    install(site, "malformed", MALFORMED.replace("ACTION_ID", '"NoDot"'))
    failed = hostsim(site, "actions")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "plugin 'malformed': robomail_register_actions raised ValueError" in failed.stderr
    assert failed.stderr.strip().endswith("set HOSTSIM_BLOCK_PLUGINS=malformed")
    assert hostsim(site, "actions", HOSTSIM_BLOCK_PLUGINS="malformed").returncode == 0

    site = tmp_path / "site2"
    install(site, "twin", MALFORMED.replace("ACTION_ID", '"hostsim.log_message"'))
    clash = hostsim(site, "actions")
    assert clash.returncode == 1
    named = re.search(r"plugins '([\w.-]+)' and '([\w.-]+)' both register the action id "
                      r"'hostsim.log_message'", clash.stderr)
    assert named and {named[1], named[2]} == {"hostsim-core", "twin"}
    assert f"HOSTSIM_BLOCK_PLUGINS={named[1]} or {named[2]}" in clash.stderr


# --- robomail's checks look at robomail only -------------------------------------------------


def test_manifest_check_passes_with_another_plugin_and_from_another_folder(tmp_path):
    site = tmp_path / "site"
    install(site, "notes", NOTES_PLUGIN)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    checked = hostsim(site, "manifest", "--check", cwd=elsewhere)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{MANIFEST_PATH} is up to date"
    printed = hostsim(site, "manifest", cwd=elsewhere)
    assert printed.stdout == MANIFEST_PATH.read_text(encoding="utf-8")
    assert MANIFEST_PATH == ROOT / "manifests" / "robomail.json"
    assert REFERENCE_PATH == ROOT / "docs" / "actions.md"


# --- packaging -------------------------------------------------------------------------------


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_plugin_needs_only_its_run_time_libraries():
    project = _pyproject()
    assert _names(project["dependencies"]) == {
        "pluggy", "attrs", "requests", "requests-oauthlib", "cryptography", "imapclient",
    }
    assert "pluggy>=1.5" in project["dependencies"]
    extras = project["optional-dependencies"]
    assert _names(extras["host"]) == {"click", "pyyaml"}
    assert set(extras["sandbox"]) >= {"robomail[host]"}
    assert _names(extras["sandbox"]) == {"robomail", "pytest-httpserver", "aiosmtpd"}
    assert any("sandbox" in r and r.startswith("robomail[") for r in extras["test"])
    assert any(r.startswith("robomail[test") for r in extras["dev"])
    assert project["scripts"]["hostsim"] == "hostsim.cli.console:main"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install robomail" in readme and "'robomail[host]'" in readme
    assert "'robomail[sandbox]'" in readme


def test_hostsim_without_click_says_which_extra_to_install():
    code = "import sys; sys.modules['click'] = None\nfrom hostsim.cli.console import main\nmain()"
    run = subprocess.run([sys.executable, "-c", code, "actions"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        "hostsim needs click and PyYAML: pip install 'robomail[host]'"
    ]


def test_the_console_script_runs_hostsim():
    code = "import sys\nfrom hostsim.cli.console import main\nsys.argv = ['hostsim', 'plugins']\nmain()"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert "robomail\trobomail 0.1.0" in run.stdout.splitlines()
