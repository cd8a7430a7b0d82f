"""The trigger contract: robomail_register_triggers, a host in pluggy alone driving a trigger,
and hostsim watch with another plugin's trigger (acknowledgements, a full queue, stopping)."""

from __future__ import annotations

import inspect
import threading
import time
from pathlib import Path

import pluggy
import pytest
from mail_fixtures import make_message
from trigger_support import WatchRun

from hostsim.cli.manifest import build_manifest, render_action_reference
from hostsim.runtime.host import Host
from hostsim.runtime.plugins import make_plugin_manager
from hostsim.runtime.registry import RegistrationError, Registry
from robomail_plugin import hookspecs, host_kit
from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import (
    ActionSpec,
    Param,
    ParamType,
    TriggerEvent,
    TriggerSpec,
    TriggerVariable,
)
from robomail_plugin.trigger.actions import BoundWatch

ROOT = Path(__file__).resolve().parent.parent


def test_hook_robomail_register_triggers_declares_the_mail_triggers(host):
    found = [t for result in host.pm.hook.robomail_register_triggers() for t in result]
    triggers = {t.title: t for t in found}
    imap, pop3 = triggers["Email Arrived (IMAP)"], triggers["Email Arrived (POP3)"]
    assert imap.id == "robomail.email_arrived_imap" and pop3.id == "robomail.email_arrived_pop3"
    for spec in (imap, pop3):
        names = {p.name for p in spec.params}
        assert {"server", "auth", "username", "password", "oauth_record", "conditions",
                "match", "poll_interval", "existing_mail"} <= names
        assert spec.param("password").secret
        assert [v.name for v in spec.variables] == ["Msg", "MsgUid"]
        assert isinstance(spec.watch, BoundWatch)
        inspect.signature(spec.watch.watch.resolve()).bind("services", "ctx", "params", "stop")
    assert {"folder", "push", "idle_minutes", "keepalive"} <= {p.name for p in imap.params}
    assert imap.param("idle_minutes").default == 29
    assert set(host.registry.triggers) >= {imap.id, pop3.id}
    assert host.registry.trigger("email arrived (imap)") is host.registry.triggers[imap.id]
    manifest = build_manifest(host.registry)
    assert {t["id"] for t in manifest["triggers"]} == {imap.id, pop3.id}
    reference = render_action_reference(host.registry)
    assert "## Triggers" in reference and "### Email Arrived (POP3)" in reference


def test_hook_robomail_register_triggers_runs_in_a_host_of_pluggy_alone(
    sandbox, mail_user, tmp_path
):
    """The README's example: a host with no hostsim drives Email Arrived (IMAP) with --once."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
    host_kit.configure(pm, tmp_path / "host-data")
    triggers = {t.title: t for found in pm.hook.robomail_register_triggers() for t in found}
    spec = triggers["Email Arrived (IMAP)"]
    params = host_kit.bind_params(spec.params, {
        "server": sandbox.host, "port": sandbox.ports["imaps"], "ca_file": str(sandbox.ca_file),
        "username": mail_user.username, "password": mail_user.password,
    })

    def check() -> list[str]:
        ctx = host_kit.BasicTriggerContext(tmp_path / "state", "my-task", once=True)
        subjects = []
        for event in spec.watch(ctx, params, threading.Event()):
            subjects.append(event.variables["Msg"]["subject"])  # ... run the task here ...
            event.ack()  # ... once it has started
        assert mail_user.password not in "\n".join(ctx.lines)
        return subjects

    sandbox.deliver(mail_user.username, make_message("Before the first check"))
    assert check() == []  # the first check records what is there
    sandbox.deliver(mail_user.username, make_message("Hello, host"))
    assert check() == ["Hello, host"]
    assert check() == []


class Ticks:
    """Another plugin: a trigger that yields ``count`` events at once, recording each ack, and
    an action that takes a while."""

    def __init__(self, count: int, pause: float = 0.3) -> None:
        self.count = count
        self.pause = pause
        self.acked: list[int] = []
        self.started: list[int] = []
        self.acked_when_started: list[list[int]] = []
        self.closed = threading.Event()

    def watch(self, ctx, params, stop):
        try:
            for n in range(1, self.count + 1):
                yield TriggerEvent(variables={"Tick": n}, summary=f"tick {n}",
                                   ack=lambda n=n: self.acked.append(n))
            if not ctx.once:
                stop.wait()
        finally:
            self.closed.set()

    def slow(self, ctx, params):
        self.started.append(int(params["tick"]))
        self.acked_when_started.append(list(self.acked))
        time.sleep(self.pause)

    @hookimpl
    def robomail_register_triggers(self):
        return [TriggerSpec(id="ticks.tick", title="Tick", category="Test", watch=self.watch,
                            variables=[TriggerVariable(name="Tick", help="its number")])]

    @hookimpl
    def robomail_register_actions(self):
        return [ActionSpec(id="ticks.slow", title="Slow", category="Test", run=self.slow,
                           params=[Param(name="tick", type=ParamType.INT, required=True)])]


TICK_TASK = (
    "name: ticking\ntrigger: {type: Tick}\n"
    "steps:\n  - action: Slow\n    params: {tick: '{Tick}'}\n"
)


def test_events_wait_in_a_bounded_queue_and_are_acked_after_their_task_starts(robomail_home):
    ticks = Ticks(4, pause=0.2)
    host = Host.load(extra_plugins=(ticks,))
    with WatchRun(host, TICK_TASK, once=True, queue_size=1) as run:
        run.thread.join(30)
    assert run.status == 0
    assert ticks.started == [1, 2, 3, 4] and ticks.acked == [1, 2, 3, 4]
    # each event is acknowledged once its task has started, none before
    assert ticks.acked_when_started == [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4]]
    assert run.out.having("1 events are waiting for the task")
    assert run.out.having("the task has caught up")
    assert run.out.having("done (4 event(s) handled)")
    assert ticks.closed.is_set()


def test_stopping_lets_the_running_task_finish_and_leaves_queued_events_unacked(robomail_home):
    ticks = Ticks(3, pause=0.5)
    host = Host.load(extra_plugins=(ticks,))
    with WatchRun(host, TICK_TASK) as run:
        run.wait_events(1)
        run.watch.stop()
        run.thread.join(30)
    assert ticks.started == [1] and ticks.acked == [1]  # 2 and 3 fire after the next start
    assert run.status == 0 and ticks.closed.is_set()


def test_two_plugins_registering_one_trigger_title_fail_loudly(tmp_path):
    class Clash:
        @hookimpl
        def robomail_register_triggers(self):
            return [TriggerSpec(id="clash.arrived", title="Email Arrived (IMAP)",
                                category="X", watch=lambda c, p, s: iter(()))]

    pm = make_plugin_manager(extra_plugins=(Clash(),))
    host_kit.configure(pm, tmp_path)
    with pytest.raises(RegistrationError, match="share the title 'Email Arrived"):
        Registry.collect(pm)
