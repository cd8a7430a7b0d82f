"""The checks that keep the code as the README says it is: ruff (style, security lint) and mypy
(strict on the plugin). Run in the suite so CI fails when one of them does."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing_and_functions_stay_simple():
    done = run(str(TOOLS / "ruff"), "check", "robomail_plugin", "hostsim", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "C90" in lint["select"] and lint["mccabe"]["max-complexity"] <= 12


def test_mypy_finds_nothing_and_the_plugin_is_strict(tmp_path):
    done = run(str(TOOLS / "mypy"), "--cache-dir", str(tmp_path / "cache"),
               "robomail_plugin", "hostsim")
    assert done.returncode == 0, done.stdout + done.stderr
    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    plugin = next(o for o in overrides if o["module"] == "robomail_plugin.*")
    assert plugin["disallow_untyped_defs"] and plugin["warn_return_any"]
    assert plugin["disallow_any_generics"] and plugin["disallow_untyped_calls"]
