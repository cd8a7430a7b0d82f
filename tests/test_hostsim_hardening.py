"""hostsim against hostile or careless input: secrets stay masked, bad files fail fast and clearly.

Trace output, step logs and error messages are what people paste into bug reports, so none may
carry a secret; a task file or variable built to explode must end in a one-line error, not a hang.
"""

from __future__ import annotations

import io
import json
import time

import pytest
from click.testing import CliRunner

from hostsim.cli.main import main
from hostsim.runtime.host import Host
from hostsim.runtime.task import TaskError, load_task_file, load_task_text
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import ActionFailed, ActionSpec, Param

CANARY = "canary-Pa55w0rd-7d1e"
TOKEN = "ya29.a0AfB_byC" + "Zq9xK3mT7" * 8  # shaped like a Google access token


def _login(ctx, p):
    ctx.log("logged in")


def _refuse(ctx, p):
    raise ActionFailed("the server refused", code="refused")


class HardeningPlugin:
    """A second plugin, as a host would load one: an access token and a login with a password."""

    @hookimpl
    def robomail_get_access_token(self, record_name):
        return TOKEN if record_name == "Work Mail" else None

    @hookimpl
    def robomail_register_actions(self):
        return [
            ActionSpec(
                id="hardening.login",
                title="Hardening Login",
                category="T",
                run=_login,
                params=[Param(name="password", secret=True)],
            ),
            ActionSpec(id="hardening.refuse", title="Hardening Refuse", category="T", run=_refuse),
        ]


@pytest.fixture
def hhost(robomail_home):
    return Host.load(extra_plugins=(HardeningPlugin(),))


# --- item 7: HOSTSIM_TRACE ------------------------------------------------------------------------


def test_trace_masks_access_tokens_and_abbreviates_action_lists(monkeypatch, capfd, robomail_home):
    monkeypatch.setenv("HOSTSIM_TRACE", "1")
    host = Host.load(extra_plugins=(HardeningPlugin(),))
    assert host.pm.hook.robomail_get_access_token(record_name="Work Mail") == TOKEN
    host.pm.hook.robomail_get_access_token(record_name="R" * 5000)
    err = capfd.readouterr().err
    assert "robomail_get_access_token" in err and "robomail_register_actions" in err
    assert TOKEN not in err and TOKEN[:20] not in err
    assert "ActionSpec(" not in err  # counts and ids, not every declaration in full
    assert "hostsim.set_variable" in err
    assert "R" * 300 not in err
    assert max(len(line) for line in err.splitlines()) <= 400


# --- item 8: Set Variable with a secret-looking name ----------------------------------------------


def test_set_variable_step_line_masks_a_secret_named_value(hhost, tmp_path):
    out = io.StringIO()
    r = hhost.run_text(
        f"""
name: s
steps:
  - action: Set Variable
    params: {{name: MySecretThing, value: "{CANARY}"}}
  - action: Set Variable
    params: {{name: ApiKey, value: "k1"}}
""",
        out=out,
    )
    assert r.ok
    text = out.getvalue()
    assert CANARY not in text and "value=k1" not in text
    assert "name=MySecretThing, value=***" in text
    assert r.variables["MySecretThing"] == "***" and r.variables["ApiKey"] == "***"


# --- item 9: on_error handlers --------------------------------------------------------------------


def test_handler_keeps_the_parents_masking_and_prints_each_line_once(hhost, tmp_path):
    (tmp_path / "handler.yaml").write_text(
        "name: handler\nsteps:\n"
        "  - action: Log Message\n    params: {message: 'handler saw {Login}'}\n"
    )
    parent = tmp_path / "parent.yaml"
    parent.write_text(
        f"name: parent\non_error: handler.yaml\nvariables: {{Login: {CANARY}}}\nsteps:\n"
        "  - action: Hardening Login\n    params: {password: '{Login}'}\n"
        "  - action: Hardening Refuse\n"
    )
    out = io.StringIO()
    r = hhost.run_file(parent, out=out)
    assert not r.ok and r.handled_by
    text = out.getvalue()
    assert CANARY not in text and all(CANARY not in line for line in r.log)
    assert text.count("handler saw ***") == 1
    assert text.splitlines() == r.log


def test_a_handler_that_names_its_own_file_is_a_cycle_named_in_the_log(hhost, tmp_path):
    (tmp_path / "handler.yaml").write_text(
        "name: handler\non_error: handler.yaml\nsteps:\n  - action: Hardening Refuse\n"
    )
    parent = tmp_path / "parent.yaml"
    parent.write_text("name: parent\non_error: handler.yaml\nsteps:\n  - action: Hardening Refuse\n")
    r = hhost.run_file(parent)
    assert not r.ok
    cycle = [line for line in r.log if "cycle" in line]
    assert len(cycle) == 1
    assert "parent.yaml -> handler.yaml -> handler.yaml" in cycle[0]


# --- item 10: errors that echo the offending text -------------------------------------------------


def test_yaml_syntax_error_gives_line_and_column_but_not_the_text(hhost, tmp_path):
    task = tmp_path / "broken.yaml"
    task.write_text(f"name: broken\nvariables: {{Password: {CANARY}\nsteps: []\n")
    with pytest.raises(TaskError) as caught:
        load_task_file(task, hhost.registry)
    message = str(caught.value)
    assert CANARY not in message and "\n" not in message
    assert message == (
        f"{task}: not valid YAML: line 3, column 6: expected ',' or '}}', but got ':' "
        "(while parsing a flow mapping at line 2)"
    )


def test_a_malformed_var_is_named_by_position_without_its_value(tmp_path):
    task = tmp_path / "t.yaml"
    task.write_text("name: t\nsteps: []\n")
    result = CliRunner().invoke(main, ["run", str(task), "--var", "A=1", "--var", CANARY])
    assert result.exit_code == 2
    assert CANARY not in result.output
    assert "--var number 2 is not NAME=VALUE" in result.output


# --- item 11: limits ------------------------------------------------------------------------------


def _alias_bomb() -> str:
    lines = ["name: bomb", "variables:", "  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join([*lines, "steps: []", ""])


def test_a_yaml_alias_bomb_is_refused_at_load(hhost, tmp_path):
    task = tmp_path / "bomb.yaml"
    task.write_text(_alias_bomb())
    with pytest.raises(TaskError, match=rf"^{task}: .*alias"):
        load_task_file(task, hhost.registry)


def test_a_few_aliases_still_load(hhost):
    task = load_task_text(
        "name: ok\nvariables: {A: &v [1, 2], B: *v}\nsteps: []\n", hhost.registry
    )
    assert task.variables == {"A": [1, 2], "B": [1, 2]}


def test_deeply_nested_yaml_is_a_task_error(hhost, tmp_path):
    task = tmp_path / "deep.yaml"
    task.write_text("name: d\nvariables: {X: " + "[" * 5000 + "]" * 5000 + "}\nsteps: []\n")
    with pytest.raises(TaskError, match=rf"^{task}: .*nest"):
        load_task_file(task, hhost.registry)


def test_a_json_parameter_nested_too_deeply_is_a_task_error(hhost):
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(TaskError, match="step 1 .*items"):
        load_task_text(
            f"name: d\nsteps:\n  - action: For Each\n    params: {{items: '{deep}'}}\n",
            hhost.registry,
        )


def test_a_task_file_that_is_not_utf8_names_the_byte(hhost, tmp_path):
    task = tmp_path / "latin.yaml"
    task.write_bytes("name: caf\xe9\nsteps: []\n".encode("latin-1"))
    with pytest.raises(TaskError) as caught:
        load_task_file(task, hhost.registry)
    assert str(caught.value) == f"{task}: not UTF-8 text (byte 9)"


def test_a_task_file_over_one_mib_is_refused_before_reading(hhost, tmp_path):
    task = tmp_path / "big.yaml"
    task.write_text("name: big\nsteps: []\n" + "#" * (1 << 20) + "\n")
    with pytest.raises(TaskError, match=rf"^{task}: .*1 MiB"):
        load_task_file(task, hhost.registry)


def test_a_variable_that_refers_to_itself_fails_the_step_naming_it(hhost):
    started = time.monotonic()
    r = hhost.run_text(
        "name: s\nvariables: {A: '" + "{A}" * 25 + "'}\nsteps:\n"
        "  - action: Log Message\n    params: {message: 'x{A}'}\n"
    )
    assert time.monotonic() - started < 5
    assert not r.ok and r.error is not None
    assert r.error.code == "invalid_parameter"
    assert "variable A refers to itself" in r.error.description


def test_expansion_that_grows_past_16_mib_fails_the_step(hhost):
    variables = {"V0": "x" * 1000, "V1": "{V0}" * 32, "V2": "{V1}" * 32, "V3": "{V2}" * 32}
    r = hhost.run_text(
        "name: g\nsteps:\n  - action: Log Message\n    params: {message: '{V3}'}\n", variables
    )
    assert not r.ok and r.error is not None
    assert r.error.code == "invalid_parameter"
    assert "16 MiB" in r.error.description
    assert "xxxx" not in r.error.description
    assert len(json.dumps(r.variables)) < 10_000
