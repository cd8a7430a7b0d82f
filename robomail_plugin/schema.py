"""The types the hook contract speaks.

Everything a plugin registers is a frozen, keyword-only attrs record, validated when it is built,
so a host can trust what it receives and a mistake fails at start-up, not in the middle of a task.
This module imports no I/O, crypto or mail code: hosts import it freely.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

ACTION_ID_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class Missing(enum.Enum):
    """Marks a parameter without a default (one the user may leave out)."""

    NOTHING = "nothing"


NOTHING = Missing.NOTHING


class ParamType(enum.StrEnum):
    """What a parameter holds; the host coerces task values (strings after expansion) to it."""

    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"
    LIST = "list"  # a YAML list, or one string split on "," or ";"
    PATH = "path"
    JSON = "json"  # any YAML/JSON structure (conditions, headers); strings inside are expanded


class FieldKind(enum.StrEnum):
    """How a settings screen shows an editor field."""

    TEXT = "text"
    SECRET = "secret"  # noqa: S105 - a field kind, not a password
    URL = "url"
    MULTILINE = "multiline"


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _params(values: Iterable[Param]) -> tuple[Param, ...]:
    return tuple(values)


def _errors(values: Iterable[ErrorCode]) -> tuple[ErrorCode, ...]:
    return tuple(values)


def _fields(values: Iterable[EditorField]) -> tuple[EditorField, ...]:
    return tuple(values)


def _commands(values: Iterable[EditorCommand]) -> tuple[EditorCommand, ...]:
    return tuple(values)


def _mapping(values: Mapping[str, str]) -> dict[str, str]:
    return dict(values)


def _check_name(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not NAME_RE.match(value):
        raise ValueError(f"{attribute.name} {value!r} must be snake_case (a-z, 0-9, _)")


@attrs.frozen(kw_only=True)
class Param:
    """One parameter of an action or editor command."""

    name: str = attrs.field(validator=_check_name)
    type: ParamType = attrs.field(default=ParamType.STR, converter=ParamType)
    default: Any = NOTHING
    required: bool = False
    choices: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    secret: bool = False
    help: str = ""
    # For editor commands: given on the command line without a --flag, in declaration order.
    positional: bool = False
    # True when the value names a variable the action writes (save_to, save_count_to, ...).
    sets_variable: bool = False

    def __attrs_post_init__(self) -> None:
        if self.type is ParamType.CHOICE and not self.choices:
            raise ValueError(f"param {self.name!r}: a choice parameter needs choices")
        if self.choices and self.type is not ParamType.CHOICE:
            raise ValueError(f"param {self.name!r}: choices are only for type choice")
        if self.required and self.default is not NOTHING:
            raise ValueError(f"param {self.name!r}: a required parameter has no default")
        if (
            self.type is ParamType.CHOICE
            and self.default is not NOTHING
            and self.default is not None
            and self.default not in self.choices
        ):
            raise ValueError(f"param {self.name!r}: default {self.default!r} is not a choice")

    @property
    def has_default(self) -> bool:
        return self.default is not NOTHING


@attrs.frozen(kw_only=True)
class ErrorCode:
    """A stable error code an action may raise, with what it means for the user."""

    code: str = attrs.field(validator=_check_name)
    meaning: str


@attrs.frozen(kw_only=True)
class ActionSpec:
    """An action a task can use.

    ``run(ctx, params)`` does the work. ``params`` is a mapping of every declared parameter
    (defaults filled, types coerced, variables expanded). A loop action returns an iterator: the
    host runs the loop body once for each item it yields, and closes the iterator when done.
    """

    id: str = attrs.field()
    title: str
    category: str
    run: Callable[..., Any] = attrs.field(eq=False)
    params: tuple[Param, ...] = attrs.field(default=(), converter=_params)
    loop: bool = False
    description: str = ""
    errors: tuple[ErrorCode, ...] = attrs.field(default=(), converter=_errors)

    @id.validator
    def _check_id(self, _attribute: attrs.Attribute, value: str) -> None:
        if not ACTION_ID_RE.match(value):
            raise ValueError(f"action id {value!r} must look like 'plugin.snake_case_name'")

    def __attrs_post_init__(self) -> None:
        names = [p.name for p in self.params]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"action {self.id}: parameters declared twice: {', '.join(dupes)}")

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


@attrs.frozen(kw_only=True)
class EditorField:
    """A field of a credential record as a settings screen shows it."""

    name: str = attrs.field(validator=_check_name)
    label: str
    kind: FieldKind = attrs.field(default=FieldKind.TEXT, converter=FieldKind)
    secret: bool = False
    required: bool = False
    help: str = ""


@attrs.frozen(kw_only=True)
class CommandResult:
    """What an editor command reports: a message for people and data for programs.

    ``data`` never holds a secret in plain text; a command masks them before returning.
    """

    message: str
    data: Any = None


@attrs.frozen(kw_only=True)
class EditorCommand:
    """A button of the editor (Get Refresh Token, Export ...) or a record operation.

    ``run(ctx, params)`` returns a ``CommandResult``; ``ctx`` is a ``HostContext``.
    """

    id: str = attrs.field(validator=_check_name)
    label: str
    run: Callable[..., CommandResult] = attrs.field(eq=False)
    params: tuple[Param, ...] = attrs.field(default=(), converter=_params)
    help: str = ""


@attrs.frozen(kw_only=True)
class EditorSpec:
    """A credential editor: the record type, its fields and its commands."""

    record_type: str = attrs.field(validator=_check_name)
    title: str
    fields: tuple[EditorField, ...] = attrs.field(converter=_fields)
    commands: tuple[EditorCommand, ...] = attrs.field(default=(), converter=_commands)
    help: str = ""

    def command(self, command_id: str) -> EditorCommand:
        for c in self.commands:
            if c.id == command_id:
                return c
        raise KeyError(command_id)


@attrs.frozen(kw_only=True)
class ProviderPreset:
    """Endpoints, scopes and quirks of an OAuth provider, for Load Predefined Endpoints."""

    key: str = attrs.field(validator=_check_name)
    title: str
    authorization_endpoint: str
    token_endpoint: str
    scope: str
    device_authorization_endpoint: str | None = None
    # Extra query parameters for the authorization request (Google: access_type, prompt).
    extra_authorize_params: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    # Hints shown when a token request fails (keys: error codes such as invalid_grant).
    hints: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    # Host names of the token endpoint that identify this provider in error hints.
    token_hosts: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    sends_new_refresh_token: bool = False


class ActionFailed(Exception):
    """An action failed in a way the user can act on.

    ``code`` is stable (documented per action); ``str(exc)`` says what is wrong and what to do.
    ``server_reply`` is the server's literal answer, when there was one. None of them may hold a
    secret.
    """

    def __init__(
        self, message: str, *, code: str = "action_failed", server_reply: str | None = None
    ):
        super().__init__(message)
        self.code = code
        self.server_reply = server_reply


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None: ...


@attrs.frozen(kw_only=True)
class HostServices:
    """What a host gives its plugins at start (``robomail_configure``)."""

    data_dir: Path
    hook: Any = attrs.field(repr=False)  # the plugin manager's hook relay, called with keywords
    interactive: bool = False


class HostContext(Protocol):
    """What a host offers a running editor command."""

    @property
    def interactive(self) -> bool: ...

    def log(self, message: str, level: str = "info") -> None: ...

    def add_secret(self, value: str) -> None:
        """Masks ``value`` in every log line and output from now on."""

    def prompt(self, text: str, *, secret: bool = False) -> str:
        """Asks the person at the terminal; raises ActionFailed when nobody is there."""


class ActionContext(HostContext, Protocol):
    """What a host offers a running action: variables, connections, task state, logging."""

    @property
    def task_name(self) -> str: ...

    def get_variable(self, name: str, default: Any = None) -> Any: ...

    def set_variable(self, name: str, value: Any, scope: str = "local") -> None:
        """Sets a variable; dicts and lists are stored as JSON text."""

    def open_connection(self, name: str, kind: str, session: Closable) -> None:
        """Registers an open session under ``name``; fails if the name is already open."""

    def connection(self, name: str, kind: str) -> Any:
        """The session open under ``name``; fails if none is, or it is of another kind."""

    def close_connection(self, name: str, kind: str) -> Any:
        """Forgets and returns the session (the caller closes it)."""

    def load_state(self, key: str) -> dict[str, Any]:
        """State this task keeps across runs (only_new, skip_seen), per key."""

    def save_state(self, key: str, value: dict[str, Any]) -> None: ...


def iter_secret_params(spec_params: Iterable[Param], values: Mapping[str, Any]) -> Iterator[str]:
    """The string values of the secret parameters, for masking."""
    for p in spec_params:
        v = values.get(p.name)
        if p.secret and isinstance(v, str) and v:
            yield v
