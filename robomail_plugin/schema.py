"""The types the hook contract speaks.

Everything a plugin registers is a frozen, keyword-only attrs record, validated when it is built,
so a host can trust what it receives and a mistake fails at start-up, not in the middle of a task.
This module imports no I/O, crypto or mail code: hosts import it freely.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

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
    SECRET = "secret"  # noqa: S105 - a field kind, not a password: write-only in a form
    URL = "url"
    MULTILINE = "multiline"
    CHOICE = "choice"  # one of ``choices``, or of the named source ``choices_from``


class FieldRule(enum.StrEnum):
    """A check a host can run on a field's value before calling a command (``check_field``)."""

    SINGLE_LINE = "single_line"  # no line break, tab or other control character
    NO_EDGE_SPACES = "no_edge_spaces"  # no leading or trailing space
    URL = "url"  # https://host/..., or http:// on 127.0.0.1, localhost or ::1 (development)


class CommandScope(enum.StrEnum):
    """Whether an editor command acts on the selected record or on the editor as a whole."""

    RECORD = "record"  # the host passes the selected record's key field (``key_field``)
    GLOBAL = "global"


#: Named sources of choices an EditorField may take its choices from.
CHOICES_FROM_PROVIDERS = "oauth_providers"  # the keys of every plugin's ProviderPreset


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _rules(values: Iterable[str]) -> tuple[FieldRule, ...]:
    return tuple(FieldRule(v) for v in values)


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


def _check_name(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not NAME_RE.match(value):
        raise ValueError(f"{attribute.name} {value!r} must be snake_case (a-z, 0-9, _)")


@attrs.frozen(kw_only=True)
class Param:
    """One parameter of an action or editor command.

    ``aliases`` are extra command-line names (an editor command's older option names).
    """

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
    aliases: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    # A named source of choices the host resolves (CHOICES_FROM_PROVIDERS), for forms.
    choices_from: str = ""

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
    def _check_id(self, _attribute: attrs.Attribute[str], value: str) -> None:
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


VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _variables(values: Iterable[TriggerVariable]) -> tuple[TriggerVariable, ...]:
    return tuple(values)


def _no_ack() -> None:
    return None


def _any_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    return dict(values)


@attrs.frozen(kw_only=True)
class TriggerVariable:
    """A variable every event of a trigger sets for the task it starts (``Msg``, ``MsgUid``)."""

    name: str = attrs.field()
    help: str = ""

    @name.validator
    def _check_variable(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if not VARIABLE_RE.match(value):
            raise ValueError(f"trigger variable {value!r} must be a name (letters, digits, _)")


@attrs.frozen(kw_only=True)
class TriggerEvent:
    """Something a trigger saw: the variables its task starts with, and how to confirm it.

    The host calls ``ack()`` once the event's task has started; the trigger then records the
    event as handled (durably). An event never acked fires again after the next start, so a
    host that dies between starting the task and ``ack()`` runs that one task twice, and none
    is lost. ``ack`` is thread-safe and idempotent. ``summary`` is one line for a log (no
    secret); ``key`` names the event (the same message gives the same key).
    """

    variables: dict[str, Any] = attrs.field(factory=dict, converter=_any_mapping)
    summary: str = ""
    key: str = ""
    ack: Callable[[], None] = attrs.field(default=_no_ack, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class TriggerSpec:
    """Something that starts a task: new mail in a folder, a file appearing.

    ``watch(ctx, params, stop)`` returns an iterator of ``TriggerEvent``; ``ctx`` is a
    ``TriggerContext``, ``params`` are bound as for an action (``host_kit.bind_params``) and
    ``stop`` is a ``threading.Event``. It runs until ``stop`` is set (noticed within about a
    second) or, when ``ctx.once`` is true, until it has yielded what is waiting now. It
    reconnects by itself; it raises ``ActionFailed`` only when it cannot go on (a wrong
    password at the first connection). The host runs it in a thread of its own, closes the
    iterator when done, and calls each event's ``ack()`` after its task has started.
    ``variables`` are the variables every event sets.
    """

    id: str = attrs.field()
    title: str
    category: str
    watch: Callable[..., Iterator[TriggerEvent]] = attrs.field(eq=False)
    params: tuple[Param, ...] = attrs.field(default=(), converter=_params)
    variables: tuple[TriggerVariable, ...] = attrs.field(default=(), converter=_variables)
    description: str = ""
    errors: tuple[ErrorCode, ...] = attrs.field(default=(), converter=_errors)

    @id.validator
    def _check_id(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if not ACTION_ID_RE.match(value):
            raise ValueError(f"trigger id {value!r} must look like 'plugin.snake_case_name'")

    def __attrs_post_init__(self) -> None:
        names = [p.name for p in self.params]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"trigger {self.id}: parameters declared twice: {', '.join(dupes)}")

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


@attrs.frozen(kw_only=True)
class EditorField:
    """A field of a credential record as a settings screen shows it.

    A ``secret`` field (kind SECRET) is write-only: commands report whether it is set, never its
    value. A ``read_only`` field is shown but only a command changes it (Get Refresh Token).
    ``choices`` are static; ``choices_from`` names a source the host resolves (see
    ``CHOICES_FROM_PROVIDERS``). ``rules`` are checks a host can run before saving.
    """

    name: str = attrs.field(validator=_check_name)
    label: str
    kind: FieldKind = attrs.field(default=FieldKind.TEXT, converter=FieldKind)
    required: bool = False
    read_only: bool = False
    help: str = ""
    placeholder: str = ""
    choices: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    choices_from: str = ""
    rules: tuple[FieldRule, ...] = attrs.field(default=(), converter=_rules)
    max_length: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind is FieldKind.CHOICE and not (self.choices or self.choices_from):
            raise ValueError(f"field {self.name!r}: a choice field needs choices or choices_from")

    @property
    def secret(self) -> bool:
        return self.kind is FieldKind.SECRET


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
    ``scope`` RECORD: the command takes the selected record's key as its key-field param.
    ``confirm``: a question to ask before running it (it destroys or rotates something).
    ``long_running``: it waits on a person or the network; it stops early when
    ``ctx.cancelled()`` turns true. ``result`` says what ``CommandResult.data`` holds.
    """

    id: str = attrs.field(validator=_check_name)
    label: str
    run: Callable[..., CommandResult] = attrs.field(eq=False)
    params: tuple[Param, ...] = attrs.field(default=(), converter=_params)
    help: str = ""
    scope: CommandScope = attrs.field(default=CommandScope.GLOBAL, converter=CommandScope)
    confirm: str = ""
    long_running: bool = False
    result: str = ""


@attrs.frozen(kw_only=True)
class EditorSpec:
    """A credential editor: the record type, its fields and its commands.

    A host renders it from these facts alone: ``list_command`` returns every record and
    ``show_command`` one, as dicts keyed by field names (secrets as "***" or ""), and
    ``save_command`` creates or updates a record from params named exactly as the fields (a
    secret left out or None keeps its stored value). ``key_field`` names the field that
    identifies a record; a RECORD-scoped command takes it as a param of the same name.
    """

    record_type: str = attrs.field(validator=_check_name)
    title: str
    fields: tuple[EditorField, ...] = attrs.field(converter=_fields)
    commands: tuple[EditorCommand, ...] = attrs.field(default=(), converter=_commands)
    help: str = ""
    key_field: str = ""
    list_command: str = ""
    show_command: str = ""
    save_command: str = ""

    def __attrs_post_init__(self) -> None:
        names = {f.name for f in self.fields}
        ids = {c.id for c in self.commands}
        where = f"editor {self.record_type!r}"
        if self.key_field and self.key_field not in names:
            raise ValueError(f"{where}: key_field {self.key_field!r} is not a field")
        for role in ("list_command", "show_command", "save_command"):
            value = getattr(self, role)
            if value and value not in ids:
                raise ValueError(f"{where}: {role} {value!r} is not a command")
        if self.save_command:
            extra = {p.name for p in self.command(self.save_command).params} - names
            if extra:
                raise ValueError(
                    f"{where}: the save command takes params that are not fields: "
                    f"{', '.join(sorted(extra))}"
                )
        for command in self.commands:
            if command.scope is CommandScope.RECORD and self.key_field not in {
                p.name for p in command.params
            }:
                raise ValueError(
                    f"{where}: command {command.id!r} acts on a record but takes no "
                    f"{self.key_field or 'key_field'!r} param"
                )

    def field(self, name: str) -> EditorField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

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

    default_code = "action_failed"
    meaning = "the action failed"  # what the code means, as ActionSpec.errors lists it
    advice = ""  # what the user can do about it, for documentation

    def __init__(
        self, message: str, *, code: str | None = None, server_reply: str | None = None
    ):
        super().__init__(message)
        self.code = code or self.default_code
        self.server_reply = server_reply

    @classmethod
    def error_code(cls) -> ErrorCode:
        """This error's entry in ``ActionSpec.errors``."""
        return ErrorCode(code=cls.default_code, meaning=cls.meaning)

    @classmethod
    def because(cls, meaning: str) -> ErrorCode:
        """This error's entry with an action's own wording of when it happens."""
        return ErrorCode(code=cls.default_code, meaning=meaning)


# --- the errors a host raises itself (ActionContext's connection registry) ---------------------


class ConnectionNotOpen(ActionFailed):
    """No connection of that name is open (``ActionContext.connection``)."""

    default_code = "connection_not_open"
    meaning = "no connection has that name"
    advice = "open it first: an Open step with that connection name"


class WrongConnectionKind(ActionFailed):
    """The connection of that name is of another kind (IMAP given to a POP3 action)."""

    default_code = "wrong_connection_kind"
    meaning = "the connection is of another protocol"
    advice = "use the name of a connection of the action's protocol"


class ConnectionInUse(ActionFailed):
    """A connection of that name is open already (``ActionContext.open_connection``)."""

    default_code = "connection_in_use"
    meaning = "a connection with that name is open"
    advice = "close it first or use another name"


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None: ...


@attrs.frozen(kw_only=True)
class HostServices:
    """What a host gives its plugins at start (``robomail_configure``).

    ``register_plugin(obj, name)`` registers a plugin object with the host's plugin manager
    (``pm.register``): robomail registers one object per host there, so two hosts in one
    process keep their own state. ``robomail_plugin.host_kit.configure`` fills all of it.
    """

    data_dir: Path
    hook: Any = attrs.field(repr=False)  # the plugin manager's hook relay, called with keywords
    interactive: bool = False
    register_plugin: Callable[[object, str], Any] | None = attrs.field(
        default=None, repr=False, eq=False
    )


@attrs.frozen(kw_only=True)
class AccessTokenInfo:
    """An access token for another plugin (``robomail_access_token``): never log ``value``."""

    record_name: str
    value: str = attrs.field(repr=False)
    expires_at: float  # seconds since the epoch


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

    def progress(self, done: int, total: int | None = None) -> None:
        """How far a loop is: a loop action reports its total once (done=0) when it knows it;
        the host counts the passes and shows ``done/total`` (a terminal line, a GUI bar)."""

    def load_state(self, key: str) -> dict[str, Any]:
        """State this task keeps across runs (only_new, skip_seen), per key."""

    def save_state(self, key: str, value: dict[str, Any]) -> None: ...


class TriggerContext(HostContext, Protocol):
    """What a host offers a running trigger (``TriggerSpec.watch``).

    ``log`` lines are few (a connection made or lost, a server alert), so a host shows them all.
    ``load_state``/``save_state`` keep the trigger's state per task and key across restarts;
    ``save_state`` must be atomic and durable (a crash leaves the old or the new value) and may
    be called from the thread that calls ``ack()``. ``host_kit.BasicTriggerContext`` is one.
    """

    @property
    def task_name(self) -> str: ...

    @property
    def once(self) -> bool:
        """True: yield what is waiting now, then return (cron-style); False: watch until stop."""

    def load_state(self, key: str) -> dict[str, Any]: ...

    def save_state(self, key: str, value: dict[str, Any]) -> None: ...


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback_host(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an acceptable endpoint (https, or http on loopback), or None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        return f"{url!r} is not a URL: expected https://host/path."
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host)):
        return None
    if parts.scheme == "http":
        return (
            f"{url!r} uses plain http: only https:// is allowed "
            "(http:// only for 127.0.0.1, localhost or ::1, for development)."
        )
    return f"{url!r} must start with https://."


def check_field(field: EditorField, value: str) -> str | None:
    """What a host's form should say about ``value`` before saving (None: it passes).

    Checks ``required``, ``max_length``, static ``choices`` and the ``rules``; the plugin checks
    again when the command runs.
    """
    label = field.label
    if not value:
        return f"{label} is required." if field.required else None
    if field.max_length is not None and len(value) > field.max_length:
        return f"{label} is longer than {field.max_length} characters."
    if field.choices and value not in field.choices:
        return f"{label} must be one of {', '.join(field.choices)}."
    for rule in field.rules:
        if rule is FieldRule.SINGLE_LINE and any(ord(c) < 32 or ord(c) == 127 for c in value):
            return f"{label} must be one line, without control characters."
        if rule is FieldRule.NO_EDGE_SPACES and value != value.strip():
            return f"{label} must not start or end with spaces."
        if rule is FieldRule.URL:
            problem = url_problem(value)
            if problem:
                return f"{label} {problem}"
    return None
