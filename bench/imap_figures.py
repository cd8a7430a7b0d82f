"""IMAP figures: the headers loop through ``hostsim run``, the naive loop, memory with bodies.

The loop figure times two fresh processes end to end (start-up, login, fetch, parse, logout):
``hostsim run loop.yaml`` against a raw imaplib script doing one bulk FETCH. Both start a Python
interpreter, so the ratio includes what the host and the plugin cost to load.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from bench.common import HOSTSIM, PYTHON, Bench, Figure, big_message, header_message, run_timed

LOOP_TASK = """\
name: bench-imap-loop
on_error: stop
steps:
  - action: IMAP Open
    params:
      server: "{Server}"
      port: "{Port}"
      security: ssl
      username: "{User}"
      password: "{Password}"
      ca_file: "{CaFile}"
      folder: INBOX
      read_only: true
  - action: IMAP Mail Loop
    params: {save_to: Msg, include_body: %(body)s}
    do: %(do)s
  - action: IMAP Close
"""
#: the loop body: none (the baseline does nothing per message either), or one step that reads
#: the message info, as a real task would
EMPTY_BODY = "[]"
ONE_STEP = '[{action: Set Variable, params: {name: Last, value: "{json:Msg.subject}"}}]'


def _task_with_vars(
    bench: Bench, user: tuple[str, str], *, body: bool, do: str = EMPTY_BODY
) -> str:
    """The loop task with its variables written in (the file is 0600: it holds a password)."""
    variables = {
        "Server": bench.sandbox.host,
        "Port": bench.sandbox.ports["imaps"],
        "CaFile": str(bench.sandbox.ca_file),
        "User": user[0],
        "Password": user[1],
    }
    text = LOOP_TASK % {"body": "true" if body else "false", "do": do}
    head, _, steps = text.partition("on_error")
    return head + "variables: " + json.dumps(variables) + "\non_error" + steps


def loop_figures(bench: Bench, size: dict[str, int], log: Any) -> list[Figure]:
    count = size["imap"]
    user = bench.new_user("imap")
    log(f"seeding {count} messages for the IMAP loop")
    bench.sandbox.seed(user[0], [header_message(n) for n in range(count)])
    task = bench.private_file("imap-loop.yaml", _task_with_vars(bench, user, body=False))
    config = bench.config_file("imap.json", bench.server_config(user, "imaps"))

    probe = [PYTHON, "-m", "bench.probes"]
    hostsim = [HOSTSIM, "run", str(task)]
    # one untimed round each: Dovecot builds its index, the page cache warms
    for cmd in (probe + ["imap-bulk", str(config)], hostsim):
        run_timed(cmd)
    plugin_times, base_times = [], []
    for _ in range(size["repeat"]):  # interleaved, so drift hits both alike
        took, out = run_timed(hostsim)
        plugin_times.append(took)
        took, out_base = run_timed(probe + ["imap-bulk", str(config)])
        base_times.append(took)
    seen = json.loads(out_base)["messages"]
    if seen != count or f"IMAP Mail Loop: {count} iteration(s)" not in out:
        raise RuntimeError(f"the loops did not see {count} messages (baseline saw {seen})")
    plugin, base = statistics.median(plugin_times), statistics.median(base_times)

    naive, _ = run_timed(probe + ["imap-naive", str(config)])
    one_step = bench.private_file(
        "imap-loop-1.yaml", _task_with_vars(bench, user, body=False, do=ONE_STEP)
    )
    with_step, _ = run_timed([HOSTSIM, "run", str(one_step)])
    in_process = _in_process(task)
    client_s, raw_s = _library_share(bench, user, count)
    figures = [
        Figure(
            key="imap_loop",
            title=f"IMAP Mail Loop, {count} messages, headers only",
            value=plugin,
            unit="s",
            baseline=base,
            baseline_label="raw imaplib, one bulk UID FETCH + stdlib header parsing",
            target="ratio <= 1.5",
            limit=1.5,
            how="`hostsim run <task>` (loop body empty) in a subprocess vs the baseline script "
            f"in a subprocess, wall time from start to exit, median of {size['repeat']}",
            notes=(
                f"the same task through Host.run_file in an already loaded host (no process "
                f"start-up): {in_process:.3f} s, ratio {in_process / base:.2f}",
                f"with one Set Variable step in the body reading {{json:Msg.subject}}: "
                f"{with_step:.3f} s, ratio {with_step / base:.2f}",
                f"the IMAP library's share: imapclient fetching and parsing the {count} headers "
                f"as the plugin asks for them (batches of 200) takes "
                f"{client_s:.3f} s; imaplib reading the bulk FETCH without parsing {raw_s:.3f} s",
            ),
        ),
        Figure(
            key="imap_naive",
            title=f"naive loop, {count} messages, one UID FETCH per message",
            value=naive,
            unit="s",
            baseline=base,
            baseline_label="the bulk FETCH baseline",
            target="reported (what batching buys)",
            how="raw imaplib in a subprocess, wall time, one run",
        ),
    ]
    return figures


def _library_share(bench: Bench, user: tuple[str, str], count: int) -> tuple[float, float]:
    """Seconds imapclient takes to fetch + parse what the loop fetches, and imaplib's raw read."""
    import ssl
    import time

    from imapclient import IMAPClient

    from robomail_plugin.imap.fetch import FETCH_BATCH, HEADER_ITEM

    ctx = ssl.create_default_context(cafile=str(bench.sandbox.ca_file))
    client = IMAPClient(bench.sandbox.host, port=bench.sandbox.ports["imaps"], ssl_context=ctx)
    try:
        client.login(*user)
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        items = ["UID", "FLAGS", "RFC822.SIZE", HEADER_ITEM]
        start = time.perf_counter()
        seen = 0
        for at in range(0, len(uids), FETCH_BATCH):
            seen += len(client.fetch(uids[at : at + FETCH_BATCH], items))
        parsed = time.perf_counter() - start
        start = time.perf_counter()
        client._imap.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])")
        raw = time.perf_counter() - start
    finally:
        client.logout()
    if seen != count:
        raise RuntimeError(f"imapclient fetched {seen} messages, not {count}")
    return parsed, raw


def _in_process(task: Any) -> float:
    """Host.run_file of the task in this process, after one untimed run (imports, TLS)."""
    import io
    import time

    from hostsim.runtime.host import Host

    host = Host.load()
    host.run_file(task, out=io.StringIO())
    start = time.perf_counter()
    result = host.run_file(task, out=io.StringIO())
    took = time.perf_counter() - start
    if not result.ok:
        raise RuntimeError(f"the loop task failed: {result.error}")
    return took


def memory_figure(bench: Bench, size: dict[str, int], log: Any) -> Figure:
    count = size["memory"]
    user = bench.new_user("mem")
    log(f"seeding {count} messages of 100 KB for the memory loop")
    for start in range(0, count, 200):
        batch = range(start, min(count, start + 200))
        bench.sandbox.seed(user[0], [big_message(n) for n in batch])
    bench.sandbox.seed(user[0], [big_message(n) for n in range(3)], folder="Warm")
    config = bench.server_config(user, "imaps")
    config["task"] = LOOP_TASK % {"body": "true", "do": ONE_STEP}
    path = bench.config_file("memory.json", config)
    _took, out = run_timed([PYTHON, "-m", "bench.probes", "memory", str(path)])
    result = json.loads(out)
    if f"{count} iteration(s)" not in result["loop"]:
        raise RuntimeError(f"the memory loop did not see {count} messages: {result['loop']}")
    growth = result["after_mb"] - result["before_mb"]
    return Figure(
        key="imap_memory",
        title=f"IMAP Mail Loop with bodies, {count} messages of 100 KB: peak RSS growth",
        value=growth,
        unit="MB",
        baseline=result["before_mb"],
        baseline_label="peak RSS before the loop",
        target="growth < 50 MB",
        limit=50.0,
        on_value=True,
        how="Host.run_text in a fresh subprocess, VmHWM after a warm-up run vs after the loop",
    )
