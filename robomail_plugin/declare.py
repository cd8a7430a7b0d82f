"""Declaring an action: one frozen attrs class of parameters and the function that runs it.

The class (a subclass of ``Parameters``) is the one place an action's parameters are described.
Each field says its help, whether it is secret, its choices (an Enum) and its default (``text``,
``integer``, ``flag``, ``choice``...). ``Action`` derives the ``ActionSpec`` hosts see from it,
error codes included (from the error classes), and binds the host's mapping to an instance
before the run function gets it: the run reads typed attributes and never re-applies a default
or re-checks a choice.

Imports no mail, crypto or HTTP library: declarations are read at start-up.
"""

from __future__ import annotations

import enum
import functools
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, dataclass_transform

import attrs

from robomail_plugin.errors import InvalidParameter
from robomail_plugin.schema import (
    NOTHING,
    ActionContext,
    ActionFailed,
    ActionSpec,
    ErrorCode,
    Missing,
    Param,
    ParamType,
)

if TYPE_CHECKING:
    from robomail_plugin.services import Services

P = TypeVar("P")
E = TypeVar("E", bound=enum.Enum)

_PARAM = "robomail.param"
_GROUP = "robomail.group"
PLUGIN = "robomail"


@attrs.frozen(kw_only=True)
class FieldInfo:
    """What one field tells a host: everything of ``Param`` but its name."""

    kind: ParamType
    help: str
    default: Any = NOTHING  # what the host shows and fills in; NOTHING = no default
    required: bool = False
    secret: bool = False
    sets_variable: bool = False
    choices: type[enum.Enum] | None = None
    only: tuple[str, ...] = ()  # a subset of the Enum's values, when not all apply
    name: str = ""  # the name hosts see, when it cannot be the field's (``from``)
    empty_is_default: bool = False  # "" counts as not given (a connection or variable name)

    @property
    def choice_values(self) -> tuple[str, ...]:
        if self.choices is None:
            return ()
        return self.only or tuple(str(member.value) for member in self.choices)


_COUNTING_FIELD = type(attrs.field())  # what attrs.field() gives, until attrs builds the class
_BUILDING = threading.RLock()


def _fields(params: type[Any]) -> tuple[attrs.Attribute[Any], ...]:
    """A parameter class's attrs fields, the class built first if it was not yet."""
    found: tuple[attrs.Attribute[Any], ...] = attrs.fields(_built(params))
    return found


def _built(params: type[Any]) -> Any:
    """``params`` made an attrs class, once, on first use (its bases first: attrs inherits only
    from classes it built). Listing the actions never gets here; running one does."""
    if "__attrs_attrs__" not in vars(params):
        with _BUILDING:
            if "__attrs_attrs__" not in vars(params):
                for base in reversed(params.__mro__[1:]):
                    if issubclass(base, Parameters) and base is not Parameters:
                        _built(base)
                attrs.frozen(
                    params,
                    kw_only=True,
                    slots=False,
                    init=False,
                    eq=False,
                    repr=False,
                    field_transformer=vars(params).get("_tailor"),
                )
    return params


@dataclass_transform(kw_only_default=True, frozen_default=True)
class Parameters:
    """Base of every parameter class: a frozen, keyword-only attrs class.

    ``class ImapOpen(Parameters):`` with fields from ``text``, ``flag``...; ``tailor=`` takes a
    ``tailored(...)`` for a subclass that changes some of its base's fields. A host lists the
    actions at every start, so what it needs (``params_of``) is read from the declarations as
    written, and attrs builds a class the first time it is used (``bind``): building thirty
    classes with their compiled methods would have doubled the time ``hostsim actions`` takes.
    For the same reason they share one ``__init__``, ``__eq__`` and ``__repr__``.
    """

    _declared: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = ()
    _tailor: ClassVar[Tailoring | None] = None

    def __init_subclass__(cls, tailor: Tailoring | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [
            (name, value.metadata)
            for name, value in vars(cls).items()
            if isinstance(value, _COUNTING_FIELD)
        ]
        names = {name for name, _ in own}
        declared = [entry for entry in cls._declared if entry[0] not in names] + own
        if tailor is not None:
            declared = [(name, tailor.metadata(name, meta)) for name, meta in declared]
        cls._declared = tuple(declared)
        cls._tailor = tailor

    def __init__(self, **values: Any) -> None:
        for field in _fields(type(self)):
            if field.name in values:
                value = values.pop(field.name)
            elif field.default is attrs.NOTHING:
                raise TypeError(f"{type(self).__name__} needs {field.name!r}")
            else:
                value = field.default
            if field.converter is not None:  # defaults too, as attrs does: a choice's member
                value = field.converter(value)  # type: ignore[operator]
            object.__setattr__(self, field.name, value)
        if values:
            raise TypeError(f"{type(self).__name__} has no parameter {', '.join(values)}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{field.name}={getattr(self, field.name)!r}"
            for field in _fields(type(self))
            if field.repr
        )
        return f"{type(self).__name__}({shown})"


def _field(info: FieldInfo, converter: Callable[[Any], Any] | None = None) -> Any:
    """An attrs field carrying ``info``; a field without a default is None until given."""
    metadata = {_PARAM: info}
    if info.required:
        return attrs.field(metadata=metadata, converter=converter, repr=not info.secret)
    default = None if info.default is NOTHING else info.default
    return attrs.field(
        default=default, metadata=metadata, converter=converter, repr=not info.secret
    )


def text(
    default: str | Missing = NOTHING,
    *,
    help: str,  # noqa: A002 - the name hosts know
    required: bool = False,
    secret: bool = False,
    name: str = "",
    empty_is_default: bool = False,
) -> Any:
    """A text parameter (None when left out and it has no default); ``name`` when hosts know
    it by a name Python does not allow (``from``); ``empty_is_default`` when "" means the
    default rather than nothing."""
    info = FieldInfo(
        kind=ParamType.STR,
        help=help,
        default=default,
        required=required,
        secret=secret,
        name=name,
        empty_is_default=empty_is_default,
    )
    return _field(info)


def variable(
    default: str | Missing = NOTHING,
    *,
    help: str,  # noqa: A002
    empty_is_default: bool = False,
) -> Any:
    """The name of a variable the action writes (``save_to``...); ``empty_is_default`` when ""
    means the default variable rather than none."""
    info = FieldInfo(
        kind=ParamType.STR,
        help=help,
        default=default,
        sets_variable=True,
        empty_is_default=empty_is_default,
    )
    return _field(info)


def path(default: str | Missing = NOTHING, *, help: str, required: bool = False) -> Any:  # noqa: A002
    """A file or folder path, as text."""
    return _field(FieldInfo(kind=ParamType.PATH, help=help, default=default, required=required))


def integer(default: int | Missing = NOTHING, *, help: str) -> Any:  # noqa: A002
    """A whole number."""
    return _field(FieldInfo(kind=ParamType.INT, help=help, default=default))


def flag(default: bool, *, help: str) -> Any:  # noqa: A002
    """Yes or no."""
    return _field(FieldInfo(kind=ParamType.BOOL, help=help, default=default))


def items(*, help: str, required: bool = False) -> Any:  # noqa: A002
    """A list (a YAML list, or one text split on "," or ";")."""
    return _field(FieldInfo(kind=ParamType.LIST, help=help, required=required))


def data(default: Any = NOTHING, *, help: str) -> Any:  # noqa: A002
    """Any YAML/JSON structure (conditions, headers)."""
    return _field(FieldInfo(kind=ParamType.JSON, help=help, default=default))


def choice(
    choices: type[E],
    default: E | Missing = NOTHING,
    *,
    help: str,  # noqa: A002
    only: Iterable[E] = (),
) -> Any:
    """One of an Enum's values; ``only`` narrows them when an action takes fewer."""
    info = FieldInfo(
        kind=ParamType.CHOICE,
        help=help,
        default=NOTHING if default is NOTHING else default.value,
        choices=choices,
        only=tuple(str(member.value) for member in only),
    )
    return _field(info, converter=functools.partial(_to_member, info))


def group(params: type[Any]) -> Any:
    """Parameters of another class (a login), listed in place of this field."""
    return attrs.field(metadata={_GROUP: params})


def _to_member(info: FieldInfo, value: Any) -> Any:
    """``value`` as the Enum's member; the error lists the choices."""
    assert info.choices is not None
    if value is None or isinstance(value, info.choices):
        member = value
    else:
        wanted = str(value).strip().lower()
        member = next((m for m in info.choices if str(m.value).lower() == wanted), None)
        if member is None:
            raise InvalidParameter(
                f"{value!r} is not one of {', '.join(info.choice_values)}."
            )
    if member is not None and info.only and str(member.value) not in info.only:
        raise InvalidParameter(f"{member.value!r} is not one of {', '.join(info.only)} here.")
    return member


# --- from the class to what hosts see, and back --------------------------------------------------


def params_of(params: type[Any]) -> tuple[Param, ...]:
    """The ``Param`` records a host sees, in field order (a group's fields in its place)."""
    out: list[Param] = []
    for name, metadata in params._declared:
        if _GROUP in metadata:
            out.extend(params_of(metadata[_GROUP]))
            continue
        info: FieldInfo = metadata[_PARAM]
        out.append(
            Param(
                name=info.name or name,
                type=info.kind,
                default=info.default,
                required=info.required,
                choices=info.choice_values,
                secret=info.secret,
                help=info.help,
                sets_variable=info.sets_variable,
            )
        )
    return tuple(out)


def bind(params: type[P], values: Mapping[str, Any]) -> P:
    """An instance of ``params`` from a host's mapping: a value of None means "not given"
    (the field's default); a wrong choice or a missing required value is an InvalidParameter
    naming the parameter."""
    given: dict[str, Any] = {}
    for field in _fields(params):
        inner = field.metadata.get(_GROUP)
        if inner is not None:
            given[field.name] = bind(inner, values)
            continue
        info: FieldInfo = field.metadata[_PARAM]
        value = values.get(info.name or field.name)
        if value == "" and info.empty_is_default:
            value = None
        if value is None:
            if info.required:
                raise InvalidParameter(f"parameter {field.name!r} is required ({info.help})")
            continue
        given[field.name] = value
    try:
        return params(**given)
    except InvalidParameter as exc:
        name = _failing_field(params, given)
        raise InvalidParameter(f"parameter {name!r}: {exc}" if name else str(exc)) from None


def _failing_field(params: type[Any], given: Mapping[str, Any]) -> str:
    """Which choice field refused its value (the converter does not know its own name)."""
    for field in _fields(params):
        info = field.metadata.get(_PARAM)
        if info is not None and info.choices is not None and field.name in given:
            try:
                _to_member(info, given[field.name])
            except InvalidParameter:
                return str(field.name)
    return ""


# --- the action ----------------------------------------------------------------------------------


def action_id(title: str) -> str:
    """``robomail.imap_open`` from ``IMAP Open``."""
    return f"{PLUGIN}." + re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


ErrorDecl = type[ActionFailed] | ErrorCode


def error_code(error: ErrorDecl) -> ErrorCode:
    """An ``ErrorCode`` from an error class (its code and meaning) or as given."""
    if isinstance(error, ErrorCode):
        return error
    return error.error_code()


@attrs.frozen(kw_only=True)
class Action(Generic[P]):
    """One action: its title, its parameter class, the function that runs it, its errors.

    ``run(ctx, params)`` receives an instance of ``params``; with ``uses_services`` it is
    ``run(services, ctx, params)`` (the host's credential store and token cache).
    """

    title: str
    category: str
    params: type[P]
    run: Callable[..., Any]
    errors: tuple[ErrorDecl, ...]
    description: str = ""
    loop: bool = False
    uses_services: bool = False

    @property
    def id(self) -> str:
        return action_id(self.title)

    def spec(self, services: Services | None = None) -> ActionSpec:
        """The ``ActionSpec`` a host registers, bound to this host's ``services``."""
        return ActionSpec(
            id=self.id,
            title=self.title,
            category=self.category,
            run=BoundRun(self, services),
            params=params_of(self.params),
            errors=_unique(error_code(e) for e in self.errors),
            description=self.description,
            loop=self.loop,
        )


def _unique(codes: Iterable[ErrorCode]) -> tuple[ErrorCode, ...]:
    """Each code once, the first meaning kept (an action's own wording comes first)."""
    seen: dict[str, ErrorCode] = {}
    for code in codes:
        seen.setdefault(code.code, code)
    return tuple(seen.values())


class BoundRun:
    """``ActionSpec.run``: binds the host's mapping to the action's class, then runs it."""

    __slots__ = ("action", "services")

    def __init__(self, action: Action[Any], services: Services | None) -> None:
        self.action = action
        self.services = services

    def __call__(self, ctx: ActionContext, values: Mapping[str, Any]) -> Any:
        params = bind(self.action.params, values)
        if self.action.uses_services:
            return self.action.run(self.services, ctx, params)
        return self.action.run(ctx, params)

    def __repr__(self) -> str:
        return f"run({self.action.title}: {self.action.run!r})"


# --- a subclass that changes some of its base's fields ------------------------------------------


def tailored(**changes: Mapping[str, Any]) -> Tailoring:
    """For a subclass that keeps its base's fields in their order and changes some of their
    ``help``, ``default`` or ``only`` (a login's protocol facts): ``class X(Base, tailor=...)``."""
    return Tailoring(changes)


class Tailoring:
    """Changes to some inherited fields: for the declarations as written, and for attrs (a
    ``field_transformer``) when it builds the class."""

    def __init__(self, changes: Mapping[str, Mapping[str, Any]]) -> None:
        self.changes = changes

    def metadata(self, name: str, metadata: Mapping[str, Any]) -> Mapping[str, Any]:
        if name not in self.changes:
            return metadata
        info, _default = _retuned(metadata[_PARAM], dict(self.changes[name]))
        return {**metadata, _PARAM: info}

    def __call__(self, _cls: type, fields: list[Any]) -> list[Any]:
        out = []
        for field in fields:
            if field.name in self.changes:
                info, default = _retuned(field.metadata[_PARAM], dict(self.changes[field.name]))
                evolved: dict[str, Any] = {"metadata": {**field.metadata, _PARAM: info}}
                if default is not NOTHING:
                    evolved["default"] = default
                if info.choices is not None:
                    evolved["converter"] = functools.partial(_to_member, info)
                field = field.evolve(**evolved)
            out.append(field)
        return out


def _retuned(info: FieldInfo, change: dict[str, Any]) -> tuple[FieldInfo, Any]:
    """``info`` with ``change`` applied, and the class default it implies (or NOTHING)."""
    default = change.pop("default", NOTHING)
    if "only" in change:
        change["only"] = tuple(str(member.value) for member in change["only"])
    if default is not NOTHING:
        change["default"] = default.value if isinstance(default, enum.Enum) else default
    return attrs.evolve(info, **change), default
