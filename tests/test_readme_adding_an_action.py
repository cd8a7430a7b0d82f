"""The README's "Adding an action" steps, followed as written, give a working action.

The test copies the plugin into a temporary folder, adds the README's two code blocks where the
README says, and runs a host on the copy (it comes first on PYTHONPATH): the new action must be
listed with its parameters and copy a message on the private Dovecot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from imap_helpers import client, open_step
from mail_fixtures import make_message

ROOT = Path(__file__).resolve().parents[1]


def _section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("### Adding an action")
    end = min(i for i in (text.find("\n## ", start), text.find("\n### ", start + 1), len(text))
              if i != -1)
    return text[start:end]


def _code_blocks(section: str) -> list[str]:
    """The README's python blocks, dedented from the list they sit in."""
    blocks = re.findall(r"\n( *)```python\n(.*?)\n *```", section, re.S)
    return ["\n".join(line[len(indent):] for line in body.splitlines()) for indent, body in blocks]


def _plugin_with_the_readme_steps(tmp_path: Path) -> Path:
    section = _section()
    declaration, implementation = _code_blocks(section)
    assert "robomail_plugin/imap/actions.py" in section.split("```python")[0]
    copy = tmp_path / "src"
    shutil.copytree(
        ROOT / "robomail_plugin",
        copy / "robomail_plugin",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for module, block in (("actions", declaration), ("commands", implementation)):
        path = copy / "robomail_plugin" / "imap" / f"{module}.py"
        path.write_text(path.read_text(encoding="utf-8") + "\n\n" + block + "\n", encoding="utf-8")
    return copy


PROBE = """
import json, sys
from hostsim.runtime.host import Host

host = Host.load()
spec = host.registry.actions.get("robomail.imap_copy_message")
result = host.run_text(sys.argv[1])
print(json.dumps({
    "plugin": __import__("robomail_plugin").__file__,
    "params": [p.name for p in spec.params] if spec else None,
    "errors": [e.code for e in spec.errors] if spec else None,
    "ok": result.ok,
    "error": str(result.error),
    "log": result.log,
}))
"""


def test_the_readme_steps_add_a_working_action(tmp_path, sandbox, mail_user):
    source = _plugin_with_the_readme_steps(tmp_path)
    sandbox.deliver(mail_user.username, make_message("copy me"))
    with client(sandbox, mail_user) as imap:
        imap.create_folder("Kept")
        (uid,) = imap.search(["SUBJECT", "copy me"])
    task = yaml.safe_dump({
        "name": "readme copy",
        "steps": [
            open_step(sandbox, mail_user),
            {"action": "IMAP Copy Message", "params": {"uid": str(uid), "to_folder": "Kept"}},
            {"action": "IMAP Close"},
        ],
    })
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(source), os.environ.get("PYTHONPATH", "")]),
        "ROBOMAIL_HOME": str(tmp_path / "home"),
        "HOSTSIM_PLUGIN_CACHE": "0",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, task], capture_output=True, text=True, env=env, timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["plugin"].startswith(str(source))  # the copy with the README's steps ran
    assert result["params"] == ["connection", "uid", "to_folder"]
    assert "connection_not_open" in result["errors"]
    assert result["ok"], (result["error"], result["log"])
    assert any("Copied UID" in line for line in result["log"])
    with client(sandbox, mail_user, folder="Kept") as imap:
        copied = imap.fetch(imap.search(["ALL"]), ["ENVELOPE"])
        assert [m[b"ENVELOPE"].subject for m in copied.values()] == [b"copy me"]
    with client(sandbox, mail_user) as imap:  # a copy: the original stays
        assert imap.search(["SUBJECT", "copy me"]) == [uid]
