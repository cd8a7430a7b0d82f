"""The README's demo command does what it says: the whole story against the private server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox


def test_hostsim_demo_runs_the_whole_story():
    exe = Path(sys.executable).with_name("hostsim")
    out = subprocess.run([str(exe), "demo"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "Successfully Authenticated. You can now close this tab/window" in text
    assert "Got a Refresh Token for 'Demo Mail'" in text
    assert "over SMTP with OAuth" in text
    assert "| Quarterly report |" in text
    assert "moved it to Invoices" in text
    assert "Invoices now holds 2 message(s)" in text
    assert "attachment report.txt (30 bytes)" in text
    assert "task 'robomail-demo' finished" in text
    # no secret of the demo reaches the terminal: the refresh token and access tokens stay hidden
    assert "refresh_token=" not in text and "Bearer " not in text
