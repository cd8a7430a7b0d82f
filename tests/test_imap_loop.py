"""IMAP Mail Loop: every filter and `messages` choice, bodies that change the folder, and scale."""

from __future__ import annotations

import datetime as dt
import imaplib
import json
import re
import time

import pytest
from imap_helpers import client, flags_by_subject, log, logged, open_step, run, run_ok, step
from mail_fixtures import make_message

from robomail_plugin.imap.search import plan_search
from robomail_plugin.message.conditions import parse_conditions

UTC = dt.UTC


def when(y, m, d, h=12):
    return dt.datetime(y, m, d, h, 0, tzinfo=UTC)


CORPUS = [
    make_message(
        "Invoice 2024-001",
        sender="Alice Example <alice@corp.test>",
        to="team@corp.test",
        body="Please pay",
        date=when(2024, 1, 10),
    ),
    make_message(
        "Lunch?",
        sender="Bob <bob@other.test>",
        to="me@x.test",
        cc="boss@corp.test",
        body="Pizza at noon, Überraschung!",
        date=when(2024, 2, 20),
    ),
    make_message(
        "Re: Invoice 2024-001",
        sender="Carol <carol@corp.test>",
        body="Paid already",
        date=when(2024, 3, 5, 9),
        attachment=("receipt.pdf", b"%PDF" + b"x" * 40000),
    ),
    make_message(
        "Your order",
        sender="noreply@shop.test",
        body="see html",
        html="<p>Your tracking number</p>" + "<p>filler</p>" * 5000,
        date=when(2024, 3, 5, 18),
    ),
]
A, B, C, D = "Invoice 2024-001", "Lunch?", "Re: Invoice 2024-001", "Your order"


@pytest.fixture
def corpus_user(sandbox, mail_user):
    for message in CORPUS:
        sandbox.deliver(mail_user.username, message)
    return mail_user


def loop_subjects(host, sandbox, user, **loop_params):
    result = run_ok(
        host,
        [
            open_step(sandbox, user),
            step("IMAP Mail Loop", do=[log("S:{json:Msg.subject}")], **loop_params),
        ],
    )
    return logged(result)


CONDITION_CASES = [
    ([{"field": "from", "op": "contains", "value": "corp.test"}], "all", [A, C]),
    ([{"field": "from", "op": "not_contains", "value": "CORP.test"}], "all", [B, D]),
    ([{"field": "to", "op": "contains", "value": "team"}], "all", [A]),
    ([{"field": "cc", "op": "contains", "value": "boss"}], "all", [B]),
    ([{"field": "subject", "op": "equals", "value": "lunch?"}], "all", [B]),
    ([{"field": "subject", "op": "starts_with", "value": "RE:"}], "all", [C]),
    ([{"field": "subject", "op": "ends_with", "value": "001"}], "all", [A, C]),
    ([{"field": "subject", "op": "matches", "value": r"^invoice \d{4}"}], "all", [A]),
    ([{"field": "body", "op": "contains", "value": "pizza"}], "all", [B]),
    ([{"field": "body", "op": "contains", "value": "überraschung"}], "all", [B]),
    ([{"field": "body", "op": "matches", "value": r"paid\s+already"}], "all", [C]),
    ([{"field": "text", "op": "contains", "value": "tracking"}], "all", [D]),
    ([{"field": "date", "op": "before", "value": "2024-02-01"}], "all", [A]),
    ([{"field": "date", "op": "after", "value": "2024-02-20"}], "all", [C, D]),
    ([{"field": "date", "op": "on", "value": "5-Mar-2024"}], "all", [C, D]),
    ([{"field": "size", "op": "larger", "value": "30K"}], "all", [C, D]),
    ([{"field": "size", "op": "smaller", "value": 30000}], "all", [A, B]),
    ([{"field": "has_attachment", "op": "equals", "value": True}], "all", [C]),
    ([{"field": "has_attachment", "op": "equals", "value": False}], "all", [A, B, D]),
    (
        [
            {"field": "subject", "op": "contains", "value": "lunch"},
            {"field": "from", "op": "contains", "value": "noreply"},
        ],
        "any",
        [B, D],
    ),
    (
        [
            {"field": "subject", "op": "matches", "value": "^your"},
            {"field": "from", "op": "contains", "value": "bob"},
        ],
        "any",
        [B, D],
    ),
    (
        [
            {"field": "from", "op": "contains", "value": "corp"},
            {"field": "subject", "op": "starts_with", "value": "re"},
        ],
        "all",
        [C],
    ),
    (
        [
            {"field": "from", "op": "contains", "value": "corp"},
            {"field": "date", "op": "after", "value": "2024-01-10"},
            {"field": "size", "op": "larger", "value": "1K"},
        ],
        "all",
        [C],
    ),
]


@pytest.mark.parametrize(("conditions", "match", "expected"), CONDITION_CASES)
def test_conditions(host, sandbox, corpus_user, conditions, match, expected):
    assert loop_subjects(host, sandbox, corpus_user, conditions=conditions, match=match) == expected


def test_conditions_as_json_text_from_a_variable(host, sandbox, corpus_user):
    conds = json.dumps([{"field": "subject", "op": "contains", "value": "invoice"}])
    result = run_ok(
        host,
        [
            open_step(sandbox, corpus_user),
            step("IMAP Mail Loop", conditions="{Conds}", do=[log("S:{json:Msg.subject}")]),
        ],
        variables={"Conds": conds},
    )
    assert logged(result) == [A, C]


def test_bad_condition_is_invalid_parameter(host, sandbox, corpus_user):
    result = run(
        host,
        [
            open_step(sandbox, corpus_user),
            step(
                "IMAP Mail Loop",
                conditions=[{"field": "colour", "op": "contains", "value": "x"}],
                do=[],
            ),
        ],
    )
    assert result.error.code == "invalid_parameter"
    assert "condition 1" in result.error.description


def test_search_plan_sends_what_search_can_express():
    conds = parse_conditions(
        [
            {"field": "from", "op": "contains", "value": "corp"},
            {"field": "subject", "op": "equals", "value": "Lunch?"},
            {"field": "subject", "op": "matches", "value": "x+"},
            {"field": "size", "op": "larger", "value": "1K"},
            {"field": "date", "op": "after", "value": "2024-01-10"},
        ]
    )
    plan = plan_search("unseen", conds)
    assert plan.criteria == [
        "UNSEEN",
        "FROM",
        b"corp",
        "SUBJECT",
        b"Lunch?",
        "LARGER",
        1024,
        "SENTSINCE",
        dt.date(2024, 1, 11),
    ]
    assert [c.op for c in plan.client.items] == ["equals", "matches"]
    anyplan = plan_search(
        "all",
        parse_conditions(
            [
                {"field": "from", "op": "contains", "value": "a"},
                {"field": "to", "op": "not_contains", "value": "b"},
                {"field": "cc", "op": "contains", "value": "c"},
            ],
            "any",
        ),
    )
    assert anyplan.criteria == ["OR", "FROM", b"a", "OR", "NOT", "TO", b"b", "CC", b"c"]
    assert not anyplan.client


@pytest.fixture
def flagged_user(sandbox, mail_user):
    """m0 seen, m1 seen+flagged, m2 answered, m3 deleted, m4 plain; n0/n1 arrive later (new)."""
    for i in range(5):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    with client(sandbox, mail_user) as c:
        c.add_flags([1], ["\\Seen"])
        c.add_flags([2], ["\\Seen", "\\Flagged"])
        c.add_flags([3], ["\\Answered"])
        c.add_flags([4], ["\\Deleted"])
    for i in range(2):
        sandbox.deliver(mail_user.username, make_message(f"n{i}"))
    return mail_user


MESSAGES_CASES = {
    "all": ["m0", "m1", "m2", "m3", "m4", "n0", "n1"],
    "unseen": ["m2", "m3", "m4", "n0", "n1"],
    "seen": ["m0", "m1"],
    "flagged": ["m1"],
    "unflagged": ["m0", "m2", "m3", "m4", "n0", "n1"],
    "answered": ["m2"],
    "unanswered": ["m0", "m1", "m3", "m4", "n0", "n1"],
    "deleted": ["m3"],
    "undeleted": ["m0", "m1", "m2", "m4", "n0", "n1"],
    "new": ["n0", "n1"],
}


def test_every_messages_choice(host, sandbox, flagged_user):
    steps = [open_step(sandbox, flagged_user)]
    for choice in MESSAGES_CASES:
        steps.append(
            step("IMAP Mail Loop", messages=choice, do=[log(f"{choice}:{{json:Msg.subject}}")])
        )
    result = run_ok(host, steps)
    for choice, expected in MESSAGES_CASES.items():
        assert logged(result, choice) == expected, choice


def test_order_max_messages_and_raw_search(host, sandbox, mail_user):
    for i in range(6):
        sandbox.deliver(
            mail_user.username, make_message(f"m{i}", to="a@x.test" if i % 2 else "b@x.test")
        )
    assert loop_subjects(host, sandbox, mail_user, order="newest", max_messages=2) == ["m5", "m4"]
    assert loop_subjects(host, sandbox, mail_user, raw_search='TO "a@x.test"') == ["m1", "m3", "m5"]
    assert loop_subjects(
        host,
        sandbox,
        mail_user,
        raw_search="UID 2:4",
        conditions=[{"field": "to", "op": "contains", "value": "b@"}],
    ) == ["m2"]
    result = run(
        host,
        [open_step(sandbox, mail_user), step("IMAP Mail Loop", raw_search="NOSUCHKEY x", do=[])],
    )
    assert result.error.code == "server_error"
    assert result.error.server_reply


def test_include_body_and_message_info(host, sandbox, mail_user):
    sandbox.deliver(
        mail_user.username,
        make_message(
            "=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
            sender="Zoë <zoe@x.test>",
            body="Hallo Welt",
            attachment=("r.txt", b"abc"),
        ),
    )
    steps = [
        open_step(sandbox, mail_user),
        step("IMAP Mail Loop", save_to="Head", do=[]),
        step("IMAP Mail Loop", include_body=True, save_to="Full", do=[]),
    ]
    result = run_ok(host, steps)
    head = json.loads(result.variables["Head"])
    full = json.loads(result.variables["Full"])
    assert head["subject"] == "Grüße" and head["from_name"] == "Zoë"
    assert head["uid"] == 1 and head["number"] == 1 and head["folder"] == "INBOX"
    assert head["seen"] is False and head["size"] == full["size"] > 0
    assert "body_text" not in head and head["has_attachments"] is True
    assert full["body_text"].strip() == "Hallo Welt"
    assert full["attachments"] == [
        {"name": "r.txt", "size": 3, "content_type": "application/octet-stream"}
    ]


@pytest.mark.parametrize("mark_seen", [False, True])
def test_mark_seen(host, sandbox, mail_user, mark_seen):
    for i in range(3):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    result = run_ok(
        host,
        [
            open_step(sandbox, mail_user),
            step(
                "IMAP Mail Loop",
                mark_seen=mark_seen,
                include_body=True,
                do=[log("S:{json:Msg.seen}")],
            ),
        ],
    )
    assert logged(result) == [str(mark_seen)] * 3
    flags = flags_by_subject(sandbox, mail_user)
    assert all(("\\Seen" in f) == mark_seen for f in flags.values())


def test_loop_that_flags_deletes_and_counts(host, sandbox, mail_user):
    for i in range(7):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    steps = [
        open_step(sandbox, mail_user),
        step(
            "IMAP Mail Loop",
            do=[
                step("IMAP Set Message Flags", uid="{json:Msg.uid}", flags="\\Deleted \\Seen"),
                step("IMAP Delete Marked Messages", uids="{json:Msg.uid}"),
                log("S:{json:Msg.subject}"),
            ],
        ),
        step("IMAP Folder Info", save_to="I"),
    ]
    result = run_ok(host, steps)
    assert logged(result) == [f"m{i}" for i in range(7)]
    assert json.loads(result.variables["I"])["total"] == 0


def test_loop_that_moves_every_message(host, sandbox, mail_user):
    for i in range(5):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    steps = [
        open_step(sandbox, mail_user),
        step(
            "IMAP Mail Loop",
            do=[
                step(
                    "IMAP Move Message",
                    uid="{json:Msg.uid}",
                    destination="Archive/2024",
                    create_if_missing=True,
                    save_new_uid_to="New",
                ),
                log("S:{json:Msg.uid}->{New}"),
            ],
        ),
    ]
    result = run_ok(host, steps)
    assert logged(result) == [f"{i}->{i}" for i in range(1, 6)]
    assert flags_by_subject(sandbox, mail_user) == {}
    assert set(flags_by_subject(sandbox, mail_user, "Archive/2024")) == {f"m{i}" for i in range(5)}


def test_nested_loops_over_two_folders(host, sandbox, mail_user):
    for i in range(2):
        sandbox.deliver(mail_user.username, make_message(f"in{i}"))
    with client(sandbox, mail_user) as c:
        c.create_folder("Other")
        for i in range(2):
            c.append("Other", make_message(f"out{i}"))
    steps = [
        open_step(sandbox, mail_user),
        step(
            "IMAP Mail Loop",
            folder="INBOX",
            save_to="Outer",
            do=[
                step(
                    "IMAP Mail Loop",
                    folder="Other",
                    save_to="Inner",
                    do=[log("S:{json:Outer.subject}/{json:Inner.subject}")],
                ),
                step("IMAP Set Message Flags", uid="{json:Outer.uid}", flags="\\Flagged"),
            ],
        ),
    ]
    result = run_ok(host, steps)
    assert logged(result) == ["in0/out0", "in0/out1", "in1/out0", "in1/out1"]
    assert flags_by_subject(sandbox, mail_user) == {"in0": {"\\Flagged"}, "in1": {"\\Flagged"}}
    assert flags_by_subject(sandbox, mail_user, "Other") == {"out0": set(), "out1": set()}


def test_empty_folder_skips_the_body(host, sandbox, mail_user):
    result = run_ok(
        host, [open_step(sandbox, mail_user), step("IMAP Mail Loop", do=[log("S:never")])]
    )
    assert logged(result) == []


class _WireCounter:
    """Counts the IMAP commands actually written to the socket, by command name."""

    def __init__(self, monkeypatch):
        self.lines: list[bytes] = []
        real_send = imaplib.IMAP4.send

        def send(conn, data):
            self.lines.append(bytes(data))
            return real_send(conn, data)

        monkeypatch.setattr(imaplib.IMAP4, "send", send)

    def count(self, pattern: bytes) -> int:
        rx = re.compile(rb"^[A-Z]+\d+ " + pattern)
        return sum(1 for line in self.lines if rx.match(line))


def test_large_mailbox_fetches_in_batches(host, sandbox, mail_user, monkeypatch):
    total = 3000
    sandbox.seed(
        mail_user.username,
        [make_message(f"bulk {i}", body=f"message number {i}\n" * 5) for i in range(total)],
    )
    counter = _WireCounter(monkeypatch)
    started = time.monotonic()
    result = run_ok(
        host,
        [
            open_step(sandbox, mail_user),
            step("IMAP Mail Loop", save_to="M", do=[]),
            step("IMAP Mail Loop", include_body=True, max_messages=1000, save_to="B", do=[]),
        ],
    )
    elapsed = time.monotonic() - started
    assert json.loads(result.variables["M"])["uid"] == total
    assert json.loads(result.variables["B"])["body_text"].startswith("message number 999")
    batches = -(-total // 200)
    # loop 1: one UID FETCH per 200 headers; loop 2 stops after 1000 messages: 5 batches, each
    # one metadata fetch plus one body fetch (the bodies are small)
    assert counter.count(rb"UID FETCH ") == batches + 5 * 2
    assert counter.count(rb"UID SEARCH ") == 2
    assert elapsed < 30
    assert "3000 message(s) processed" in "\n".join(result.log)


def test_headers_loop_fetches_only_the_info_headers(host, sandbox, mail_user, monkeypatch, tmp_path):
    """Trace, DKIM and list headers are most of a real header: the loop leaves them on the
    server, and its Message info is the same as Parse Email's of the whole message."""
    trace = (
        "Return-Path: <list@lists.test>\r\n"
        "Received: from mx.lists.test (mx.lists.test [192.0.2.7])\r\n"
        "\tby mail.example.test with ESMTPS; Mon, 4 Mar 2024 10:00:00 +0000\r\n"
        "DKIM-Signature: v=1; a=rsa-sha256; d=lists.test; s=k1; b=" + "Q" * 600 + "\r\n"
        "List-Unsubscribe: <mailto:leave@lists.test>\r\n"
        "Cc: =?utf-8?q?J=C3=B6rg?= <joerg@x.test>, \"Doe, Jane\" <jane@x.test>\r\n"
        "Reply-To: Replies <replies@lists.test>\r\n"
    ).encode()
    message = trace + make_message(
        "=?utf-8?q?Gr=C3=BC=C3=9Fe?= from the list",
        sender="=?utf-8?q?Zo=C3=AB?= <zoe@x.test>",
        attachment=("r.txt", b"abc"),
    )
    sandbox.deliver(mail_user.username, message)
    path = tmp_path / "m.eml"
    path.write_bytes(message)
    counter = _WireCounter(monkeypatch)
    result = run_ok(
        host,
        [
            open_step(sandbox, mail_user),
            step("IMAP Mail Loop", save_to="Head", do=[]),
            step("Parse Email", file=str(path), save_to="Parsed"),
        ],
    )
    fetches = [line for line in counter.lines if b"UID FETCH" in line]
    assert len(fetches) == 1
    assert b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM TO CC REPLY-TO SUBJECT DATE" in fetches[0]
    head = json.loads(result.variables["Head"])
    parsed = json.loads(result.variables["Parsed"])
    for field in ("message_id", "from", "from_address", "from_name", "to", "cc", "reply_to",
                  "subject", "date", "date_iso", "has_attachments"):
        assert head[field] == parsed[field], field
    assert head["subject"] == "Grüße from the list" and head["cc"].startswith("Jörg")
    assert head["reply_to"] == "Replies <replies@lists.test>"
    # the size is the whole stored message's (delivery adds its own trace headers)
    assert head["size"] >= len(message)
