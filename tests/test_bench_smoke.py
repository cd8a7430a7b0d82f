"""The benchmark machinery runs end to end at a tiny size and prints every figure of issue 6.

Not a timed test: it checks that each figure line carries the plugin's number, the baseline, the
ratio and the target, and that each target gets a met / NOT met line. The figures themselves
are for ``python -m bench`` (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox  # bench/ starts its own Dovecot

ROOT = Path(__file__).resolve().parent.parent

FIGURES = {
    "IMAP Mail Loop, 20 messages, headers only": "ratio <= 1.5",
    "naive loop, 20 messages, one UID FETCH per message": "reported",
    "IMAP Mail Loop with bodies, 10 messages of 100 KB: peak RSS growth": "growth < 50 MB",
    "POP3 Mail Loop, 10 messages, headers": "ratio <= 1.5",
    "SMTP Send Email, 3 messages, one action each": "ratio <= 1.3",
    "5 OAuth logins (IMAP Open + Close) in one process: token requests": "once per token",
    "OAuth login with a cached token (IMAP Open + Close)": "ratio <= 1.2",
    "OAuth login with a cached token, the server's token check taken out": "ratio <= 1.2",
    "Parse Email over 12 varied messages": "ratio <= 1.5",
    "`hostsim actions` start-up": "ratio <= 1.5",
    "Reading a record (store.get) from the PostgreSQL store": "ratio <= 2",
    "8 hosts x 4 records x 5 access-token asks, rotation on, 2 s tokens: token-endpoint refreshes": "ratio <= 1",
    "8 hosts x 4 records x 5 access-token asks, rotation on, 2 s tokens: lost rotations": "0 lost",
    "8 hosts x 4 records x 5 access-token asks, rotation on, 2 s tokens: failed asks": "0 failed",
    "8 hosts, a refreshing host SIGKILLed 2 times: committed rotations lost": "0 lost",
    "commands per message, Mail Loop + Move Message, 10 messages": "<= 1.05 per message",
    "commands per message, Mail Loop + Set Message Flags, 10 messages": "<= 1.05 per message",
    "commands per message, Mail Loop + Download Message, 10 messages": "<= 1.05 per message",
    "Mail Loop + Move Message, 4 messages, 20 ms each way": "ratio <= 1.1",
    "Mail Loop + Set Message Flags, 4 messages, 20 ms each way": "ratio <= 1.1",
    "Mail Loop + Download Message, 4 messages, 20 ms each way": "ratio <= 1.1",
    "bulk form: Mail Loop uids_only + one Move Message, 4 messages, 20 ms each way": "ratio <= 1.2",
    "bulk form: Mail Loop uids_only + one Set Message Flags, 4 messages, 20 ms each way": (
        "ratio <= 1.2"
    ),
    "Mail Loop + Download Message, 10 messages of 100 KB": "ratio <= 1.5",
    "IMAP Mail Loop over 20 Gmail-like headers (3-6 KB, Received/DKIM/ARC)": "reported",
    "`hostsim run` of a one-step task, start to exit": "ratio <= 1.5",
    "Email Arrived (IMAP) with IDLE, 6 messages: latency p95, SMTP 250 to task start": (
        "p95 < 0.5 s"
    ),
    "Email Arrived (IMAP) polling every 1 s, 6 messages: latency p95": "reported",
    "Email Arrived (IMAP) soak, 24 messages, server restarted 1x, watcher SIGKILLed 1x: missed "
    "events": "0 missed",
    "Email Arrived (IMAP) soak, 24 messages, server restarted 1x, watcher SIGKILLed 1x: "
    "duplicated events": "<= 1 per kill",
    "hostsim watch of 3 mailboxes (IDLE) in one process: RSS": "reported",
}
if find_spec("imap_tools") is not None:  # the dev extra brings it; without it a note says so
    FIGURES["IMAP Mail Loop over 20 Gmail-like headers vs imap-tools"] = "reported"
LINE = re.compile(
    r"^(?P<title>.+?): plugin (?P<value>[\d.]+)[^|]*\| baseline (?P<baseline>[\d.]+)[^|]*\(.+\) "
    r"\| ratio (?P<ratio>[\d.]+) \| target (?P<target>.+)$"
)


def test_bench_prints_every_figure_with_baseline_ratio_and_target(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBOMAIL_", "HOSTSIM_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--size", "tiny"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "robomail benchmarks (tiny size) on " in out

    lines = {m["title"]: m for m in map(LINE.match, out.splitlines()) if m}
    for title, target in FIGURES.items():
        assert title in lines, f"no figure line for {title!r} in:\n{out}"
        m = lines[title]
        assert target in m["target"]
        ratio = float(m["value"]) / float(m["baseline"])
        assert abs(ratio - float(m["ratio"])) <= 0.02 + 0.1 * ratio, m.group(0)

    verdicts = out.split("\ntargets (", 1)[1].splitlines()[1:]
    with_target = [t for t, target in FIGURES.items() if not target.startswith("reported")]
    assert len(verdicts) == len(with_target), out
    for title in with_target:
        assert any(re.match(rf"^(met|NOT met): {re.escape(title)} \(", v) for v in verdicts), (
            f"no met / NOT met line for {title!r}:\n{out}"
        )
    assert "measured: `hostsim run <task>`" in out  # the loop figure says how it was measured
