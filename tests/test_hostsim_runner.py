"""The runner as a task author relies on it: variables, loops, errors, connections, masking."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from hostsim.runtime.host import Host
from hostsim.runtime.runner import StepLog
from hostsim.runtime.task import TaskError, load_task_text
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import ActionFailed, ActionSpec, Param, ParamType

CANARY = "canary-S3cr3t-9f2b"


class FakeSession:
    """A connection object like the mail sessions: records that it was closed."""

    closed: list[str] = []

    def __init__(self, name: str) -> None:
        self.name = name

    def close(self) -> None:
        FakeSession.closed.append(self.name)


def _open(ctx, p):
    ctx.open_connection(p["connection"], p["kind"], FakeSession(p["connection"]))
    ctx.log(f"opened with password {p['password']}")


def _use(ctx, p):
    ctx.connection(p["connection"], p["kind"])


def _fail(ctx, p):
    raise ActionFailed(
        f"server refused; password was {p['password']}",
        code="login_failed",
        server_reply=f"NO [AUTH] bad {p['password']}",
    )


def _crash(ctx, p):
    raise RuntimeError("boom")


def _count(ctx, p) -> Iterator[None]:
    snapshot = list(range(1, p["n"] + 1))
    try:
        for i in snapshot:
            ctx.set_variable(p["save_to"], {"n": i, "tags": ["a", f"t{i}"]})
            yield None
    finally:
        ctx.set_variable("LoopClosed", True)


class TestPlugin:
    """Test actions registered through the real hook, as another plugin would."""

    @hookimpl
    def robomail_register_actions(self):
        conn = [
            Param(name="connection", default="T"),
            Param(name="kind", default="imap"),
            Param(name="password", default="", secret=True),
        ]
        return [
            ActionSpec(id="testplug.open", title="Test Open", category="T", run=_open, params=conn),
            ActionSpec(id="testplug.use", title="Test Use", category="T", run=_use, params=conn),
            ActionSpec(id="testplug.fail", title="Test Fail", category="T", run=_fail, params=conn),
            ActionSpec(id="testplug.crash", title="Test Crash", category="T", run=_crash),
            ActionSpec(
                id="testplug.count",
                title="Test Count",
                category="T",
                loop=True,
                run=_count,
                params=[
                    Param(name="n", type=ParamType.INT, required=True),
                    Param(name="save_to", default="Msg", sets_variable=True),
                ],
            ),
        ]


@pytest.fixture
def thost(robomail_home):
    FakeSession.closed = []
    return Host.load(extra_plugins=(TestPlugin(),))


def run(host, text, **variables):
    return host.run_text(text, variables or None)


def test_variables_expand_to_full_depth_and_unknown_stay(thost):
    r = run(
        thost,
        """
name: vars
variables: {A: "{B}", B: "{C}", C: deep}
steps:
  - action: Set Variable
    params: {name: Out, value: "[{A}] [{Unknown}] [{json:Nope.x}]"}
""",
    )
    assert r.ok
    assert r.variables["Out"] == "[deep] [{Unknown}] [{json:Nope.x}]"


def test_json_paths_read_inside_values(thost):
    r = run(
        thost,
        """
name: json
steps:
  - action: Set Variable
    params: {name: Data, value: '{"a": {"b": [10, {"c": "found"}]}, "n": 3}'}
  - action: Set Variable
    params: {name: Out, value: "{json:Data.a.b[1].c} {json:Data.n} {json:Data.a.b[0]} {json:Data.a.zz}"}
""",
    )
    assert r.variables["Out"] == "found 3 10 {json:Data.a.zz}"


def test_local_variables_shadow_global_and_globals_persist(thost):
    r1 = run(
        thost,
        """
name: g
steps:
  - action: Set Variable
    params: {name: Shared, value: global-value, scope: global}
""",
    )
    assert r1.ok
    r2 = run(
        thost,
        """
name: l
steps:
  - action: Set Variable
    params: {name: Before, value: "{Shared}"}
  - action: Set Variable
    params: {name: Shared, value: local-value}
  - action: Set Variable
    params: {name: After, value: "{Shared}"}
""",
    )
    assert r2.variables["Before"] == "global-value"
    assert r2.variables["After"] == "local-value"
    assert thost.global_vars["Shared"] == "global-value"


def test_nested_loops_run_bodies_per_item_and_close_iterators(thost):
    r = run(
        thost,
        """
name: nested
variables: {Seen: ""}
steps:
  - action: For Each
    params: {items: '["x", "y"]', save_to: Outer}
    do:
      - action: Test Count
        params: {n: 2, save_to: Msg}
        do:
          - action: Set Variable
            params: {name: Seen, value: "{Seen}{Outer}{json:Msg.n}{json:Msg.tags[1]},"}
""",
    )
    assert r.ok, r.error
    assert r.variables["Seen"] == "x1t1,x2t2,y1t1,y2t2,"
    assert r.variables["LoopClosed"] is True


def test_loop_with_no_items_skips_body(thost):
    r = run(
        thost,
        """
name: empty
steps:
  - action: For Each
    params: {items: []}
    do:
      - action: Set Variable
        params: {name: Ran, value: "yes"}
""",
    )
    assert r.ok and "Ran" not in r.variables


def test_on_error_stop_stops_and_reports_step_code_and_reply(thost):
    r = run(
        thost,
        """
name: stop
steps:
  - action: Test Fail
  - action: Set Variable
    params: {name: After, value: "ran"}
""",
    )
    assert not r.ok
    assert (r.error.code, r.error.step, r.error.server_reply) == (
        "login_failed",
        1,
        "NO [AUTH] bad ",
    )
    assert "After" not in r.variables
    assert any("Test Fail failed [login_failed]" in line for line in r.log)


def test_on_error_continue_sets_is_error_and_last_error(thost):
    r = run(
        thost,
        """
name: cont
on_error: continue
steps:
  - action: Test Crash
  - action: Set Variable
    params: {name: Seen, value: "{IsError} {LastErrorCode} {LastErrorStep}"}
  - action: Set Variable
    params: {name: Seen2, value: "{IsError}"}
""",
    )
    assert r.ok
    assert r.variables["Seen"] == "True internal_error 1"
    assert r.variables["Seen2"] == "False"
    assert r.variables["LastErrorDescription"] == "RuntimeError: boom"


def test_on_error_continue_inside_a_loop_goes_on_with_the_next_item(thost):
    r = run(
        thost,
        """
name: loopcont
on_error: continue
variables: {Count: ""}
steps:
  - action: For Each
    params: {items: [a, b, c]}
    do:
      - action: Test Crash
      - action: Set Variable
        params: {name: Count, value: "{Count}{Item}"}
""",
    )
    assert r.ok and r.variables["Count"] == "abc"


def test_on_error_handler_task_runs_with_the_error(thost, tmp_path):
    (tmp_path / "handler.yaml").write_text("""
name: handler
steps:
  - action: Log Message
    params: {message: "handled {LastErrorCode} at {LastErrorStep}"}
""")
    main = tmp_path / "main.yaml"
    main.write_text("""
name: main
on_error: handler.yaml
steps:
  - action: Set Variable
    params: {name: X, value: "1"}
  - action: Test Fail
""")
    r = thost.run_file(main)
    assert not r.ok
    assert r.handled_by and r.handled_by.endswith("handler.yaml")
    assert any("handled login_failed at 2" in line for line in r.log)


def test_connections_are_closed_at_the_end_even_after_an_error(thost):
    r = run(
        thost,
        """
name: conns
steps:
  - action: Test Open
    params: {connection: A}
  - action: Test Open
    params: {connection: B, kind: pop3}
  - action: Test Crash
""",
    )
    assert not r.ok
    assert sorted(FakeSession.closed) == ["A", "B"]


@pytest.mark.parametrize(
    ("steps", "code"),
    [
        ("- {action: Test Use, params: {connection: Nope}}", "connection_not_open"),
        (
            "- {action: Test Open, params: {connection: C}}\n  - {action: Test Open, params: {connection: C}}",
            "connection_in_use",
        ),
        (
            "- {action: Test Open, params: {connection: P, kind: pop3}}\n  - {action: Test Use, params: {connection: P}}",
            "wrong_connection_kind",
        ),
    ],
)
def test_connection_misuse_is_a_clear_error(thost, steps, code):
    r = run(thost, f"name: c\nsteps:\n  {steps}\n")
    assert not r.ok and r.error.code == code
    assert "connection" in r.error.description


def test_secrets_are_masked_in_log_errors_and_variables(thost, tmp_path):
    r = run(
        thost,
        f"""
name: secrets
on_error: continue
variables: {{MyPassword: "{CANARY}"}}
steps:
  - action: Test Open
    params: {{password: "{{MyPassword}}"}}
  - action: Test Fail
    params: {{password: "{CANARY}"}}
  - action: Log Message
    params: {{message: "it is {{MyPassword}}"}}
""",
    )
    everything = "\n".join(r.log) + json.dumps(r.variables) + repr(r.error)
    assert CANARY not in everything
    assert "***" in everything
    assert r.variables["MyPassword"] == "***"


def test_vars_out_masks_secrets(thost, tmp_path):
    from click.testing import CliRunner

    from hostsim.cli.main import main

    task = tmp_path / "t.yaml"
    task.write_text("""
name: out
steps:
  - action: Set Variable
    params: {name: Plain, value: "{ApiToken}-x"}
""")
    out = tmp_path / "vars.json"
    result = CliRunner().invoke(
        main, ["run", str(task), "--var", f"ApiToken={CANARY}", "--vars-out", str(out)]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["ApiToken"] == "***" and saved["Plain"] == "***-x"
    assert CANARY not in result.output


BAD_TASKS = [
    ("steps: [{action: No Such Action}]", "unknown action"),
    (
        "name: x\nsteps:\n  - action: Set Variable\n    params: {name: a, bogus: 1}",
        "unknown parameter(s) bogus",
    ),
    ("name: x\nsteps:\n  - action: Set Variable\n    params: {value: a}", "'name' is required"),
    ("name: x\nsteps:\n  - action: Test Count\n    params: {n: many}", "expected a whole number"),
    (
        "name: x\nsteps:\n  - action: Log Message\n    params: {message: a, level: loud}",
        "expected one of",
    ),
    (
        "name: x\nsteps:\n  - action: Log Message\n    params: {message: a}\n    do: []",
        "only loop actions",
    ),
    ("name: x\nsteps: [1, 2]", "step 1: each step needs 'action:'"),
    ("name: x\nstepz: []", "unknown keys stepz"),
    ("name: x\non_error: maybe\nsteps: []", "'on_error' must be"),
    ("name: [unclosed", "not valid YAML"),
    ("- just a list", "a task file is a mapping"),
]


@pytest.mark.parametrize(("text", "message"), BAD_TASKS)
def test_bad_task_files_are_clear_errors(thost, text, message):
    with pytest.raises(TaskError) as info:
        thost.run_text(text)
    assert message in str(info.value)


def test_bad_task_error_names_the_nested_step(thost):
    with pytest.raises(TaskError, match=r"step 3 \(Set Variable\): unknown parameter"):
        thost.run_text("""
name: x
steps:
  - action: For Each
    params: {items: [a]}
    do:
      - action: Log Message
        params: {message: ok}
      - action: Set Variable
        params: {name: a, nope: 1}
""")


def test_typed_value_from_a_variable_is_checked_at_run_time(thost):
    r = run(thost, "name: x\nsteps:\n  - action: Test Count\n    params: {n: '{N}'}\n", N="abc")
    assert not r.ok and r.error.code == "invalid_parameter"
    assert "expected a whole number" in r.error.description


def test_task_state_survives_runs(thost):
    """only_new and skip_seen build on this: state saved by one run is read by the next."""
    from hostsim.runtime.runner import RunContext
    from hostsim.runtime.variables import Masker, Variables

    def make(task_name):
        return RunContext(
            task_name=task_name,
            variables=Variables(),
            masker=Masker(),
            state_dir=thost.home / "state",
            emit=lambda line: None,
            interactive=False,
        )

    make("s").save_state("k", {"seen": [1, 2]})
    assert make("s").load_state("k") == {"seen": [1, 2]}
    assert make("s").load_state("other") == {}
    assert make("another task").load_state("k") == {}


def test_step_log_names_each_step_once(thost):
    r = run(thost, """
name: log
steps:
  - action: Set Variable
    params: {name: A, value: "1"}
  - action: Log Message
    params: {message: "hello {A}"}
""")
    assert r.log[1] == "[step 1] Set Variable (name=A, value=1)"
    assert [line for line in r.log if "hello" in line] == ["[step 2] hello 1"]


class _Stream:
    """An output stream that records what reached it at each flush (terminal or pipe)."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.buffer = ""
        self.flushed: list[str] = []

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.buffer += text
        return len(text)

    def flush(self) -> None:
        self.flushed.append(self.buffer)


LOOP_LOG = """
name: log loop
steps:
  - action: For Each
    params: {items: "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", save_to: N}
    do:
      - {action: Log Message, params: {message: "line {N}"}}
"""


@pytest.mark.parametrize("tty", [True, False])
def test_the_step_log_reaches_a_terminal_line_by_line_and_a_pipe_in_bursts(tty):
    host = Host.load()
    stream = _Stream(tty)
    task = load_task_text(LOOP_LOG, host.registry)
    started = time.monotonic()
    result = host.runner(stream).run(task)
    took = time.monotonic() - started
    assert result.ok
    written = stream.buffer.splitlines()
    assert written == result.log and "[step 2] line 10" in written
    assert stream.flushed[-1] == stream.buffer  # everything is out when the task ends
    if tty:  # a person watching sees each line as it is logged
        assert len(stream.flushed) >= len(written)
    else:  # into a pipe: at most one write per 0.2 s and one at the end, not one per line
        assert len(stream.flushed) <= 1 + int(took / StepLog.FLUSH_EVERY) + 1 < len(written)
