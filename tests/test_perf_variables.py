"""``{json:Var.path}`` expansion parses a variable's JSON once per value, and never a stale one.

A loop body that reads several fields of the message info (``{json:Msg.subject}``,
``{json:Msg.from_address}`` ...) used to parse the whole info once per reference.
"""

from __future__ import annotations

import json

from hostsim import variables as variables_module
from hostsim.variables import Variables


def test_references_to_one_value_parse_it_once(monkeypatch):
    parses: list[str] = []
    real_loads = json.loads

    def counting_loads(text, *args, **kwargs):
        parses.append(text)
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(variables_module.json, "loads", counting_loads)
    store = Variables()
    store.set("Msg", {"subject": "Hi", "from_address": "a@example.test", "size": 3})
    text = "{json:Msg.subject} from {json:Msg.from_address} ({json:Msg.size} bytes)"
    assert store.expand(text) == "Hi from a@example.test (3 bytes)"
    assert store.expand(text) == "Hi from a@example.test (3 bytes)"
    assert len(parses) == 1


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
