"""What a host needs besides the hook specs: configure robomail, bind task parameters to an
ActionSpec, run actions with a small context, and get access tokens for other plugins.

hostsim uses these itself; a host built on pluggy alone needs nothing else (see the README's
"A host in twenty lines"). Imports no mail, crypto or HTTP library.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy

from robomail_plugin.errors import InvalidParameter, RecordNotFound
from robomail_plugin.schema import (
    AccessTokenInfo,
    Closable,
    ConnectionInUse,
    ConnectionNotOpen,
    EditorCommand,
    HostServices,
    Param,
    ParamType,
    WrongConnectionKind,
)

TRUE_WORDS = frozenset({"true", "yes", "1", "on"})
FALSE_WORDS = frozenset({"false", "no", "0", "off", ""})


class NoTokenProvider(LookupError):
    """No loaded plugin answers ``robomail_access_token`` (robomail is not installed or blocked)."""


def configure(pm: pluggy.PluginManager, data_dir: str | Path, *, interactive: bool = False) -> None:
    """Gives every plugin (and every plugin registered later) the host's services, once."""
    services = HostServices(
        data_dir=Path(data_dir),
        hook=pm.hook,
        interactive=interactive,
        register_plugin=lambda plugin, name: pm.register(plugin, name=name),
    )
    pm.hook.robomail_configure.call_historic(kwargs={"host": services})


def coerce(param: Param, value: Any) -> Any:
    """Turns a task value into the parameter's type; raises ValueError saying what is expected."""
    kind = param.type
    if value is None:
        return None
    if kind in (ParamType.STR, ParamType.PATH):
        return _to_text(value)
    if kind is ParamType.CHOICE:
        return _to_choice(param, value)
    if kind is ParamType.BOOL:
        return _to_bool(value)
    if kind is ParamType.INT:
        return _to_int(value)
    if kind is ParamType.FLOAT:
        return _to_float(value)
    if kind is ParamType.LIST:
        return _to_list(value)
    if kind is ParamType.JSON:
        return _to_json(value)
    raise ValueError(f"unknown parameter type {kind}")  # pragma: no cover - enum is closed


def _to_text(value: Any) -> str:
    """Scalars become text (booleans as YAML spells them); a list or mapping is refused rather
    than silently turned into its Python repr."""
    if isinstance(value, dict | list):
        raise ValueError("expected text, got a list or mapping")
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else str(value)


def _to_choice(param: Param, value: Any) -> str:
    """Matches case-insensitively but returns the choice as declared, so actions compare against
    their own spelling."""
    text = str(value).strip().lower()
    for choice in param.choices:
        if choice.lower() == text:
            return choice
    raise ValueError(f"expected one of {', '.join(param.choices)}; got {value!r}")


def _to_int(value: Any) -> int:
    """Refuses booleans: ``int(True)`` is 1, and a YAML ``yes`` is never meant as a count."""
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number; got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a whole number; got {value!r}") from None


def _to_float(value: Any) -> float:
    """Goes through text so YAML numbers and quoted numbers are read the same way."""
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a number; got {value!r}") from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"expected true or false; got {value!r}")


def _to_list(value: Any) -> list[str]:
    """A YAML list, a JSON list in text, or text split on ',' or ';'."""
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        try:
            loaded = json.loads(text)
        except (ValueError, RecursionError):
            loaded = None
        if isinstance(loaded, list):
            return [v if isinstance(v, str) else json.dumps(v) for v in loaded]
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def _to_json(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ValueError(f"expected JSON: {exc}") from None
            except RecursionError:
                raise ValueError("expected JSON: it nests too deeply") from None
    return value


def bind_params(params: Sequence[Param], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared parameter, from raw values (or their aliases): coerced, defaults filled,
    required ones checked. What ``ActionSpec.run`` and ``EditorCommand.run`` expect.

    Raises ``InvalidParameter`` naming the parameter (an unknown one included).
    """
    names = {p.name: p for p in params}
    for p in params:
        names.update({alias: p for alias in p.aliases})
    given: dict[str, Any] = {}
    for key, value in raw.items():
        param = names.get(key)
        if param is None:
            known = ", ".join(p.name for p in params) or "none"
            raise InvalidParameter(f"unknown parameter {key!r}; the parameters are: {known}")
        given[param.name] = value
    bound: dict[str, Any] = {}
    for p in params:
        value = given.get(p.name)
        if value is None:
            default = p.default if p.has_default else None
            bound[p.name] = list(default) if isinstance(default, list | tuple) else default
        else:
            try:
                bound[p.name] = coerce(p, value)
            except ValueError as exc:
                raise InvalidParameter(f"parameter {p.name!r}: {exc}") from None
        if p.required and bound[p.name] in (None, ""):
            raise InvalidParameter(f"parameter {p.name!r} is required ({p.help})")
    return bound


def command_params(
    command: EditorCommand, record: str | None = None, **given: Any
) -> dict[str, Any]:
    """What to pass an editor command run for ``record`` (it goes to the first positional
    parameter, the key field), with ``given`` under the parameters' names or aliases: bound by
    ``bind_params``."""
    raw = dict(given)
    if record is not None:
        raw[next(p.name for p in command.params if p.positional)] = record
    return bind_params(command.params, raw)


def access_token(hook: Any, record_name: str) -> AccessTokenInfo:
    """An access token for ``record_name`` from whichever plugin knows the record.

    Raises ``NoTokenProvider`` when no plugin offers tokens, ``RecordNotFound`` when none knows
    the record, and robomail's ``TokenError``/``TokenTemporaryError`` when the provider refuses.
    After a server refuses the token, call ``hook.robomail_token_refused(record_name=...,
    token=...)`` and ask again: the next answer is a fresh token.
    """
    if not hook.robomail_access_token.get_hookimpls():
        raise NoTokenProvider(
            "No plugin offers access tokens: install robomail (or unblock it) in this host."
        )
    info = hook.robomail_access_token(record_name=record_name)
    if info is None:
        raise RecordNotFound(f"No OAuth record is named {record_name!r}.")
    if not isinstance(info, AccessTokenInfo):
        raise TypeError(
            f"robomail_access_token answered {type(info).__name__}, not AccessTokenInfo"
        )
    return info


def _plugin_store(hook: Any) -> tuple[str, Any] | None:
    """(plugin name, store) of the first plugin answering ``robomail_credential_store``."""
    for impl in reversed(hook.robomail_credential_store.get_hookimpls()):
        store = impl.function()
        if store is not None:
            name = type(impl.plugin).__name__ if impl.plugin_name.isdigit() else impl.plugin_name
            return name, store
    return None


def plugin_store_problem(hook: Any) -> str | None:
    """What a plugin's credential store lacks (a host checks this at start), or None."""
    found = _plugin_store(hook)
    if found is None:
        return None
    from robomail_plugin.store_contract import store_problems

    name, store = found
    missing = store_problems(store)
    if not missing:
        return None
    return (
        f"plugin {name!r} offers a credential store ({type(store).__name__}) that lacks "
        f"{', '.join(missing)}; robomail cannot use it (fix or block that plugin)"
    )


def credential_store_in_use(hook: Any, data_dir: str | Path) -> str:
    """Which credential store robomail uses in this host, said without opening it."""
    found = _plugin_store(hook)
    if found is not None:
        name, store = found
        problem = plugin_store_problem(hook)
        return problem or f"the store of plugin {name!r} ({type(store).__name__})"
    url = os.environ.get("ROBOMAIL_STORE", "").strip()
    if url:
        from robomail_plugin.credentials.pg_config import Location

        return f"PostgreSQL {Location(url).shown} (ROBOMAIL_STORE)"
    home = os.environ.get("ROBOMAIL_HOME", "").strip()
    folder = Path(home).expanduser() if home else Path(data_dir)
    return f"robomail's embedded store {folder / 'credentials.sqlite3'}"


class _BasicContext:
    """What both basic contexts do alike: log lines to a list with the secrets masked, and no
    one to ask."""

    interactive = False

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._secrets: set[str] = set()

    def mask(self, message: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            message = message.replace(secret, "***")
        return message

    def log(self, message: str, level: str = "info") -> None:
        message = self.mask(message)
        self.lines.append(message if level == "info" else f"{level.upper()}: {message}")

    def add_secret(self, value: str) -> None:
        if value:
            self._secrets.add(value)

    def prompt(self, text: str, *, secret: bool = False) -> str:
        raise InvalidParameter(f"{text}: nobody is here to answer; give it as a parameter.")


class BasicActionContext(_BasicContext):
    """The smallest ``schema.ActionContext``: variables, named connections and task state in
    memory, log lines to a list (secrets masked). A host may use it as is or subclass it."""

    task_name = "task"

    def __init__(self, variables: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.variables: dict[str, Any] = dict(variables or {})
        self._connections: dict[str, tuple[str, Closable]] = {}
        self._state: dict[str, dict[str, Any]] = {}
        self.last_progress: tuple[int, int | None] = (0, None)

    def cancelled(self) -> bool:
        return False

    def progress(self, done: int, total: int | None = None) -> None:
        self.last_progress = (done, total)

    def get_variable(self, name: str, default: Any = None) -> Any:
        return self.variables.get(name, default)

    def set_variable(self, name: str, value: Any, scope: str = "local") -> None:
        self.variables[name] = json.dumps(value) if isinstance(value, dict | list) else value

    def open_connection(self, name: str, kind: str, session: Closable) -> None:
        if name in self._connections:
            raise ConnectionInUse(
                f"a connection named {name!r} is open already; close it or use another name"
            )
        self._connections[name] = (kind, session)

    def connection(self, name: str, kind: str) -> Any:
        held = self._connections.get(name)
        if held is None:
            raise ConnectionNotOpen(
                f"no connection named {name!r} is open; open it with {kind.upper()} Open first"
            )
        if held[0] != kind:
            raise WrongConnectionKind(
                f"connection {name!r} is a {held[0].upper()} connection, not {kind.upper()}"
            )
        return held[1]

    def close_connection(self, name: str, kind: str) -> Any:
        session = self.connection(name, kind)
        del self._connections[name]
        return session

    def close_all(self) -> None:
        """Closes what the task left open (a host calls this when a task ends)."""
        while self._connections:
            _, (_, session) = self._connections.popitem()
            session.close()

    def load_state(self, key: str) -> dict[str, Any]:
        return dict(self._state.get(key, {}))

    def save_state(self, key: str, value: dict[str, Any]) -> None:
        self._state[key] = dict(value)


class BasicTriggerContext(_BasicContext):
    """The smallest ``schema.TriggerContext``: log lines to a list (secrets masked) and state in
    ``state_dir``, one JSON file per task and key, replaced atomically (written, synced, renamed)
    so a crash leaves the old or the new state. Subclass it to send ``log`` elsewhere."""

    def __init__(self, state_dir: str | Path, task_name: str = "task", *, once: bool = False):
        import threading  # a trigger's thread and the host's task thread both save state

        super().__init__()
        self.state_dir = Path(state_dir)
        self.task_name = task_name
        self.once = once
        self._lock = threading.Lock()

    def state_path(self, key: str) -> Path:
        import hashlib

        digest = hashlib.sha256(f"{self.task_name}\0{key}".encode()).hexdigest()[:24]
        return self.state_dir / f"{digest}.json"

    def load_state(self, key: str) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data.get("value", {}) if isinstance(data, dict) else {}

    def save_state(self, key: str, value: dict[str, Any]) -> None:
        from robomail_plugin.private_files import write_private

        path = self.state_path(key)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_private(path, json.dumps({"task": self.task_name, "key": key, "value": value}))
