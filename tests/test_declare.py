"""The action kit: a parameter class is the one place an action's parameters are described."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from robomail_plugin import errors
from robomail_plugin.declare import (
    Action,
    Parameters,
    bind,
    choice,
    data,
    flag,
    group,
    integer,
    items,
    params_of,
    path,
    tailored,
    text,
    variable,
)
from robomail_plugin.host_kit import bind_params
from robomail_plugin.schema import NOTHING, ConnectionNotOpen, ErrorCode, ParamType
from robomail_plugin.shared_params import Auth, ImapLogin, Pop3Login, Security, SmtpLogin


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Inner(Parameters):
    host: str = text(required=True, help="Host.")
    tries: int = integer(3, help="Tries.")


class Example(Parameters):
    name: str = text(required=True, help="A name.")
    inner: Inner = group(Inner)
    colour: Colour = choice(Colour, Colour.GREEN, help="A colour.", only=(Colour.RED, Colour.GREEN))
    secret: str | None = text(secret=True, help="Secret.")
    loud: bool = flag(False, help="Loud.")
    where: str | None = path(help="A path.")
    uids: list[str] | None = items(help="UIDs.")
    extra: Any = data(help="Anything.")
    save_to: str | None = variable("Out", help="Variable.")
    sender: str | None = text(name="from", help="Sender.")


def test_the_class_gives_the_params_a_host_sees_in_field_order() -> None:
    params = params_of(Example)
    assert [p.name for p in params] == [
        "name", "host", "tries", "colour", "secret", "loud", "where", "uids", "extra", "save_to",
        "from",
    ]
    by_name = {p.name: p for p in params}
    assert by_name["name"].required and not by_name["name"].has_default
    assert by_name["tries"].type is ParamType.INT and by_name["tries"].default == 3
    assert by_name["colour"].choices == ("red", "green")  # `only` narrows the Enum
    assert by_name["colour"].default == "green"
    assert by_name["secret"].secret and by_name["secret"].default is NOTHING
    assert by_name["loud"].type is ParamType.BOOL and by_name["loud"].default is False
    assert by_name["where"].type is ParamType.PATH
    assert by_name["uids"].type is ParamType.LIST
    assert by_name["extra"].type is ParamType.JSON
    assert by_name["save_to"].sets_variable and by_name["save_to"].default == "Out"


def test_bind_fills_defaults_converts_choices_and_builds_groups() -> None:
    bound = bind(Example, {"name": "n", "host": "h", "colour": "RED", "from": "a@b.example"})
    assert bound.inner == Inner(host="h", tries=3)
    assert bound.colour is Colour.RED
    assert bound.save_to == "Out" and bound.secret is None and bound.sender == "a@b.example"


def test_bind_takes_what_the_host_binder_produced() -> None:
    """hostsim (and host_kit) bind task values first; the class then takes them as they are."""
    raw = {"name": "n", "host": "h", "tries": "5", "loud": "yes", "uids": "1,2"}
    bound = bind(Example, bind_params(params_of(Example), raw))
    assert (bound.inner.tries, bound.loud, bound.uids) == (5, True, ["1", "2"])


@pytest.mark.parametrize(
    ("values", "wording"),
    [
        ({"host": "h"}, "parameter 'name' is required"),
        ({"name": "n"}, "parameter 'host' is required"),
        ({"name": "n", "host": "h", "colour": "mauve"}, "parameter 'colour': 'mauve' is not one"),
        ({"name": "n", "host": "h", "colour": "blue"}, "'blue' is not one of red, green here"),
    ],
)
def test_bad_values_are_invalid_parameter_errors_naming_the_parameter(
    values: dict[str, Any], wording: str
) -> None:
    with pytest.raises(errors.InvalidParameter, match=wording):
        bind(Example, values)


def test_a_secret_field_stays_out_of_the_repr() -> None:
    bound = bind(Example, {"name": "n", "host": "h", "secret": "hunter2"})
    assert "hunter2" not in repr(bound)


def test_each_protocol_login_keeps_the_fields_in_order_with_its_own_facts() -> None:
    names = [p.name for p in params_of(ImapLogin)]
    assert names == [p.name for p in params_of(SmtpLogin)] == [p.name for p in params_of(Pop3Login)]
    imap = {p.name: p for p in params_of(ImapLogin)}
    smtp = {p.name: p for p in params_of(SmtpLogin)}
    assert imap["server"].help.startswith("IMAP ") and smtp["server"].help.startswith("SMTP ")
    assert "993/143" in imap["port"].help and "465/587" in smtp["port"].help
    assert (imap["security"].default, smtp["security"].default) == ("ssl", "starttls")
    assert imap["auth"].choices == ("password", "oauth")
    assert smtp["auth"].choices == ("password", "oauth", "none")
    assert bind(SmtpLogin, {"server": "s"}).security is Security.STARTTLS
    assert bind(SmtpLogin, {"server": "s", "auth": "none"}).auth is Auth.NONE
    with pytest.raises(errors.InvalidParameter, match="'none' is not one of password, oauth"):
        bind(ImapLogin, {"server": "s", "auth": "none"})


def test_tailored_changes_a_base_field_without_moving_it() -> None:
    class Tuned(Inner, tailor=tailored(tries={"default": 9, "help": "More."})):
        pass

    params = params_of(Tuned)
    assert [p.name for p in params] == ["host", "tries"]
    assert (params[1].default, params[1].help) == (9, "More.")
    assert Tuned(host="h").tries == 9
    assert params_of(Inner)[1].default == 3  # the base is unchanged


def _copy(ctx: Any, params: Example) -> str:
    return f"{ctx}:{params.name}:{params.inner.host}"


def test_an_action_derives_its_spec_and_runs_with_a_typed_instance() -> None:
    action = Action(
        title="Demo Copy Thing",
        category="Email",
        params=Example,
        run=_copy,
        errors=(
            errors.ConnectFailed,
            errors.InvalidParameter.because("The name is missing."),
            errors.InvalidParameter,  # a repeated code keeps the first wording
            ConnectionNotOpen,
        ),
    )
    spec = action.spec()
    assert spec.id == "robomail.demo_copy_thing"
    assert [p.name for p in spec.params] == [p.name for p in params_of(Example)]
    assert spec.errors == (
        ErrorCode(code="connect_failed", meaning=errors.ConnectFailed.meaning),
        ErrorCode(code="invalid_parameter", meaning="The name is missing."),
        ErrorCode(code="connection_not_open", meaning=ConnectionNotOpen.meaning),
    )
    assert spec.run("ctx", {"name": "n", "host": "h"}) == "ctx:n:h"


def test_an_action_that_uses_services_gets_the_hosts_services_first() -> None:
    seen: list[Any] = []
    action = Action(
        title="Demo Services",
        category="Email",
        params=Inner,
        run=lambda services, ctx, params: seen.append((services, ctx, params)),
        errors=(),
        uses_services=True,
    )
    action.spec(services="svc").run("ctx", {"host": "h"})
    assert seen == [("svc", "ctx", Inner(host="h"))]


def test_every_error_class_says_what_its_code_means() -> None:
    classes = [
        cls for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.RobomailError)
    ]
    assert len(classes) > 15
    for cls in classes:
        code = cls.error_code()
        assert code.code == cls.default_code
        if cls is not errors.RobomailError:  # each says its own, not the base's
            assert code.meaning and code.meaning != errors.RobomailError.meaning, cls


def test_an_empty_value_means_the_default_only_where_the_field_says_so() -> None:
    class Named(Parameters):
        connection: str = text("IMAP", help="Connection.", empty_is_default=True)
        save_to: str = variable("Msg", help="Variable.", empty_is_default=True)
        folder: str = text("INBOX", help="Folder; empty = none.")

    bound = bind(Named, {"connection": "", "save_to": "", "folder": ""})
    assert (bound.connection, bound.save_to, bound.folder) == ("IMAP", "Msg", "")


def test_a_choice_left_at_its_default_is_the_enum_member_too() -> None:
    bound = bind(Example, {"name": "n", "host": "h"})
    assert bound.colour is Colour.GREEN
    assert bind(ImapLogin, {"server": "s"}).auth is Auth.PASSWORD
