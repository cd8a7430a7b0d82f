"""Start-up stays light: listing what the plugins offer loads no mail, crypto or HTTP library.

`hostsim actions` (or a host's settings screen) imports the host, loads robomail through its entry
point and builds every declaration; those libraries are needed only when an action or an editor
command runs, so they must not be imported by then. A fresh interpreter is the only honest place
to look: the test process itself has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

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

PROBE = f"""
import json, sys
import hostsim.cli
from hostsim.host import Host

registry = Host.load().registry
print(json.dumps({{
    "actions": sorted(registry.actions),
    "editors": sorted(registry.editors),
    "loaded": [m for m in {LAZY!r} if m in sys.modules],
}}))
"""


def test_declarations_load_no_mail_crypto_or_http_library() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
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

