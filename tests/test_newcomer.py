"""A newcomer's first hour: the Quick start runs here, a missing Dovecot is one clear message, and
stopping the foreground servers leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
HOSTSIM = str(BIN / "hostsim")


@pytest.mark.parametrize("command", ["sandbox", "demo"])
def test_without_dovecot_the_install_message_comes_alone(command, tmp_path):
    env = dict(os.environ, PATH="", HOSTSIM_DOVECOT=str(tmp_path / "no-dovecot"))
    out = subprocess.run(
        [HOSTSIM, command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "Traceback" not in text
    assert text.strip().startswith("Error: Dovecot is not installed")
    assert "scripts/install-dovecot" in text
    assert len(text.strip().splitlines()) == 1, text
