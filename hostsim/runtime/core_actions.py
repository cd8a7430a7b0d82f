"""hostsim's own actions (Set Variable, Log Message, For Each), registered like any plugin's."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import ActionFailed, ActionSpec, ErrorCode, Param, ParamType


def set_variable(ctx: Any, params: Mapping[str, Any]) -> None:
    ctx.set_variable(params["name"], params["value"], params["scope"])


def log_message(ctx: Any, params: Mapping[str, Any]) -> None:
    ctx.log(params["message"], params["level"])


def for_each(ctx: Any, params: Mapping[str, Any]) -> Iterator[None]:
    items = params["items"]
    if isinstance(items, str):
        try:
            items = json.loads(items)
        except ValueError:
            items = [part.strip() for part in items.replace(";", ",").split(",") if part.strip()]
    if isinstance(items, dict) or not isinstance(items, list):
        raise ActionFailed(
            "items must be a list or the JSON text of an array", code="invalid_parameter"
        )
    ctx.progress(0, len(items))
    for index, item in enumerate(list(items), start=1):
        ctx.set_variable(params["save_to"], item)
        if params["save_index_to"]:
            ctx.set_variable(params["save_index_to"], index)
        yield None


CORE_ACTIONS = [
    ActionSpec(
        id="hostsim.set_variable",
        title="Set Variable",
        category="Variables",
        run=set_variable,
        description="Sets a variable for this run (local) or for every later run (global).",
        params=[
            Param(name="name", required=True, sets_variable=True, help="the variable's name"),
            Param(name="value", default="", help="the value; may contain {variables}"),
            Param(
                name="scope",
                type=ParamType.CHOICE,
                choices=("local", "global"),
                default="local",
                help="local: this task run; global: shared with later runs of this host",
            ),
        ],
    ),
    ActionSpec(
        id="hostsim.log_message",
        title="Log Message",
        category="Logging",
        run=log_message,
        description="Writes a line to the task log (secrets masked).",
        params=[
            Param(name="message", required=True, help="the text; may contain {variables}"),
            Param(
                name="level",
                type=ParamType.CHOICE,
                choices=("info", "warning", "error"),
                default="info",
                help="how the line is marked",
            ),
        ],
    ),
    ActionSpec(
        id="hostsim.for_each",
        title="For Each",
        category="Loops",
        run=for_each,
        loop=True,
        description="Runs its body once per item of a list or JSON array.",
        errors=[ErrorCode(code="invalid_parameter", meaning="items is not a list")],
        params=[
            Param(
                name="items",
                type=ParamType.JSON,
                required=True,
                help="a list, JSON text of an array, or comma-separated text",
            ),
            Param(
                name="save_to", default="Item", sets_variable=True, help="variable for each item"
            ),
            Param(
                name="save_index_to",
                default="",
                sets_variable=True,
                help="variable for the item's position, from 1",
            ),
        ],
    ),
]


class CorePlugin:
    """Registers the host's own actions through the same hook as every plugin."""

    @hookimpl
    def robomail_register_actions(self) -> list[ActionSpec]:
        return list(CORE_ACTIONS)
