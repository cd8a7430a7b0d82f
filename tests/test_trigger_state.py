"""What a trigger saves and when: the state moves past a message only once every event before it
has been acknowledged, whatever order the acknowledgements come in; and how long it waits
between reconnections. No server needed."""

from __future__ import annotations

import json

from robomail_plugin.host_kit import BasicTriggerContext
from robomail_plugin.trigger.state import Backoff, UidlTracker, UidTracker


class Saves(BasicTriggerContext):
    """Keeps every saved value, in order, besides writing it."""

    def __init__(self, state_dir) -> None:
        super().__init__(state_dir, "task")
        self.saved: list[dict] = []

    def save_state(self, key, value) -> None:
        super().save_state(key, value)
        self.saved.append(value)


def test_the_highest_uid_saved_waits_for_every_earlier_event(tmp_path):
    ctx = Saves(tmp_path)
    tracker = UidTracker(ctx, "k", uidvalidity=7, last_uid=4)
    ack5, ack7 = tracker.fire(5), tracker.fire(7)
    ack7()  # 5's task has not started yet: a restart must find 5 again
    assert ctx.saved == []
    ack5()
    assert ctx.saved[-1] == {"uidvalidity": 7, "last_uid": 7}
    tracker.skip_to(9)  # 8 and 9 did not match the conditions
    assert ctx.load_state("k") == {"uidvalidity": 7, "last_uid": 9}
    ack5()  # idempotent
    assert len(ctx.saved) == 2
    assert json.loads(ctx.state_path("k").read_text())["value"]["last_uid"] == 9


def test_a_retired_tracker_saves_nothing_more(tmp_path):
    ctx = Saves(tmp_path)
    old = UidTracker(ctx, "k", uidvalidity=1, last_uid=10)
    ack = old.fire(11)
    old.retire()  # the folder was rebuilt while event 11 waited in the queue
    ack()
    old.skip_to(20)
    assert ctx.saved == []


def test_uidls_handled_are_saved_and_those_gone_from_the_server_forgotten(tmp_path):
    ctx = Saves(tmp_path)
    tracker = UidlTracker(ctx, "k", ["a", "b"])
    ack_c = tracker.fire("c")
    assert tracker.known("c") and not tracker.known("d")
    tracker.settle(["d"], present={"b", "c", "d"})  # "a" was deleted on the server
    assert ctx.saved[-1] == {"uidls": ["b", "d"]}  # "c" is not saved before its task starts
    ack_c()
    assert ctx.load_state("k") == {"uidls": ["b", "c", "d"]}


def test_reconnection_waits_double_with_jitter_up_to_the_longest():
    backoff = Backoff(longest=8)
    waits = [backoff.next() for _ in range(6)]
    for wait, base in zip(waits, [1, 2, 4, 8, 8, 8], strict=True):
        assert base / 2 <= wait <= base
    backoff.reset()
    assert backoff.next() <= 1
