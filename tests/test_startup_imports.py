"""Start-up stays light: listing what the plugins offer loads no mail, crypto or HTTP library.

`hostsim actions` (or a host's settings screen) imports the host, loads robomail through its entry
point and builds every declaration; those libraries are needed only when an action or an editor
command runs, so they must not be imported by then. A fresh interpreter is the only honest place
to look: the test process itself has imported everything already. The same goes for robomail's
own implementation modules: declarations come from the light ``*_actions`` / ``editor_spec``
modules, and each action imports its implementation the first time it runs (``lazy.LazyRun``).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

from robomail_plugin.declare import BoundRun
from robomail_plugin.lazy import LazyRun
from robomail_plugin.plugin import RobomailPlugin
from robomail_plugin.services import Services

#: Libraries only running an action or an editor command needs.
LAZY = (
    "requests",
    "requests_oauthlib",
    "oauthlib",
    "urllib3",
    "cryptography",
    "imapclient",
    "imaplib",
    "smtplib",
    "poplib",
    "ssl",
)

#: robomail's own modules that do the work: imported when an action or editor command first runs.
IMPLEMENTATION = (
    "robomail_plugin.imap.commands",
    "robomail_plugin.check.commands",
    "robomail_plugin.pop3.commands",
    "robomail_plugin.smtp.commands",
    "robomail_plugin.parse.commands",
    "robomail_plugin.transport.connect",
    "robomail_plugin.transport.sasl",
    "robomail_plugin.message.conditions",
    "robomail_plugin.message.files",
    "robomail_plugin.message.info",
    "robomail_plugin.message.html_text",
    "robomail_plugin.imap.fetch",
    "robomail_plugin.imap.search",
    "robomail_plugin.imap.session",
    "robomail_plugin.trigger.imap",
    "robomail_plugin.trigger.pop3",
    "robomail_plugin.trigger.state",
    "robomail_plugin.credentials.editor",
    "robomail_plugin.credentials.records",
)

PROBE = f"""
import json, sys
import hostsim.cli.main
from hostsim.runtime.host import Host
from hostsim.cli.manifest import own_registrations

registry = Host.load().registry
print(json.dumps({{
    "actions": sorted(registry.actions),
    "editors": sorted(own_registrations(registry).editors),  # another plugin may add its own
    "triggers": sorted(registry.triggers),
    "loaded": [m for m in {LAZY!r} if m in sys.modules],
    "implementation": [m for m in {IMPLEMENTATION!r} if m in sys.modules],
    "built": sorted(
        cls.__name__
        for module in ("imap", "pop3", "smtp", "parse", "check", "trigger")
        for cls in vars(sys.modules[f"robomail_plugin.{{module}}.actions"]).values()
        if isinstance(cls, type) and "__attrs_attrs__" in vars(cls)
        and cls.__module__.startswith("robomail_plugin")
        and any(b.__name__ == "Parameters" for b in cls.__mro__)
    ),
}}))
"""


def _probe(code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_declarations_load_no_mail_crypto_or_http_library() -> None:
    result = _probe(PROBE)
    # the registry really holds robomail's declarations (the plugin was not blocked or broken)
    assert {
        "robomail.imap_open",
        "robomail.imap_mail_loop",
        "robomail.pop3_mail_loop",
        "robomail.smtp_send_email",
        "robomail.parse_email",
    } <= set(result["actions"])
    assert result["editors"] == ["oauth"]
    assert {"robomail.email_arrived_imap", "robomail.email_arrived_pop3"} <= set(result["triggers"])
    assert result["loaded"] == []
    assert result["implementation"] == []
    # the parameter classes are read as written; attrs builds each when its action first runs
    assert result["built"] == []


PARSE_TASK = """
name: lazy
steps:
  - action: Parse Email
    params: {source: text, text: "{Raw}", save_to: Msg, save_text_to: Body}
"""
RAW = "Subject: Hello lazy\r\nFrom: Ann <ann@example.com>\r\n\r\nBody text\r\n"
PARSE_MODULES = ("robomail_plugin.parse.commands", "robomail_plugin.message.info")

PARSE_PROBE = f"""
import json, sys
from hostsim.runtime.host import Host

host = Host.load()
before = [m for m in {PARSE_MODULES!r} if m in sys.modules]
result = host.run_text({PARSE_TASK!r}, {{"Raw": {RAW!r}}})
print(json.dumps({{
    "before": before,
    "after": [m for m in {PARSE_MODULES!r} if m in sys.modules],
    "ok": result.ok,
    "error": str(result.error),
    "msg": result.variables.get("Msg"),
    "body": result.variables.get("Body"),
    "run": repr(host.registry.actions["robomail.parse_email"].run),
}}))
"""


def test_an_action_imports_and_runs_its_implementation_on_first_use() -> None:
    result = _probe(PARSE_PROBE)
    assert result["before"] == []
    assert result["ok"], result["error"]
    assert result["after"] == list(PARSE_MODULES)
    msg = result["msg"] if isinstance(result["msg"], dict) else json.loads(result["msg"])
    assert msg["subject"] == "Hello lazy"
    assert msg["from_address"] == "ann@example.com"
    assert result["body"].strip() == "Body text"
    assert result["run"] == (
        "run(Parse Email: lazy_run(robomail_plugin.parse.commands.run_parse_email))"
    )


def test_every_lazy_run_names_a_function_that_takes_its_arguments() -> None:
    """A misspelt module or function name would only fail when the action first runs."""
    plugin = RobomailPlugin(Services())
    runs: list[tuple[str, LazyRun, tuple[str, ...]]] = []
    for spec in plugin.robomail_register_actions():
        assert isinstance(spec.run, BoundRun), spec.id
        action = spec.run.action
        args = ("services", "ctx", "params") if action.uses_services else ("ctx", "params")
        runs.append((spec.id, action.run, args))  # type: ignore[arg-type]
    runs += [
        (f"{e.record_type}.{c.id}", c.run, ("ctx", "params"))  # type: ignore[misc]
        for e in plugin.robomail_register_credential_editors()
        for c in e.commands
    ]
    assert len(runs) > 20
    for name, run, args in runs:
        assert isinstance(run, LazyRun), name
        target = run.resolve()
        assert callable(target), name
        inspect.signature(target).bind(*run.args, *args)  # raises TypeError if not
        for method in (a for a in run.args if isinstance(a, LazyRun)):  # an editor's method
            inspect.signature(method.resolve()).bind("editor", "ctx", "params")


# --- `hostsim run` without click -------------------------------------------------------------

RUN_PROBE = """
import json, sys
sys.argv = ["hostsim", "run", *{args!r}]
from hostsim.cli.console import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "click": "click" in sys.modules}}), file=sys.stderr)
"""

ONE_STEP = "name: one\nsteps:\n  - action: Log Message\n    params: {message: 'hi {Who}'}\n"
FAILING = (
    "name: failing\non_error: {mode}\nsteps:\n"
    "  - action: IMAP Folder Info\n    params: {{connection: Nowhere}}\n"
    "  - action: Log Message\n    params: {{message: after}}\n"
)


def _hostsim(args: list[str], *, through_click: bool = False) -> subprocess.CompletedProcess:
    """`hostsim <args>` as the console script runs it, or straight through the click command."""
    code = (
        "import sys; from hostsim.cli.main import main; sys.argv = ['hostsim', *sys.argv[1:]]; main()"
        if through_click
        else "import sys; from hostsim.cli.console import main; sys.argv[0] = 'hostsim'; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_one_step_run_does_not_import_click(tmp_path) -> None:
    task = tmp_path / "one.yaml"
    task.write_text(ONE_STEP)
    proc = subprocess.run(
        [sys.executable, "-c", RUN_PROBE.format(args=[str(task), "--var", "Who=you"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "[step 1] hi you" in proc.stdout
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == {"code": 0, "click": False}


def test_the_quick_run_says_and_exits_as_the_click_command_does(tmp_path) -> None:
    (tmp_path / "one.yaml").write_text(ONE_STEP)
    (tmp_path / "stop.yaml").write_text(FAILING.format(mode="stop"))
    (tmp_path / "continue.yaml").write_text(FAILING.format(mode="continue"))
    (tmp_path / "bad.yaml").write_text("name: bad\nsteps:\n  - action: No Such Action\n")
    cases = [
        (["one.yaml", "--var=Who=me", "--vars-out", "{out}"], 0),
        (["stop.yaml", "-v"], 1),
        (["continue.yaml", "--vars-out={out}"], 3),
        (["bad.yaml"], 1),
        (["missing.yaml"], 1),
        (["one.yaml", "--var", "no-equals-sign"], 2),  # handed to click: its usage error
        (["--help"], 0),
        (["one.yaml", "--bogus"], 2),
    ]
    for args, status in cases:
        outcome = []
        for through_click in (False, True):
            out = tmp_path / f"vars-{through_click}.json"
            argv = ["run", *(a.replace("{out}", str(out)) for a in args)]
            argv = [str(tmp_path / a) if a.endswith(".yaml") else a for a in argv]
            proc = _hostsim(argv, through_click=through_click)
            written = json.loads(out.read_text()) if out.exists() else None
            out.unlink(missing_ok=True)
            outcome.append((proc.returncode, proc.stdout, proc.stderr, written))
        assert outcome[0] == outcome[1], args
        assert outcome[0][0] == status, (args, outcome[0])
