"""Conditions: validation with clear errors, and evaluation against Message info."""

from __future__ import annotations

import datetime as dt

import pytest

from robomail_plugin.errors import InvalidParameter
from robomail_plugin.message.conditions import parse_conditions, parse_date, parse_size

INFO = {
    "from": "Zoë Q. <Zoe@Example.test>", "to": "bob@example.test, Carol <carol@example.test>",
    "cc": "", "subject": "Invoice 2024-17 for March", "date": "Mon, 01 Jan 2024 23:30:00 -0500",
    "date_iso": "2024-01-01T23:30:00-05:00", "size": 5000, "has_attachments": True,
    "body_text": "Please pay by Friday.", "body_html": "",
}


def check(field, op, value, match="all"):
    return parse_conditions([{"field": field, "op": op, "value": value}], match).matches(INFO)


@pytest.mark.parametrize(("field", "op", "value", "expected"), [
    ("subject", "contains", "INVOICE", True),
    ("subject", "not_contains", "invoice", False),
    ("subject", "equals", "invoice 2024-17 for march", True),
    ("subject", "starts_with", "Invoice", True),
    ("subject", "ends_with", "march", True),
    ("subject", "matches", r"invoice \d{4}-\d+", True),
    ("subject", "matches", r"^march", False),
    ("from", "equals", "zoe@example.test", True),
    ("from", "equals", "zoë q.", True),
    ("from", "ends_with", "@example.test", True),
    ("to", "equals", "carol@example.test", True),
    ("to", "contains", "dave", False),
    ("cc", "contains", "x", False),
    ("body", "contains", "friday", True),
    ("text", "contains", "carol", True),
    ("text", "contains", "pay by", True),
    ("date", "on", "2024-01-01", True),  # the sender's own day, as IMAP SENTON
    ("date", "before", "2024-01-02", True),
    ("date", "after", "31-Dec-2023", True),
    ("date", "after", "2024-01-01", False),
    ("size", "larger", "4K", True),
    ("size", "smaller", 5000, False),
    ("has_attachment", "equals", "yes", True),
    ("has_attachment", "equals", False, False),
])
def test_each_operator(field, op, value, expected):
    assert check(field, op, value) is expected


def test_all_and_any():
    conds = [{"field": "subject", "op": "contains", "value": "invoice"},
             {"field": "from", "op": "contains", "value": "nobody"}]
    assert parse_conditions(conds, "all").matches(INFO) is False
    assert parse_conditions(conds, "any").matches(INFO) is True
    assert parse_conditions(None).matches(INFO) is True
    assert parse_conditions("").matches(INFO) is True


def test_json_text_and_single_mapping_are_accepted():
    c = parse_conditions('[{"field": "subject", "op": "contains", "value": "march"}]')
    assert c.matches(INFO)
    assert parse_conditions({"field": "size", "op": "larger", "value": 1}).matches(INFO)


def test_needs_body():
    assert not parse_conditions([{"field": "subject", "op": "contains", "value": "x"},
                                 {"field": "size", "op": "larger", "value": 1}]).needs_body
    for field in ("body", "text"):
        assert parse_conditions([{"field": field, "op": "contains", "value": "x"}]).needs_body
    assert parse_conditions([{"field": "has_attachment", "value": True}]).needs_body


def test_date_without_date_header_never_matches():
    c = parse_conditions([{"field": "date", "op": "before", "value": "today"}])
    assert c.matches({"date": "", "date_iso": None}) is False


@pytest.mark.parametrize(("raw", "message"), [
    ([{"field": "colour", "op": "equals", "value": "x"}], "condition 1: field 'colour'"),
    ([{"field": "subject", "op": "equals", "value": "x"}, {"field": "size", "op": "contains",
      "value": 1}], "condition 2: op 'contains' does not apply to field 'size'"),
    ([{"field": "subject", "op": "matches", "value": "(["}], "not a valid regular expression"),
    ([{"field": "date", "op": "on", "value": "someday"}], "is not a date such as"),
    ([{"field": "size", "op": "larger", "value": "huge"}], "is not a number of bytes"),
    ([{"field": "subject", "op": "contains"}], "condition 1: a value is required"),
    ([{"field": "subject", "op": "contains", "value": "x", "extra": 1}], "unknown key(s) extra"),
    (["subject contains x"], "condition 1 must be a mapping"),
    ("[not json", "not valid JSON"),
    (42, "must be a list"),
])
def test_invalid_conditions_name_the_entry(raw, message):
    with pytest.raises(InvalidParameter) as info:
        parse_conditions(raw)
    assert message in str(info.value)
    assert info.value.code == "invalid_parameter"


def test_invalid_match():
    with pytest.raises(InvalidParameter, match="match must be 'all' or 'any'"):
        parse_conditions([], "some")


def test_date_and_size_forms():
    today = dt.date(2024, 3, 10)
    assert parse_date("yesterday", today=today) == dt.date(2024, 3, 9)
    assert parse_date("7 days ago", today=today) == dt.date(2024, 3, 3)
    assert parse_date("2024-03-01T10:00:00+02:00") == dt.date(2024, 3, 1)
    assert parse_date("1-Feb-2024") == dt.date(2024, 2, 1)
    assert parse_size("2M") == 2 * 1024 * 1024
    assert parse_size("100 KB") == 100 * 1024
