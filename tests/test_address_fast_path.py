"""The From header's quick split gives what the stdlib's address parser gives.

``message_info.addresses`` splits the usual one-address forms (``Name <local@domain>``,
``local@domain``) itself, because ``email.utils.getaddresses`` is a tenth of an IMAP loop's
time; everything else goes to the stdlib. Whatever the quick split accepts must come out exactly
as the stdlib's parser has it.
"""

from __future__ import annotations

import email.utils
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from robomail_plugin.message import info as message_info
from robomail_plugin.message.info import _SIMPLE_ADDRESS_RE, addresses

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
# every character that can appear in a From header's simple forms, and the ones that must not
PIECES = st.text(alphabet=ATEXT + ". \t<>@\"(),;:[]\\", min_size=0, max_size=40)
atom = st.text(alphabet=ATEXT, min_size=1, max_size=8)
domain = st.lists(st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1,
                          max_size=8), min_size=1, max_size=3).map(".".join)
local = st.lists(atom, min_size=1, max_size=3).map(".".join)
address = st.builds(lambda lp, d: f"{lp}@{d}", local, domain)
name = st.lists(st.text(alphabet=ATEXT + ".", min_size=1, max_size=8), min_size=0,
                max_size=4).map(" ".join)
space = st.sampled_from(["", " ", "  ", "\t"])
usual = st.one_of(
    st.builds(lambda s1, n, s2, a, s3: f"{s1}{n}{s2}<{a}>{s3}", space, name, space, address,
              space),
    st.builds(lambda s1, a, s2: f"{s1}{a}{s2}", space, address, space),
)


def _both(value: str):
    return addresses(value), [
        (message_info.decode_header_value(n), a)
        for n, a in email.utils.getaddresses([value]) if n or a
    ]


@settings(max_examples=600, deadline=None)
@given(usual)
@example("John   Q. Public <jqp@example.test>")
@example("=?utf-8?q?Zo=C3=AB?= <zoe@example.test>")
@example(".x <a@b>")
def test_the_usual_forms_split_as_the_stdlib_splits_them(value):
    ours, stdlib = _both(value)
    assert ours == stdlib


@settings(max_examples=600, deadline=None)
@given(PIECES)
def test_anything_the_quick_split_accepts_agrees_with_the_stdlib(value):
    if _SIMPLE_ADDRESS_RE.fullmatch(value) is None:
        return  # the stdlib's parser handles it (test_the_rest_goes_to_the_stdlib)
    ours, stdlib = _both(value)
    assert ours == stdlib


@pytest.mark.parametrize("value", [
    "Sender 3 <sender3@example.test>", "alice@corp.test", "<a@b.test>",
    "O'Brien <o@x.test>", "=?utf-8?q?Zo=C3=AB?= <zoe@x.test>",
])
def test_the_usual_forms_take_the_quick_split(value):
    assert _SIMPLE_ADDRESS_RE.fullmatch(value) is not None


@pytest.mark.parametrize("value", [
    '"Doe, John" <j@x.test>', "a@b.test, c@d.test", "Name (comment) <a@b.test>",
    "undisclosed-recipients:;", "<@route.test:a@b.test>", "a@[192.0.2.1]", "",
])
def test_the_rest_goes_to_the_stdlib(value):
    assert _SIMPLE_ADDRESS_RE.fullmatch(value) is None
    ours, stdlib = _both(value)
    assert ours == stdlib
