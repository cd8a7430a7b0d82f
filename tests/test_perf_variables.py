"""``{json:Var.path}`` expansion does no needless JSON work, and never reads a stale value.

A loop body that reads several fields of the message info (``{json:Msg.subject}``,
``{json:Msg.from_address}`` ...) used to write the info as JSON and parse it again once per
reference. A structure an action stores is now read directly; JSON text set by hand is parsed
once per value.
"""

from __future__ import annotations

import json

from hostsim.runtime import variables as variables_module
from hostsim.runtime.variables import Variables


def _count_json_calls(monkeypatch) -> dict[str, list[str]]:
    calls: dict[str, list[str]] = {"loads": [], "dumps": []}
    real_loads, real_dumps = json.loads, json.dumps

    def counting_loads(text, *args, **kwargs):
        calls["loads"].append(text)
        return real_loads(text, *args, **kwargs)

    def counting_dumps(value, *args, **kwargs):
        calls["dumps"].append(value)
        return real_dumps(value, *args, **kwargs)

    monkeypatch.setattr(variables_module.json, "loads", counting_loads)
    monkeypatch.setattr(variables_module.json, "dumps", counting_dumps)
    return calls


def test_fields_of_a_stored_structure_are_read_without_json(monkeypatch):
    calls = _count_json_calls(monkeypatch)
    store = Variables()
    store.set("Msg", {"subject": "Hi", "from_address": "a@example.test", "size": 3})
    text = "{json:Msg.subject} from {json:Msg.from_address} ({json:Msg.size} bytes)"
    assert store.expand(text) == "Hi from a@example.test (3 bytes)"
    assert store.expand(text) == "Hi from a@example.test (3 bytes)"
    assert calls == {"loads": [], "dumps": []}
    # read as text it is JSON, written once however often it is read
    assert json.loads(store.get("Msg")) == {"subject": "Hi", "from_address": "a@example.test",
                                            "size": 3}
    assert store.expand("{Msg}") == store.get("Msg")
    assert len(calls["dumps"]) == 1


def test_json_text_set_by_hand_is_parsed_once(monkeypatch):
    calls = _count_json_calls(monkeypatch)
    store = Variables()
    store.set("Msg", '{"subject": "Hi", "size": 3}')
    assert store.expand("{json:Msg.subject} ({json:Msg.size})") == "Hi (3)"
    assert store.expand("{json:Msg.subject}") == "Hi"
    assert len(calls["loads"]) == 1


def test_structures_read_as_json_text_everywhere():
    store = Variables({"Cfg": {"mode": "global"}})
    store.set("List", ("a", "b"))
    store.set("Flags", ["\\Seen"], scope="global")
    assert json.loads(store.get("List")) == ["a", "b"]
    assert store.merged()["List"] == '["a", "b"]'
    assert json.loads(store.globals["Cfg"]) == {"mode": "global"}
    assert json.loads(store.globals["Flags"]) == ["\\Seen"]


def test_a_new_value_is_parsed_again():
    store = Variables()
    for n in range(3):  # a loop setting Msg for each message
        store.set("Msg", {"subject": f"message {n}", "to": [f"r{n}@example.test"]})
        assert store.expand("{json:Msg.subject}/{json:Msg.to[0]}") == (
            f"message {n}/r{n}@example.test"
        )
    store.set("Msg", "not json")
    assert store.expand("{json:Msg.subject}") == "{json:Msg.subject}"
    store.set("Msg", '{"subject": "text set by hand"}')
    assert store.expand("{json:Msg.subject}") == "text set by hand"


def test_local_shadows_global_with_the_cache():
    store = Variables({"Cfg": json.dumps({"mode": "global"})})
    assert store.expand("{json:Cfg.mode}") == "global"
    store.set("Cfg", {"mode": "local"})
    assert store.expand("{json:Cfg.mode}") == "local"
