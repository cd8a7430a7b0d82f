"""Every POP3 action against the real Dovecot, with password and OAuth, over POP3S and STLS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from corpus import hostile_names, simple
from corpus.mailtest import add_oauth_record, append, new_user, pop3_params, run, var

from hostsim.runtime.host import Host


@pytest.fixture(scope="module")
def user(sandbox):
    return new_user(sandbox)


@pytest.fixture
def host(tmp_path, sandbox, user):
    sandbox.clear(user[0])
    return Host.load(home=tmp_path / "hostsim")


def three(sandbox, user):
    sandbox.seed(user[0], [simple(subject=f"Message {i}", body=f"body {i}\n",
                                  message_id=f"<m{i}@example.test>",
                                  attachments=[("a.txt", b"A")] if i == 2 else None)
                           for i in (1, 2, 3)])


@pytest.mark.parametrize(("security", "auth"), [
    ("ssl", None), ("starttls", None), ("ssl", "xoauth2"), ("starttls", "oauthbearer")])
def test_open_count_loop_close(host, sandbox, user, fake_provider, security, auth):
    three(sandbox, user)
    if auth:
        add_oauth_record(fake_provider, user[0])
    params = pop3_params(sandbox, user, security=security, oauth=auth)
    result = run(host, [
        {"action": "POP3 Open", "params": {**params, "save_count_to": "N"}},
        {"action": "POP3 Messages Count", "params": {"save_count_to": "C", "save_size_to": "S"}},
        {"action": "POP3 Mail Loop", "params": {"save_to": "Msg"}, "do": [
            append("Seen", "{json:Msg.subject}")]},
        {"action": "POP3 Close"},
    ], Seen="")
    assert result.ok, result.error
    assert result.variables["N"] in (3, "3") and result.variables["C"] in (3, "3")
    assert int(result.variables["S"]) > 300
    assert result.variables["Seen"] == "|Message 1|Message 2|Message 3"
    msg = var(result, "Msg")
    assert msg["number"] == 3 and msg["uid"] and msg["message_id"] == "<m3@example.test>"
    assert "body_text" not in msg  # headers only (TOP n 0) by default
    assert not any(user[1] in line for line in result.log)


def test_loop_whole_newest_first_with_conditions_and_max(host, sandbox, user):
    three(sandbox, user)
    params = pop3_params(sandbox, user)
    result = run(host, [
        {"action": "POP3 Open", "params": params},
        {"action": "POP3 Mail Loop", "params": {
            "order": "newest", "retrieve": "whole", "max_messages": 1,
            "conditions": [{"field": "subject", "op": "starts_with", "value": "message"},
                           {"field": "body", "op": "not_contains", "value": "body 3"}]},
         "do": [append("Got", "{json:Msg.number}")]},
        {"action": "POP3 Mail Loop", "params": {
            "save_to": "Att",
            "conditions": [{"field": "has_attachment", "op": "equals", "value": True}]},
         "do": [{"action": "Set Variable", "params": {"name": "Files",
                                                      "value": "{json:Att.attachments[0].name}"}}]},
    ], Got="")
    assert result.ok, result.error
    assert result.variables["Got"] == "|2"
    assert result.variables["Files"] == "a.txt"  # has_attachment fetched whole messages
    assert var(result, "Msg")["body_text"] == "body 2\n"


def test_bad_condition_is_a_clear_error(host, sandbox, user):
    result = run(host, [
        {"action": "POP3 Open", "params": pop3_params(sandbox, user)},
        {"action": "POP3 Mail Loop", "params": {
            "conditions": [{"field": "subject", "op": "larger", "value": 1}]}},
    ])
    assert not result.ok and result.error.code == "invalid_parameter"
    assert "condition 1" in result.error.description


COMBOS = [("ssl", None), ("starttls", None), ("ssl", "oauthbearer"), ("starttls", "xoauth2")]


@pytest.mark.parametrize(("security", "auth"), COMBOS)
def test_delete_then_discard_keeps_and_commit_removes(host, sandbox, user, fake_provider,
                                                      security, auth):
    three(sandbox, user)
    if auth:
        add_oauth_record(fake_provider, user[0])
    params = pop3_params(sandbox, user, security=security, oauth=auth)
    result = run(host, [
        {"action": "POP3 Open", "params": params},
        {"action": "POP3 Delete Email", "params": {"number": 1}},
        {"action": "POP3 Messages Count", "params": {"save_count_to": "During"}},
        {"action": "POP3 Close", "params": {"on_close": "discard"}},
        {"action": "POP3 Open", "params": {**params, "save_count_to": "AfterDiscard"}},
        {"action": "POP3 Mail Loop", "do": [
            {"action": "POP3 Delete Email", "params": {"uid": "{json:Msg.uid}"}}],
         "params": {"conditions": [{"field": "subject", "op": "equals", "value": "Message 2"}]}},
        {"action": "POP3 Close", "params": {"on_close": "commit"}},
        {"action": "POP3 Open", "params": {**params, "save_count_to": "AfterCommit"}},
        {"action": "POP3 Mail Loop", "do": [
            append("Left", "{json:Msg.subject}")]},
    ], Left="")
    assert result.ok, result.error
    assert int(result.variables["During"]) == 2
    assert int(result.variables["AfterDiscard"]) == 3
    assert int(result.variables["AfterCommit"]) == 2
    assert result.variables["Left"] == "|Message 1|Message 3"


def test_task_end_closes_with_quit_which_commits(host, sandbox, user):
    three(sandbox, user)
    params = pop3_params(sandbox, user)
    assert run(host, [{"action": "POP3 Open", "params": params},
                      {"action": "POP3 Delete Email", "params": {"number": 3}}]).ok
    result = run(host, [{"action": "POP3 Open", "params": {**params, "save_count_to": "N"}}])
    assert int(result.variables["N"]) == 2


def test_skip_seen_across_runs(host, sandbox, user):
    three(sandbox, user)
    params = pop3_params(sandbox, user)
    steps = [
        {"action": "POP3 Open", "params": params},
        {"action": "POP3 Mail Loop", "params": {"skip_seen": True}, "do": [
            append("Got", "{json:Msg.subject}")]},
    ]
    first = run(host, steps, Got="")
    assert first.ok and first.variables["Got"] == "|Message 1|Message 2|Message 3"
    sandbox.seed(user[0], [simple(subject="Message 4")])
    second = run(host, steps, Got="")
    assert second.ok and second.variables["Got"] == "|Message 4"
    third = run(host, steps, Got="")
    assert third.ok and third.variables["Got"] == ""


@pytest.mark.parametrize(("security", "auth"), COMBOS)
def test_download_by_number_and_uid(host, sandbox, user, fake_provider, tmp_path, security,
                                    auth):
    sandbox.seed(user[0], [hostile_names(), simple(subject="Two")])
    if auth:
        add_oauth_record(fake_provider, user[0])
    params = pop3_params(sandbox, user, security=security, oauth=auth)
    out = tmp_path / "out"
    result = run(host, [
        {"action": "POP3 Open", "params": params},
        {"action": "POP3 Download Email", "params": {
            "number": 1, "folder": str(out), "attachments_folder": str(out / "att"),
            "save_path_to": "P1"}},
        {"action": "POP3 Download Email", "params": {
            "number": 1, "folder": str(out), "save_path_to": "P2"}},
        {"action": "POP3 Mail Loop", "params": {"conditions": [
            {"field": "subject", "op": "equals", "value": "Two"}]}, "do": [
            {"action": "POP3 Download Email", "params": {
                "uid": "{json:Msg.uid}", "save_to_file": str(tmp_path / "two.eml"),
                "save_path_to": "P3"}}]},
        {"action": "POP3 Download Email", "params": {
            "number": 1, "folder": str(out), "file_name": "{uid}.eml", "if_exists": "error"}},
    ])
    assert not result.ok and result.error.code == "file_error"
    p1, p2 = result.variables["P1"], result.variables["P2"]
    assert p1.endswith(".eml") and p2.endswith(" (1).eml") and p1 != p2
    assert Path(p1).read_bytes() == Path(p2).read_bytes()
    assert b"Subject: hostile" in Path(p1).read_bytes()
    assert Path(result.variables["P3"]).read_bytes().count(b"Subject: Two") == 1
    saved = sorted(p.name for p in (out / "att").iterdir())
    assert len(saved) == 10 and "passwd" in saved and "_CON" in saved
    for path in (out / "att").iterdir():
        assert path.resolve().parent == (out / "att").resolve()
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize(("params", "code"), [
    ({"number": 9, "save_to_file": "x.eml"}, "message_not_found"),
    ({"uid": "nope", "save_to_file": "x.eml"}, "message_not_found"),
    ({"save_to_file": "x.eml"}, "invalid_parameter"),
    ({"number": 1, "uid": "x", "save_to_file": "x.eml"}, "invalid_parameter"),
    ({"number": 1}, "invalid_parameter"),
])
def test_download_errors(host, sandbox, user, params, code):
    sandbox.seed(user[0], [simple()])
    result = run(host, [{"action": "POP3 Open", "params": pop3_params(sandbox, user)},
                        {"action": "POP3 Download Email", "params": params}])
    assert not result.ok and result.error.code == code, result.error


def test_connection_errors(host, sandbox, user):
    bad = {**pop3_params(sandbox, user), "password": "wrong-password"}
    result = run(host, [{"action": "POP3 Open", "params": bad}])
    assert result.error.code == "login_failed"
    assert "wrong-password" not in result.error.description
    assert not any("wrong-password" in line for line in result.log)
    result = run(host, [{"action": "POP3 Messages Count"}])
    assert result.error.code == "connection_not_open"
    result = run(host, [{"action": "POP3 Open", "params": pop3_params(sandbox, user)},
                        {"action": "POP3 Open", "params": pop3_params(sandbox, user)}])
    assert result.error.code == "connection_in_use"


def test_oauth_token_check_down_is_temporary(host, sandbox, user, fake_provider):
    add_oauth_record(fake_provider, user[0])
    params = pop3_params(sandbox, user, oauth="xoauth2")
    assert run(host, [{"action": "POP3 Open", "params": params}]).ok
    fake_provider.introspection_down = True
    result = run(host, [{"action": "POP3 Open", "params": params}])
    assert result.error.code == "login_temporary", result.error
    assert json.dumps(result.variables)  # still serialisable


def test_second_loop_in_a_session_skips_deleted_messages(host, sandbox, user):
    three(sandbox, user)
    result = run(host, [
        {"action": "POP3 Open", "params": pop3_params(sandbox, user)},
        {"action": "POP3 Delete Email", "params": {"number": 2}},
        {"action": "POP3 Mail Loop", "params": {"retrieve": "whole"},
         "do": [append("Got", "{json:Msg.number}")]},
        {"action": "POP3 Download Email", "params": {"number": 2, "save_to_file": "x.eml"}},
    ], Got="")
    assert result.variables["Got"] == "|1|3"
    assert result.error.code == "message_not_found"
