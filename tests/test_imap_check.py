"""Check for Email over IMAP: self-contained, only_new across runs, mark_seen, downloads."""

from __future__ import annotations

import json

import pytest
from imap_helpers import client, flags_by_subject, run, run_ok, step
from mail_fixtures import imap_params, make_message


def check_step(sandbox, user, **params):
    return step("Check for Email", **imap_params(sandbox, user), **params)


def test_only_new_over_two_runs(host, sandbox, mail_user):
    for i in range(2):
        sandbox.deliver(mail_user.username, make_message(f"first {i}"))
    steps = [check_step(sandbox, mail_user, only_new=True, save_count_to="N", save_to="Found")]
    r1 = run_ok(host, steps, name="watch inbox")
    assert int(r1.variables["N"]) == 2
    assert [m["subject"] for m in json.loads(r1.variables["Found"])] == ["first 0", "first 1"]

    sandbox.deliver(mail_user.username, make_message("second"))
    r2 = run_ok(host, steps, name="watch inbox")
    assert int(r2.variables["N"]) == 1
    assert [m["subject"] for m in json.loads(r2.variables["Found"])] == ["second"]

    r3 = run_ok(host, steps, name="watch inbox")  # nothing new: not an error
    assert int(r3.variables["N"]) == 0 and json.loads(r3.variables["Found"]) == []

    other = run_ok(host, steps, name="another task")  # state is per task
    assert int(other.variables["N"]) == 3
    # nothing was marked: the messages are still unseen
    assert all(f == set() for f in flags_by_subject(sandbox, mail_user).values())


def test_without_only_new_reports_unseen_every_time(host, sandbox, mail_user):
    for i in range(3):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    with client(sandbox, mail_user) as c:
        c.add_flags([2], ["\\Seen"])
    steps = [check_step(sandbox, mail_user, save_count_to="N")]
    assert int(run_ok(host, steps).variables["N"]) == 2
    assert int(run_ok(host, steps).variables["N"]) == 2
    all_steps = [check_step(sandbox, mail_user, messages="all", save_count_to="N")]
    assert int(run_ok(host, all_steps).variables["N"]) == 3


def test_mark_seen_conditions_and_download(host, sandbox, mail_user, tmp_path):
    sandbox.deliver(mail_user.username, make_message("Invoice 7", sender="billing@shop.test"))
    sandbox.deliver(mail_user.username, make_message("Hello", sender="friend@x.test"))
    sandbox.deliver(mail_user.username, make_message("Invoice 8", sender="billing@shop.test"))
    steps = [check_step(
        sandbox, mail_user, mark_seen=True, save_to="Found", save_count_to="N",
        download_to=str(tmp_path / "in"),
        conditions=[{"field": "from", "op": "contains", "value": "billing"},
                    {"field": "subject", "op": "matches", "value": r"invoice \d$"}],
    )]
    result = run_ok(host, steps)
    found = json.loads(result.variables["Found"])
    assert [m["subject"] for m in found] == ["Invoice 7", "Invoice 8"]
    assert all(m["seen"] for m in found)
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["1.eml", "3.eml"]
    assert found[0]["file"] == str((tmp_path / "in" / "1.eml").resolve())
    assert flags_by_subject(sandbox, mail_user) == {
        "Invoice 7": {"\\Seen"}, "Hello": set(), "Invoice 8": {"\\Seen"}}
    assert int(run_ok(host, steps).variables["N"]) == 0  # seen now, so no longer unseen


@pytest.mark.parametrize("sasl", ["xoauth2", "oauthbearer"])
def test_check_with_oauth_and_other_folder(host, sandbox, mail_user, oauth_record, sasl):
    with client(sandbox, mail_user) as c:
        c.create_folder("Alerts/Überwachung")
        c.append("Alerts/Überwachung", make_message("disk full"))
    params = imap_params(sandbox, mail_user, auth="oauth", record=oauth_record, sasl=sasl,
                         security="starttls")
    result = run_ok(host, [step("Check for Email", folder="Alerts/Überwachung",
                                save_to="F", **params)])
    found = json.loads(result.variables["F"])
    assert [(m["subject"], m["folder"]) for m in found] == [("disk full", "Alerts/Überwachung")]


def test_check_errors_are_clear(host, sandbox, mail_user):
    result = run(host, [check_step(sandbox, mail_user, folder="Nope")])
    assert result.error.code == "folder_not_found"
    bad = imap_params(sandbox, mail_user)
    bad["password"] = "Wrong-Pass-9"
    result = run(host, [step("Check for Email", **bad)])
    assert result.error.code == "login_failed"
    assert "Wrong-Pass-9" not in result.error.description


def test_only_new_starts_over_when_the_folder_is_recreated(host, sandbox, mail_user):
    """A new UIDVALIDITY means old UIDs say nothing: every message of the new folder is new."""
    with client(sandbox, mail_user, folder=None) as c:
        c.create_folder("Watched")
        for i in range(3):
            c.append("Watched", make_message(f"old {i}"))
    steps = [check_step(sandbox, mail_user, folder="Watched", messages="all", only_new=True,
                        save_count_to="N", save_to="Found")]
    assert int(run_ok(host, steps, name="watch").variables["N"]) == 3
    with client(sandbox, mail_user, folder=None) as c:
        before = c.folder_status("Watched", ["UIDVALIDITY"])[b"UIDVALIDITY"]
        c.delete_folder("Watched")
        c.create_folder("Watched")
        c.append("Watched", make_message("fresh"))
        assert c.folder_status("Watched", ["UIDVALIDITY"])[b"UIDVALIDITY"] != before
    result = run_ok(host, steps, name="watch")
    # the one message has UID 1, below the old high-water mark, yet it is reported as new
    assert [m["subject"] for m in json.loads(result.variables["Found"])] == ["fresh"]
