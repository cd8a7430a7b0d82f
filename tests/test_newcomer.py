"""A newcomer's first hour: the Quick start runs here, a missing Dovecot is one clear message, and
stopping the foreground servers leaves nothing behind."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
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


class Foreground:
    """A `hostsim` server command run as a person runs it; its output is read line by line."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [HOSTSIM, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=ENV(),
            cwd=cwd,
        )
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, start: str, timeout: float = 90) -> str:
        """The first line (from here on) that starts with ``start``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if line.startswith(start):
                return line.rstrip("\n")
        raise AssertionError(f"no line starting with {start!r} in:\n{''.join(self.seen)}")

    def stop(self, sig: signal.Signals) -> int:
        """Send ``sig`` and wait for the exit code; everything printed is in ``seen``."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        while (line := self._lines.get(timeout=10)) is not None:
            self.seen.append(line)
        return code

    def text(self) -> str:
        return "".join(self.seen)


def ENV() -> dict[str, str]:  # noqa: N802 - reads like the constant it stands for
    """This test's environment (its own ROBOMAIL_HOME, ROBOMAIL_KEY, HOSTSIM_HOME from conftest),
    with the venv's commands on PATH as after `. .venv/bin/activate`."""
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture
def started():
    """Starts `hostsim ...` servers; kills by PID any still running when the test ends."""
    servers: list[Foreground] = []

    def start(*args: str, cwd: Path) -> Foreground:
        servers.append(Foreground(*args, cwd=cwd))
        return servers[-1]

    yield start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=30)
        server.reader.join(timeout=30)


def hostsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOSTSIM, *args], capture_output=True, text=True, env=ENV(), cwd=cwd, timeout=120
    )


def sandbox_folder(server: Foreground) -> Path:
    line = server.wait_for("Mail sandbox on ")
    return Path(re.search(r"\(folder (\S+)\)", line).group(1))


@pytest.mark.sandbox
def test_quick_start_runs_the_printed_command_and_sigterm_leaves_nothing(started, tmp_path):
    server = started("sandbox", cwd=tmp_path)
    folder = sandbox_folder(server)
    command = server.wait_for("  hostsim run ").strip()
    server.wait_for("Press Ctrl-C to stop.")
    secrets_file = folder / "credentials.json"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    client_secret = json.loads(secrets_file.read_text())["clients"]["demo-client"]

    listed = hostsim("oauth", "list", cwd=tmp_path)
    assert "sandbox  alice@example.test" in listed.stdout
    assert "refresh token: set" in listed.stdout

    # terminal 2: the printed command, as printed, from another folder
    run = subprocess.run(
        shlex.split(command), capture_output=True, text=True, env=ENV(), cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "auth=oauth, oauth_record=sandbox" in run.stdout
    assert "UID 1: Invoice 2026-114 from billing@shop.example" in run.stdout
    assert "moved 'Spring offers' to Newsletters" in run.stdout
    assert "task 'sort unread mail' finished" in run.stdout

    assert server.stop(signal.SIGTERM) == 0, server.text()
    assert not folder.exists()
    assert "Sandbox stopped: removed" in server.text()
    assert "sandbox" not in hostsim("oauth", "list", cwd=tmp_path).stdout
    for text in (server.text(), run.stdout, run.stderr, listed.stdout):
        assert client_secret not in text


@pytest.mark.sandbox
def test_a_record_left_by_a_killed_sandbox_is_replaced_and_ctrl_c_cleans_up(started, tmp_path):
    first = started("sandbox", cwd=tmp_path)
    first_folder = sandbox_folder(first)
    first.wait_for("Press Ctrl-C to stop.")
    first.proc.kill()  # no clean stop: the record stays behind
    first.proc.wait(timeout=30)
    shutil.rmtree(first_folder, ignore_errors=True)  # the kill left it; this test started it

    second = started("sandbox", cwd=tmp_path)
    folder = sandbox_folder(second)
    second.wait_for("Replaced the OAuth record 'sandbox' a sandbox that was killed left behind.")
    second.wait_for("Press Ctrl-C to stop.")
    assert second.stop(signal.SIGINT) == 0, second.text()
    assert not folder.exists()
    assert "sandbox" not in hostsim("oauth", "list", cwd=tmp_path).stdout


@pytest.mark.sandbox
def test_a_record_of_that_name_not_made_by_a_sandbox_is_kept(started, tmp_path):
    made = hostsim(
        "oauth", "add", "sandbox", "--account", "me@example.com", "--client-id", "mine",
        "--client-secret", "", "--provider", "google", cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    out = hostsim("sandbox", cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "hostsim sandbox --record NAME" in out.stderr
    assert "Mail sandbox on" not in out.stdout  # said before anything started
    assert "sandbox  me@example.com" in hostsim("oauth", "list", cwd=tmp_path).stdout


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"]
)
def test_fake_provider_stops_cleanly_and_removes_its_credentials_folder(started, tmp_path, sig):
    server = started("fake-provider", cwd=tmp_path)
    line = server.wait_for("  confidential client: ")
    secrets_file = Path(re.search(r"secret in (\S+),", line).group(1))
    server.wait_for("Press Ctrl-C to stop.")
    assert secrets_file.exists()
    assert server.stop(sig) == 0, server.text()
    assert not secrets_file.parent.exists()
