"""Small pure pieces of the IMAP actions: UID lists, flags, COPYUID, server replies."""

from __future__ import annotations

import pytest

from robomail_plugin import errors
from robomail_plugin.imap.commands import parse_copyuid, parse_flags
from robomail_plugin.imap.search import messages_keys, parse_uids
from robomail_plugin.imap.session import server_reply


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, [7]),
        ("7", [7]),
        ("1,3, 5", [1, 3, 5]),
        (["2", "4"], [2, 4]),
        ("1:5", ["1:5"]),
        ("10:*", ["10:*"]),
        ("3-4", ["3:4"]),
        (["1:2", 9], ["1:2", 9]),
    ],
)
def test_parse_uids(value, expected):
    assert parse_uids(value) == expected


@pytest.mark.parametrize("value", ["", None, [], "abc", "0", "1:x", "-3"])
def test_parse_uids_rejects(value):
    with pytest.raises(errors.InvalidParameter):
        parse_uids(value)


def test_parse_flags_normalises_system_flags_and_keeps_keywords():
    assert parse_flags("\\seen \\FLAGGED $Work, Todo \\Seen") == [
        "\\Seen", "\\Flagged", "$Work", "Todo"]
    assert parse_flags(["\\Draft"]) == ["\\Draft"]
    with pytest.raises(errors.InvalidParameter, match="system flag"):
        parse_flags("\\Recent")
    with pytest.raises(errors.InvalidParameter, match="keyword"):
        parse_flags("two%words")


def test_parse_copyuid():
    assert parse_copyuid("[COPYUID 1700000 3:5,9 20:23] Moved UIDs.") == {
        3: 20, 4: 21, 5: 22, 9: 23}
    assert parse_copyuid("1700000 4 8") == {4: 8}  # imaplib's untagged response code data
    assert parse_copyuid("OK Copy completed.") == {}
    assert parse_copyuid("[COPYUID 1 1:3 5:6]") == {}  # lengths differ: trust nothing


def test_messages_keys():
    assert messages_keys("all") == []
    assert messages_keys("NEW") == ["NEW"]
    with pytest.raises(errors.InvalidParameter, match="unseen"):
        messages_keys("unread")


def test_server_reply_strips_library_wrapping():
    exc = Exception("SEARCH command error: BAD [b'Error in IMAP command: Unknown argument X']")
    assert server_reply(exc) == "BAD Error in IMAP command: Unknown argument X"
    exc = Exception('b"Missing \')\'"\n\nThis error may have been caused by ...')
    assert server_reply(exc) == "Missing ')'"
