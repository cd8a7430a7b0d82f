"""Every IMAP action through the host, against the sandbox, with password and OAuth logins."""

from __future__ import annotations

import json

import pytest
from imap_helpers import (
    client,
    flags_by_subject,
    log,
    logged,
    open_step,
    run,
    run_ok,
    step,
    subjects_by_uid,
)
from mail_fixtures import make_message

LOGINS = [
    pytest.param({"auth": "password", "security": "ssl"}, id="password-ssl"),
    pytest.param({"auth": "password", "security": "starttls"}, id="password-starttls"),
    pytest.param({"auth": "oauth", "security": "ssl", "sasl": "xoauth2"}, id="xoauth2-ssl"),
    pytest.param(
        {"auth": "oauth", "security": "starttls", "sasl": "oauthbearer"}, id="oauthbearer-starttls"
    ),
    pytest.param({"auth": "oauth", "security": "ssl", "sasl": "oauthbearer"}, id="oauthbearer-ssl"),
    pytest.param(
        {"auth": "oauth", "security": "starttls", "sasl": "xoauth2"}, id="xoauth2-starttls"
    ),
]


@pytest.mark.parametrize("login", LOGINS)
def test_every_action_once(host, sandbox, mail_user, oauth_record, tmp_path, login):
    """A whole session: open, info, loop, flags, download, move, delete marked, close."""
    for i in range(1, 4):
        sandbox.deliver(
            mail_user.username,
            make_message(f"msg {i}", attachment=("a.txt", b"attached") if i == 2 else None),
        )
    record = oauth_record if login["auth"] == "oauth" else None
    steps = [
        open_step(sandbox, mail_user, record=record, **login),
        step("IMAP Folder Info", save_to="Info"),
        step(
            "IMAP Mail Loop",
            do=[log("S:{json:Msg.uid} {json:Msg.subject} {json:Msg.seen}")],
        ),
        step("IMAP Set Message Flags", uid="1", flags="\\Flagged $Work"),
        step("IMAP Get Message Flags", uid="1", save_to="Flags1"),
        step("IMAP Get Message Flags", uid="1", save_to="FlagsJson", as_json=True),
        step(
            "IMAP Download Message",
            uid="2",
            folder=str(tmp_path / "eml"),
            attachments_folder=str(tmp_path / "att"),
            save_path_to="EmlPath",
        ),
        step("IMAP Move Message", uid="3", destination="Archive", create_if_missing=True,
             save_new_uid_to="NewUid"),
        step("IMAP Set Message Flags", uid="2", flags="\\Deleted"),
        step("IMAP Delete Marked Messages", save_count_to="Expunged"),
        step("IMAP Select Mail Folder", folder="Archive", save_info_to="ArchiveInfo"),
        step("IMAP Get Message Flags", uid="{NewUid}", save_to="MovedFlags"),
        step("IMAP Close"),
    ]
    result = run_ok(host, steps)
    v = result.variables
    info = json.loads(v["Info"])
    assert (info["total"], info["unseen"], info["folder"]) == (3, 3, "INBOX")
    assert logged(result) == ["1 msg 1 False", "2 msg 2 False", "3 msg 3 False"]
    assert set(v["Flags1"].split()) - {"\\Recent"} == {"\\Flagged", "$Work"}
    assert "\\Flagged" in json.loads(v["FlagsJson"]) and "$Work" in json.loads(v["FlagsJson"])
    assert b"Subject: msg 2\r\n" in (tmp_path / "eml" / "2.eml").read_bytes()
    assert v["EmlPath"] == str((tmp_path / "eml" / "2.eml").resolve())
    assert (tmp_path / "att" / "a.txt").read_bytes() == b"attached"
    assert int(v["Expunged"]) == 1
    assert json.loads(v["ArchiveInfo"])["total"] == 1
    assert int(v["NewUid"]) >= 1
    assert "\\Seen" not in v["MovedFlags"]  # the loop peeked: nothing became seen
    assert flags_by_subject(sandbox, mail_user).keys() == {"msg 1"}


def test_open_without_folder_and_select_read_only(host, sandbox, mail_user):
    sandbox.deliver(mail_user.username, make_message("one"))
    steps = [
        open_step(sandbox, mail_user, folder=""),
        step("IMAP Select Mail Folder", folder="INBOX", read_only=True, save_info_to="I"),
        step("IMAP Set Message Flags", uid="1", flags="\\Seen"),
    ]
    result = run(host, steps)
    assert not result.ok
    assert result.error.code == "invalid_parameter"
    assert "read-only" in result.error.description
    assert json.loads(result.variables["I"])["read_only"] is True


def test_action_before_any_folder_is_selected(host, sandbox, mail_user):
    result = run(host, [open_step(sandbox, mail_user, folder=""), step("IMAP Mail Loop", do=[])])
    assert result.error.code == "invalid_parameter"
    assert "IMAP Select Mail Folder" in result.error.description


def test_close_does_not_expunge_unless_asked(host, sandbox, mail_user):
    for i in range(2):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    run_ok(host, [open_step(sandbox, mail_user),
                  step("IMAP Set Message Flags", uid="1:*", flags="\\Deleted"),
                  step("IMAP Close")])
    assert len(subjects_by_uid(sandbox, mail_user)) == 2
    # a task that ends with the connection open: LOGOUT only, too
    run_ok(host, [open_step(sandbox, mail_user)])
    assert len(subjects_by_uid(sandbox, mail_user)) == 2
    run_ok(host, [open_step(sandbox, mail_user), step("IMAP Close", expunge=True)])
    assert subjects_by_uid(sandbox, mail_user) == {}


def test_select_missing_folder_and_create_if_missing(host, sandbox, mail_user):
    result = run(host, [open_step(sandbox, mail_user),
                        step("IMAP Select Mail Folder", folder="Nope")])
    assert result.error.code == "folder_not_found"
    assert "create_if_missing" in result.error.description
    result = run_ok(host, [open_step(sandbox, mail_user),
                           step("IMAP Select Mail Folder", folder="Projects/Neu",
                                create_if_missing=True, save_info_to="I")])
    assert json.loads(result.variables["I"])["total"] == 0
    result = run(host, [open_step(sandbox, mail_user, folder="Missing")])
    assert result.error.code == "folder_not_found"


def test_non_ascii_folder_names(host, sandbox, mail_user):
    for i in range(3):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    folder = "Archiv/Überweisungen €"
    steps = [
        open_step(sandbox, mail_user),
        step("IMAP Move Message", uid="1,2", destination=folder, create_if_missing=True,
             save_new_uid_to="Map"),
        step("IMAP Folder Info", folder=folder, save_to="Info"),
        step("IMAP Mail Loop", folder=folder, do=[log("S:{json:Msg.subject}|{json:Msg.folder}")]),
        step("IMAP Folder Info", save_to="Selected"),
    ]
    result = run_ok(host, steps)
    assert json.loads(result.variables["Info"])["total"] == 2
    assert logged(result) == [f"m0|{folder}", f"m1|{folder}"]
    assert json.loads(result.variables["Selected"])["folder"] == "INBOX"  # the loop gave it back
    assert json.loads(result.variables["Map"]) == {"1": 1, "2": 2}
    with client(sandbox, mail_user, None) as c:
        names = [name for _flags, _sep, name in c.list_folders()]
    assert folder in names


def test_uids_after_a_move(host, sandbox, mail_user):
    with client(sandbox, mail_user) as c:
        c.create_folder("Done")
        c.append("Done", make_message("already there"))
    for i in range(3):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    steps = [
        open_step(sandbox, mail_user),
        step("IMAP Move Message", uid="2", destination="Done", save_new_uid_to="New"),
        step("IMAP Select Mail Folder", folder="Done"),
        step("IMAP Set Message Flags", uid="{New}", flags="\\Flagged"),
        step("IMAP Select Mail Folder", folder="INBOX"),
        step("IMAP Get Message Flags", uid="2"),
    ]
    result = run(host, steps)
    assert int(result.variables["New"]) == 2  # the second message in Done
    assert result.error.code == "message_not_found"  # UID 2 is gone from INBOX
    assert "moved message gets a new UID" in result.error.description
    assert flags_by_subject(sandbox, mail_user, "Done")["m1"] == {"\\Flagged"}


def test_move_without_the_move_extension(host, sandbox, mail_user, monkeypatch):
    """COPY + \\Deleted + UID EXPUNGE, when the server does not offer MOVE."""
    from robomail_plugin.imap.session import ImapSession

    real_has = ImapSession.has
    monkeypatch.setattr(ImapSession, "has", lambda self, cap: cap != "MOVE" and real_has(self, cap))
    for i in range(3):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    with client(sandbox, mail_user) as c:
        c.add_flags([3], ["\\Deleted"])  # marked by someone else: must survive the fallback
    steps = [
        open_step(sandbox, mail_user),
        step("IMAP Move Message", uid="1:2", destination="Old", create_if_missing=True,
             save_new_uid_to="Map"),
    ]
    result = run_ok(host, steps)
    assert "COPY + \\Deleted + UID EXPUNGE" in "\n".join(result.log)
    assert json.loads(result.variables["Map"]) == {"1": 1, "2": 2}
    assert set(subjects_by_uid(sandbox, mail_user).values()) == {"m2"}
    assert set(subjects_by_uid(sandbox, mail_user, "Old").values()) == {"m0", "m1"}


def test_move_errors(host, sandbox, mail_user):
    sandbox.deliver(mail_user.username, make_message("m"))
    result = run(host, [open_step(sandbox, mail_user),
                        step("IMAP Move Message", uid="1", destination="Nowhere")])
    assert result.error.code == "folder_not_found"
    result = run(host, [open_step(sandbox, mail_user),
                        step("IMAP Move Message", uid="1,9", destination="Elsewhere",
                             create_if_missing=True)])
    assert result.error.code == "message_not_found"
    assert "9" in result.error.description
    # one UID MOVE, no check first: the server's COPYUID says UID 1 moved and 9 did not
    assert "The other UID(s) were moved to 'Elsewhere'" in result.error.description
    assert set(subjects_by_uid(sandbox, mail_user).values()) == set()
    assert set(subjects_by_uid(sandbox, mail_user, "Elsewhere").values()) == {"m"}


def test_delete_marked_with_and_without_uids(host, sandbox, mail_user):
    for i in range(5):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    steps = [
        open_step(sandbox, mail_user),
        step("IMAP Set Message Flags", uid="1:4", flags="\\Deleted"),
        step("IMAP Delete Marked Messages", uids="1,2,5", save_count_to="N1"),
        step("IMAP Folder Info", save_to="After1"),
        step("IMAP Delete Marked Messages", save_count_to="N2"),
        step("IMAP Folder Info", save_to="After2"),
    ]
    result = run_ok(host, steps)
    v = result.variables
    assert int(v["N1"]) == 2  # 5 was not marked, so it stays
    assert json.loads(v["After1"])["total"] == 3
    assert int(v["N2"]) == 2
    assert json.loads(v["After2"])["total"] == 1
    assert set(subjects_by_uid(sandbox, mail_user).values()) == {"m4"}


def test_set_flags_operations_and_ranges(host, sandbox, mail_user):
    for i in range(4):
        sandbox.deliver(mail_user.username, make_message(f"m{i}"))
    steps = [
        open_step(sandbox, mail_user),
        step("IMAP Set Message Flags", uid="1:3", flags="\\Seen \\Flagged"),
        step("IMAP Set Message Flags", uid="1", flags="\\Seen"),  # changes nothing: still fine
        step("IMAP Set Message Flags", uid=[2, 3], operation="remove", flags="\\flagged"),
        step("IMAP Set Message Flags", uid="3", operation="replace", flags="\\Answered Todo"),
        step("IMAP Set Message Flags", uid="4:*", flags="\\Draft"),
    ]
    run_ok(host, steps)
    assert flags_by_subject(sandbox, mail_user) == {
        "m0": {"\\Seen", "\\Flagged"},
        "m1": {"\\Seen"},
        "m2": {"\\Answered", "Todo"},
        "m3": {"\\Draft"},
    }


@pytest.mark.parametrize(
    ("flags", "needle"), [("\\Bogus", "system flag"), ("bad(flag", "keyword"), ("", "empty")]
)
def test_set_flags_rejects_bad_flags(host, sandbox, mail_user, flags, needle):
    sandbox.deliver(mail_user.username, make_message("m"))
    result = run(host, [open_step(sandbox, mail_user),
                        step("IMAP Set Message Flags", uid="1", flags=flags)])
    assert result.error.code == "invalid_parameter"
    assert needle in result.error.description


def test_missing_uid_is_message_not_found(host, sandbox, mail_user, tmp_path):
    sandbox.deliver(mail_user.username, make_message("m"))
    for action, extra in [
        ("IMAP Get Message Flags", {}),
        ("IMAP Set Message Flags", {"flags": "\\Seen"}),
        ("IMAP Download Message", {"folder": str(tmp_path)}),
    ]:
        result = run(host, [open_step(sandbox, mail_user), step(action, uid="42", **extra)])
        assert result.error.code == "message_not_found", action
        assert "42" in result.error.description


def test_download_mark_seen_and_file_options(host, sandbox, mail_user, tmp_path):
    sandbox.deliver(mail_user.username, make_message("Report: Q1"))
    target = tmp_path / "out" / "report.eml"
    steps = [
        open_step(sandbox, mail_user),
        step("IMAP Download Message", uid="1", save_to_file=str(target)),
        step("IMAP Download Message", uid="1", folder=str(tmp_path / "d"),
             file_name="{subject}.eml", mark_seen=True, save_path_to="P"),
        step("IMAP Download Message", uid="1", folder=str(tmp_path / "d"),
             file_name="{subject}.eml", save_path_to="P2"),
        step("IMAP Download Message", uid="1", save_to_file=str(target), if_exists="error"),
    ]
    result = run(host, steps)
    assert result.error.code == "file_error"
    assert target.exists()
    assert result.variables["P"].endswith("Report_ Q1.eml")
    assert result.variables["P2"].endswith("Report_ Q1 (1).eml")
    assert flags_by_subject(sandbox, mail_user)["Report: Q1"] == {"\\Seen"}


def test_folder_info_does_not_change_the_selection(host, sandbox, mail_user):
    sandbox.deliver(mail_user.username, make_message("inbox msg"))
    with client(sandbox, mail_user) as c:
        c.create_folder("Other")
        c.append("Other", make_message("o1"), flags=["\\Seen"])
        c.append("Other", make_message("o2"))
    steps = [
        open_step(sandbox, mail_user),
        step("IMAP Folder Info", folder="Other", save_to="O"),
        step("IMAP Mail Loop", do=[log("S:{json:Msg.subject}")]),
    ]
    result = run_ok(host, steps)
    info = json.loads(result.variables["O"])
    assert (info["total"], info["unseen"]) == (2, 1)
    assert info["uidnext"] == 3 and info["uidvalidity"] > 0
    assert logged(result) == ["inbox msg"]


def test_wrong_connection_name_and_pop3_connection(host, sandbox, mail_user):
    result = run(host, [open_step(sandbox, mail_user), step("IMAP Folder Info", connection="Nope")])
    assert result.error.code == "connection_not_open"
    assert "Nope" in result.error.description
    pop3 = {
        "server": sandbox.host, "port": sandbox.ports["pop3s"], "ca_file": str(sandbox.ca_file),
        "username": mail_user.username, "password": mail_user.password, "connection": "Mail",
    }
    result = run(host, [step("POP3 Open", **pop3), step("IMAP Mail Loop", connection="Mail",
                                                         do=[])])
    assert result.error.code == "wrong_connection_kind"
    assert "IMAP" in result.error.description


def test_opening_a_name_twice(host, sandbox, mail_user):
    result = run(host, [open_step(sandbox, mail_user), open_step(sandbox, mail_user)])
    assert result.error.code == "connection_in_use"


def test_two_connections_side_by_side(host, sandbox, mail_user, make_oauth_record):
    record = make_oauth_record(mail_user.username)
    sandbox.deliver(mail_user.username, make_message("shared"))
    steps = [
        open_step(sandbox, mail_user, connection="A"),
        open_step(sandbox, mail_user, connection="B", auth="oauth", record=record),
        step("IMAP Set Message Flags", connection="A", uid="1", flags="\\Flagged"),
        step("IMAP Get Message Flags", connection="B", uid="1", save_to="F"),
        step("IMAP Close", connection="A"),
        step("IMAP Close", connection="B"),
    ]
    result = run_ok(host, steps)
    assert "\\Flagged" in result.variables["F"]


def test_login_errors_through_the_host(host, sandbox, fake_provider, mail_user, oauth_record):
    bad = open_step(sandbox, mail_user)
    bad["params"]["password"] = "Not-The-Password-1"
    result = run(host, [bad])
    assert result.error.code == "login_failed"
    assert "Not-The-Password-1" not in "\n".join(result.log) + result.error.description
    fake_provider.introspection_down = True
    result = run(host, [open_step(sandbox, mail_user, auth="oauth", record=oauth_record)])
    assert result.error.code == "login_temporary"
    fake_provider.introspection_down = False
    result = run(host, [open_step(sandbox, mail_user, auth="oauth", record="No Such Record")])
    assert result.error.code == "record_not_found"


def test_on_error_continue_sets_last_error(host, sandbox, mail_user):
    steps = [
        open_step(sandbox, mail_user),
        step("IMAP Select Mail Folder", folder="Missing"),
        step("IMAP Folder Info", save_to="I"),
    ]
    result = run(host, steps, on_error="continue")
    assert result.variables["LastErrorCode"] == "folder_not_found"
    assert json.loads(result.variables["I"])["folder"] == "INBOX"
