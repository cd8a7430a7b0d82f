"""Email Arrived across restarts: of the server (a Sandbox of the test's own, restarted by PID),
of the watcher (``hostsim watch`` SIGKILLed and started again, then stopped with SIGTERM), and the
POP3 trigger, which remembers UIDLs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from mail_fixtures import MailUser, make_message
from trigger_support import Lines, WatchRun, imap_trigger_params, submit, trigger_task, wait_until

from hostsim.devservers.sandbox import Sandbox

HOSTSIM = str(Path(sys.executable).with_name("hostsim"))


def test_server_restart_mid_watch_loses_nothing(host, fake_provider):
    with Sandbox(fake_provider) as box:
        user = MailUser("restart@example.test", "restart-pass-1")
        box.add_user(user.username, user.password)
        params = imap_trigger_params(box, user)
        with WatchRun(host, trigger_task("restarts", params)) as run:
            run.wait_line("with IDLE")
            submit(box, user.username, user.password, make_message("Before", to=user.username))
            run.wait_events(1)
            box.restart_dovecot(down_for=1.0)
            box.deliver(user.username, make_message("Right after the restart"))
            line = run.wait_line("reconnected")[0]
            submit(box, user.username, user.password, make_message("Later", to=user.username))
            run.wait_events(3)
    assert run.subjects() == ["Before", "Right after the restart", "Later"]
    assert "connection lost" in line


class _Watcher:
    """``hostsim watch`` in a process of its own, its lines collected as they come."""

    def __init__(self, *args: str) -> None:
        self.out = Lines()
        self.proc = subprocess.Popen(
            [HOSTSIM, "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.write(line)

    def subjects(self) -> list[str]:
        return re.findall(r"event: UID \d+ in INBOX: '([^']*)'", "\n".join(self.out.snapshot()))

    def wait_subjects(self, count: int) -> list[str]:
        wait_until(f"{count} event(s); lines: {self.out.snapshot()}",
                   lambda: len(self.subjects()) >= count)
        return self.subjects()

    def end(self, sig: int) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


def test_watcher_killed_with_sigkill_and_restarted_fires_each_message_once(
    sandbox, mail_user, tmp_path
):
    task = tmp_path / "killed.yaml"
    task.write_text(trigger_task("killed", imap_trigger_params(sandbox, mail_user)))
    user = mail_user.username
    first = _Watcher("--verbose", str(task))
    try:
        wait_until("the watch to start", lambda: first.out.having("with IDLE"))
        for n in (1, 2):
            submit(sandbox, user, mail_user.password, make_message(f"Kill {n}", to=user))
        assert first.wait_subjects(2) == ["Kill 1", "Kill 2"]
        # killed between tasks: an event is acknowledged just after its line, so a kill right
        # after "event:" may (by design) fire that one again
        wait_until("the tasks to end", lambda: len(first.out.having("finished")) == 2)
    finally:
        code = first.end(signal.SIGKILL)
    assert code == -signal.SIGKILL
    for n in (3, 4):  # while nothing watches
        submit(sandbox, user, mail_user.password, make_message(f"Kill {n}", to=user))
    second = _Watcher(str(task))
    try:
        assert second.wait_subjects(2) == ["Kill 3", "Kill 4"]
        submit(sandbox, user, mail_user.password, make_message("Kill 5", to=user))
        assert second.wait_subjects(3) == ["Kill 3", "Kill 4", "Kill 5"]
    finally:
        code = second.end(signal.SIGTERM)
    assert code == 0, second.out.snapshot()
    assert second.out.having("SIGTERM: stopping")
    assert second.out.having("stopped (3 event(s) handled)")


def test_pop3_trigger_fires_new_mail_and_remembers_uidls(host, sandbox, mail_user):
    user = mail_user.username
    sandbox.seed(user, [make_message("Already there")])
    params = {
        "server": sandbox.host,
        "port": sandbox.ports["pop3s"],
        "ca_file": str(sandbox.ca_file),
        "username": user,
        "password": mail_user.password,
        "poll_interval": 1,
        "conditions": [{"field": "subject", "op": "not_contains", "value": "spam"}],
    }
    text = trigger_task("pop", params, kind="Email Arrived (POP3)")
    with WatchRun(host, text) as run:
        run.wait_line("checking every 1 s")
        submit(sandbox, user, mail_user.password, make_message("POP 1", to=user))
        sandbox.deliver(user, make_message("Cheap spam"))
        sandbox.deliver(user, make_message("POP 2"))
        events = run.wait_events(2)
    assert run.subjects() == ["POP 1", "POP 2"]
    assert isinstance(events[0].variables["MsgUid"], str)
    assert events[0].variables["Msg"]["uid"] == events[0].variables["MsgUid"]
    assert run.out.having("1 message(s) already there")
    sandbox.deliver(user, make_message("POP 3"))
    with WatchRun(host, text) as again:
        again.wait_events(1)
        again.wait_line("event: UIDL")
    assert again.subjects() == ["POP 3"]
