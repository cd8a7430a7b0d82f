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
    "robomail_plugin.mail.imap",
    "robomail_plugin.mail.check",
    "robomail_plugin.mail.pop3",
    "robomail_plugin.mail.smtp",
    "robomail_plugin.mail.parse",
    "robomail_plugin.mail.connect",
    "robomail_plugin.mail.sasl",
    "robomail_plugin.mail.conditions",
    "robomail_plugin.mail.files",
    "robomail_plugin.mail.message_info",
    "robomail_plugin.mail.html_text",
    "robomail_plugin.mail.imap_fetch",
    "robomail_plugin.mail.imap_search",
    "robomail_plugin.mail.imap_session",
    "robomail_plugin.credentials.editor",
    "robomail_plugin.credentials.records",
)

PROBE = f"""
import json, sys
import hostsim.cli
from hostsim.host import Host
from hostsim.manifest import own_registrations

registry = Host.load().registry
print(json.dumps({{
    "actions": sorted(registry.actions),
    "editors": sorted(own_registrations(registry).editors),  # another plugin may add its own
    "loaded": [m for m in {LAZY!r} if m in sys.modules],
    "implementation": [m for m in {IMPLEMENTATION!r} if m in sys.modules],
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
    assert result["loaded"] == []
    assert result["implementation"] == []


PARSE_TASK = """
name: lazy
steps:
  - action: Parse Email
    params: {source: text, text: "{Raw}", save_to: Msg, save_text_to: Body}
"""
RAW = "Subject: Hello lazy\r\nFrom: Ann <ann@example.com>\r\n\r\nBody text\r\n"
PARSE_MODULES = ("robomail_plugin.mail.parse", "robomail_plugin.mail.message_info")

PARSE_PROBE = f"""
import json, sys
from hostsim.host import Host

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
    assert result["run"] == "lazy_run(robomail_plugin.mail.parse.run_parse_email)"


def test_every_lazy_run_names_a_function_that_takes_its_arguments() -> None:
    """A misspelt module or function name would only fail when the action first runs."""
    plugin = RobomailPlugin(Services())
    runs = [(a.id, a.run) for a in plugin.robomail_register_actions()]
    runs += [
        (f"{e.record_type}.{c.id}", c.run)
        for e in plugin.robomail_register_credential_editors()
        for c in e.commands
    ]
    assert len(runs) > 20
    for name, run in runs:
        assert isinstance(run, LazyRun), name
        target = run.resolve()
        assert callable(target), name
        inspect.signature(target).bind(*run.args, "ctx", "params")  # raises TypeError if not
