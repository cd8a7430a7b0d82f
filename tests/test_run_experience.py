"""What a person sees while a task runs: quiet loop bodies, i/N progress on a terminal only, how
a task ends (errors counted, exit status) and Ctrl-C (exit 130, where it stopped, variables)."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import textwrap
import time

from hostsim.runtime.core_actions import for_each
from robomail_plugin.host_kit import BasicActionContext

LOOP_TASK = textwrap.dedent("""
    name: loop
    steps:
      - action: For Each
        params: {items: [a, b, c, d, e], save_to: Item}
        do:
          - action: Set Variable
            params: {name: Last, value: "{Item}"}
          - action: Log Message
            params: {message: "item {Item}"}
""")


def test_a_loop_body_logs_its_steps_on_the_first_pass_only(host):
    result = host.run_text(LOOP_TASK)
    assert result.ok
    log = "\n".join(result.log)
    assert log.count("Set Variable (") == 1
    assert [line for line in result.log if "item " in line][-1].endswith("item e")
    assert sum("item " in line for line in result.log) == 5  # Log Message is the user's output
    assert "For Each: 5 iteration(s) (its steps were logged for the first" in log


def test_verbose_logs_every_pass(host):
    result = host.run_text(LOOP_TASK, verbose=True)
    assert "\n".join(result.log).count("Set Variable (") == 5


def test_a_loop_action_reports_its_total_to_the_hosts_context():
    ctx = BasicActionContext()
    items = list(for_each(ctx, {"items": ["x", "y", "z"], "save_to": "I", "save_index_to": ""}))
    assert len(items) == 3 and ctx.last_progress == (0, 3)


def run_cli(tmp_path, text: str, *args: str, **kw):
    task = tmp_path / "task.yaml"
    task.write_text(text)
    return subprocess.run([sys.executable, "-m", "hostsim.cli.main", "run", str(task), *args],
                          capture_output=True, text=True, timeout=120, **kw)


def test_progress_is_drawn_on_a_terminal_and_not_into_a_pipe(tmp_path):
    piped = run_cli(tmp_path, LOOP_TASK)
    assert piped.returncode == 0 and "\r" not in piped.stderr + piped.stdout
    task = tmp_path / "task.yaml"
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "hostsim.cli.main", "run", str(task)],
                            stdin=child, stdout=child, stderr=child)
    os.close(child)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=60)
    os.close(main)
    assert proc.returncode == 0
    assert re.search(rb"\r  For Each: \d/5", seen)


def test_every_step_failing_under_continue_ends_with_the_count_and_status_3(tmp_path):
    ran = run_cli(tmp_path, textwrap.dedent("""
        name: all fail
        on_error: continue
        steps:
          - action: Parse Email
            params: {file: /nonexistent/a.eml}
          - action: Parse Email
            params: {file: /nonexistent/b.eml}
    """))
    assert ran.returncode == 3, ran.stderr
    assert "task 'all fail' finished with 2 error(s)" in ran.stdout
    assert "finished with 2 error(s) (on_error: continue)" in ran.stderr


def test_ctrl_c_exits_130_says_where_and_writes_the_variables_so_far(tmp_path):
    task = tmp_path / "task.yaml"
    thousand = json.dumps(list(range(1000)))
    task.write_text(textwrap.dedent(f"""
        name: long
        steps:
          - action: For Each
            params: {{items: '{thousand}', save_to: Outer}}
            do:
              - action: For Each
                params: {{items: '{thousand}', save_to: Inner}}
                do:
                  - action: Set Variable
                    params: {{name: Last, value: '{{Outer}}-{{Inner}}'}}
    """))
    out = tmp_path / "vars.json"
    proc = subprocess.Popen([sys.executable, "-m", "hostsim.cli.main", "run", str(task),
                             "--vars-out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    # inside the inner loop (most of the time) or between two of its runs
    assert re.search(r"task interrupted at step 1 \(For Each\), iteration \d+ of 1000"
                     r"(, step 2 \(For Each\), iteration \d+ of 1000)?\n", stderr), stderr
    assert "Traceback" not in stderr
    variables = json.loads(out.read_text())
    assert re.fullmatch(r"\d+-\d+", variables["Last"])
