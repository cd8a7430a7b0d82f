"""Commands on the wire: each loop form against the real Dovecot, counted as they are sent.

Over a real network every command is a round trip (20-100 ms), so an action in a loop body must
cost one command, and a list of UIDs one command for the whole list. These tests count the
commands each loop form sends, and check the answers that replace the old checks (COPYUID,
EXPUNGE, the FETCH answers to a STORE) are read right, also when a server words them as GNU
Mailutils does (no UID in the FETCH answers to UID STORE, no MOVE, no UIDPLUS).
"""

from __future__ import annotations

import imaplib
import json
import re
from pathlib import Path

import pytest
from imap_helpers import (
    client,
    flags_by_subject,
    log,
    open_step,
    run,
    run_ok,
    step,
    subjects_by_uid,
)
from mail_fixtures import make_message

from robomail_plugin.imap import session as imap_session
from robomail_plugin.imap.session import ImapSession, uid_sets
from robomail_plugin.message import info as message_info

N = 24  # messages per loop: enough to tell "per message" from "a constant"


class Wire:
    """The IMAP commands written to the socket, by name (``UID MOVE``, ``LIST`` ...): of the
    first connection that sends one after it starts (the task's), or of all of them."""

    _NAME = re.compile(rb"^([A-Z]+)\d+ ((?:UID )?[A-Z]+)")

    def __init__(
        self, monkeypatch, *, store_answers_without_uid: bool = False, all_connections: bool = False
    ) -> None:
        self.names: list[str] = []
        self.lines: list[bytes] = []
        prefix: list[bytes] = []
        real_send = imaplib.IMAP4.send
        real_get_line = imaplib.IMAP4._get_line

        def send(conn, data):
            data = bytes(data)
            m = self._NAME.match(data)
            if m:
                prefix[:] = prefix or [m.group(1)]
                if all_connections or m.group(1) == prefix[0]:
                    self.names.append(m.group(2).decode())
                    self.lines.append(data)
            return real_send(conn, data)

        def get_line(conn):
            line = real_get_line(conn)
            if store_answers_without_uid and self.names and self.names[-1] == "UID STORE":
                line = re.sub(rb"^(\* \d+ FETCH \()UID \d+ ", rb"\1", line)
            return line

        monkeypatch.setattr(imaplib.IMAP4, "send", send)
        monkeypatch.setattr(imaplib.IMAP4, "_get_line", get_line)

    def count(self, name: str) -> int:
        return self.names.count(name)

    def per_name(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name in self.names:
            out[name] = out.get(name, 0) + 1
        return out


def _seed(sandbox, user, count: int = N, **kw) -> None:
    sandbox.seed(user.username, [make_message(f"m{i}", **kw) for i in range(count)])


def _loop(body: list[dict], **params) -> dict:
    return step("IMAP Mail Loop", do=body, **params)


def _open_and(sandbox, user, *steps_after) -> list[dict]:
    return [open_step(sandbox, user), *steps_after, step("IMAP Close")]


# CAPABILITY, LOGIN, SELECT, one UID SEARCH, one UID FETCH batch, LOGOUT: what a loop costs once.
ONCE = 6


def test_loop_with_move_is_one_command_per_message(host, sandbox, mail_user, monkeypatch):
    _seed(sandbox, mail_user)
    wire = Wire(monkeypatch)
    move = step(
        "IMAP Move Message",
        uid="{json:Msg.uid}",
        destination="Archive/2024",
        create_if_missing=True,
        save_new_uid_to="New",
    )
    result = run_ok(host, _open_and(sandbox, mail_user, _loop([move, log("S:{New}")])))
    # the first MOVE finds no destination ([TRYCREATE]): CREATE, SUBSCRIBE, MOVE again
    assert wire.count("UID MOVE") == N + 1
    assert wire.count("CREATE") == 1
    assert wire.count("LIST") == 0 and wire.count("UID SEARCH") == 1
    assert len(wire.names) <= N + ONCE + 3, wire.per_name()
    assert [line for line in result.log if "S:" in line][-1].endswith(f"S:{N}")
    assert subjects_by_uid(sandbox, mail_user) == {}
    assert len(subjects_by_uid(sandbox, mail_user, "Archive/2024")) == N


def test_loop_with_set_flags_is_one_command_per_message(host, sandbox, mail_user, monkeypatch):
    _seed(sandbox, mail_user)
    with client(sandbox, mail_user) as c:  # half of them have the flag already
        c.add_flags(list(range(1, N + 1, 2)), ["\\Flagged"])
    wire = Wire(monkeypatch)
    body = [
        step("IMAP Set Message Flags", uid="{json:Msg.uid}", flags="\\Flagged"),
        step("IMAP Set Message Flags", uid="{json:Msg.uid}", flags="\\Flagged"),  # no change
        step("IMAP Set Message Flags", uid="{json:Msg.uid}", operation="remove", flags="$Gone"),
    ]
    run_ok(host, _open_and(sandbox, mail_user, _loop(body)))
    # Dovecot answers a STORE that changes nothing with no FETCH: the loop's flags say why,
    # so no UID FETCH follows to check the message is there
    assert wire.count("UID STORE") == 3 * N
    assert wire.count("UID FETCH") == 1 and wire.count("UID SEARCH") == 1
    assert len(wire.names) <= 3 * N + ONCE, wire.per_name()
    assert all(f == {"\\Flagged"} for f in flags_by_subject(sandbox, mail_user).values())


def test_loop_with_download_and_get_flags(host, sandbox, mail_user, monkeypatch, tmp_path):
    _seed(sandbox, mail_user, attachment=("a.bin", b"x" * 3000))
    parses = _count_parses(monkeypatch)
    wire = Wire(monkeypatch)
    body = [
        step("IMAP Download Message", uid="{json:Msg.uid}", folder=str(tmp_path / "eml")),
        step("IMAP Get Message Flags", uid="{json:Msg.uid}", save_to="F"),
    ]
    run_ok(host, _open_and(sandbox, mail_user, _loop(body)))
    fetches = [line for line in wire.lines if line.split(b" ", 3)[1:3] == [b"UID", b"FETCH"]]
    bodies = [line for line in fetches if b"BODY.PEEK[]" in line]
    assert len(bodies) == N and len(fetches) == 1 + 2 * N  # a batch, then one each per message
    assert len(wire.names) <= 2 * N + ONCE, wire.per_name()
    # {uid}.eml needs no header: the bytes go to the file without a parse
    assert parses["whole"] == 0 and parses["headers"] == N  # the loop's own header batch
    saved = sorted(p.name for p in (tmp_path / "eml").iterdir())
    assert saved == sorted(f"{i}.eml" for i in range(1, N + 1))
    with client(sandbox, mail_user) as c:
        original = c.fetch([3], ["BODY.PEEK[]"])[3][b"BODY[]"]
    assert (tmp_path / "eml" / "3.eml").read_bytes() == original


def test_download_parses_only_the_header_a_file_name_needs(
    host, sandbox, mail_user, monkeypatch, tmp_path
):
    sandbox.deliver(mail_user.username, make_message("Report: Q1", attachment=("r.pdf", b"%P")))
    parses = _count_parses(monkeypatch)
    run_ok(
        host,
        _open_and(
            sandbox,
            mail_user,
            step(
                "IMAP Download Message",
                uid="1",
                folder=str(tmp_path),
                file_name="{subject} {uid}.eml",
                mark_seen=True,
            ),
        ),
    )
    assert (tmp_path / "Report_ Q1 1.eml").exists()
    assert parses == {"whole": 0, "headers": 1}
    assert flags_by_subject(sandbox, mail_user)["Report: Q1"] == {"\\Seen"}  # BODY[], no STORE


def test_loop_with_bodies_parses_once_and_downloads_without_asking(
    host, sandbox, mail_user, monkeypatch, tmp_path
):
    _seed(sandbox, mail_user, count=6, attachment=("a.txt", b"attached"))
    parses = _count_parses(monkeypatch)
    wire = Wire(monkeypatch)
    body = [
        step(
            "IMAP Download Message",
            uid="{json:Msg.uid}",
            folder=str(tmp_path / "eml"),
            file_name="{subject}.eml",
            attachments_folder=str(tmp_path / "att"),
        )
    ]
    run_ok(host, _open_and(sandbox, mail_user, _loop(body, include_body=True)))
    # the loop fetched and parsed each message; Download writes those bytes and those parts
    assert parses["whole"] == 6
    assert wire.count("UID FETCH") == 2  # metadata batch + bodies batch, nothing per message
    assert len(list((tmp_path / "eml").iterdir())) == 6
    assert len(list((tmp_path / "att").iterdir())) == 6


def test_loop_deleting_each_message(host, sandbox, mail_user, monkeypatch):
    _seed(sandbox, mail_user)
    wire = Wire(monkeypatch)
    body = [
        step("IMAP Set Message Flags", uid="{json:Msg.uid}", flags="\\Deleted"),
        step("IMAP Delete Marked Messages", uids="{json:Msg.uid}", save_count_to="C"),
    ]
    result = run_ok(host, _open_and(sandbox, mail_user, _loop(body)))
    assert wire.count("UID STORE") == N and wire.count("UID EXPUNGE") == N
    assert wire.count("UID SEARCH") == 1  # the loop's; the count comes from EXPUNGE answers
    assert int(result.variables["C"]) == 1
    assert subjects_by_uid(sandbox, mail_user) == {}


# --- the bulk form -------------------------------------------------------------------------------


def test_bulk_form_moves_flags_and_deletes_in_one_command_each(
    host, sandbox, mail_user, monkeypatch
):
    _seed(sandbox, mail_user, count=3 * N)
    with client(sandbox, mail_user) as c:
        c.create_folder("Done")
    wire = Wire(monkeypatch)
    steps = _open_and(
        sandbox,
        mail_user,
        _loop(
            [log("S:never")],
            uids_only=True,
            save_uids_to="Hits",
            conditions=[{"field": "subject", "op": "contains", "value": "m1"}],
        ),
        step("IMAP Move Message", uid="{Hits}", destination="Done", save_new_uid_to="Map"),
        _loop([], raw_search="UID 1:30", save_uids_to="Early", uids_only=True),
        step("IMAP Set Message Flags", uid="{Early}", flags="\\Seen \\Deleted"),
        step("IMAP Delete Marked Messages", uids="{Early}", save_count_to="Gone"),
    )
    result = run_ok(host, steps)
    hits = json.loads(result.variables["Hits"])
    assert hits == [u for u in range(1, 3 * N + 1) if "m1" in f"m{u - 1}"]
    assert "S:never" not in "\n".join(result.log)
    assert wire.per_name() | {"CAPABILITY": 0, "LOGIN": 0, "SELECT": 0, "LOGOUT": 0} == {
        "CAPABILITY": 0,
        "LOGIN": 0,
        "SELECT": 0,
        "LOGOUT": 0,
        "UID SEARCH": 3,
        "UID MOVE": 1,
        "UID STORE": 1,
        "UID EXPUNGE": 1,
    }
    assert sorted(json.loads(result.variables["Map"])) == sorted(str(u) for u in hits)
    assert set(subjects_by_uid(sandbox, mail_user, "Done").values()) == {f"m{u - 1}" for u in hits}
    moved_early = len([u for u in hits if u <= 30])
    assert int(result.variables["Gone"]) == 30 - moved_early


def test_bulk_lists_are_chunked_and_empty_lists_do_nothing(host, sandbox, mail_user, monkeypatch):
    _seed(sandbox, mail_user, count=40)
    monkeypatch.setattr(imap_session, "MAX_SET_CHARS", 12)
    odd = list(range(1, 41, 2))
    chunks = len(uid_sets(list(odd)))
    assert chunks == 5  # "1,3,5,7,9,11", "13,15,17,19", ...
    wire = Wire(monkeypatch)
    steps = _open_and(
        sandbox,
        mail_user,
        step("IMAP Set Message Flags", uid=odd, flags="\\Flagged"),
        step("IMAP Move Message", uid="[]", destination="Nowhere", save_new_uid_to="M"),
        step("IMAP Set Message Flags", uid="[]", flags="\\Seen"),
        step("IMAP Delete Marked Messages", uids="[]", save_count_to="C"),
    )
    result = run_ok(host, steps)
    assert wire.count("UID STORE") == chunks
    assert wire.count("UID MOVE") == 0 and wire.count("UID EXPUNGE") == 0
    assert int(result.variables["C"]) == 0 and json.loads(result.variables["M"]) == {}
    flagged = {s for s, f in flags_by_subject(sandbox, mail_user).items() if "\\Flagged" in f}
    assert flagged == {f"m{u - 1}" for u in odd}


def test_check_for_email_hands_its_uids_to_a_bulk_move(host, sandbox, mail_user, monkeypatch):
    from mail_fixtures import imap_params

    _seed(sandbox, mail_user, count=5)
    wire = Wire(monkeypatch, all_connections=True)
    steps = [
        step(
            "Check for Email",
            **imap_params(sandbox, mail_user),
            save_uids_to="New",
            save_count_to="Count",
        ),
        open_step(sandbox, mail_user),
        step("IMAP Move Message", uid="{New}", destination="Seen", create_if_missing=True),
    ]
    result = run_ok(host, steps)
    assert json.loads(result.variables["New"]) == [1, 2, 3, 4, 5]
    assert wire.count("UID FETCH") == 0  # a count and UIDs need only the search
    assert len(subjects_by_uid(sandbox, mail_user, "Seen")) == 5


# --- answers that do not say everything -----------------------------------------------------------


def test_a_message_gone_mid_loop_is_message_not_found(host, sandbox, mail_user, monkeypatch):
    _seed(sandbox, mail_user, count=3)
    with client(sandbox, mail_user) as c:
        c.add_flags([2], ["\\Flagged"])
    real_fetch_batch = ImapSession.call

    def call(self, what, fn, *args, **kw):  # another client expunges UID 2 after the batch
        out = real_fetch_batch(self, what, fn, *args, **kw)
        if what.startswith("UID FETCH (") and "messages" in what:
            with client(sandbox, mail_user) as other:
                other.add_flags([2], ["\\Deleted"])
                other.expunge()
        return out

    monkeypatch.setattr(ImapSession, "call", call)
    wire = Wire(monkeypatch)
    result = run(
        host,
        _open_and(
            sandbox,
            mail_user,
            _loop([step("IMAP Set Message Flags", uid="{json:Msg.uid}", flags="\\Answered")]),
        ),
    )
    assert result.error.code == "message_not_found" and "UID 2" in result.error.description
    assert wire.count("UID STORE") == 2 and wire.count("UID FETCH") == 2  # batch + the check


def test_store_answers_without_uids_are_checked_with_uid_fetch(
    host, sandbox, mail_user, monkeypatch
):
    """GNU Mailutils sends ``* 1 FETCH (FLAGS (...))`` after ``UID STORE``: no UID, so the answer
    proves nothing, and the check is ``UID FETCH`` (its ``UID SEARCH UID`` reads the set as
    sequence numbers)."""
    _seed(sandbox, mail_user, count=4)
    with client(sandbox, mail_user) as c:  # UIDs 3, 4 at sequence numbers 1, 2
        c.add_flags([1, 2], ["\\Deleted"])
        c.expunge()
    wire = Wire(monkeypatch, store_answers_without_uid=True)
    result = run_ok(
        host,
        _open_and(sandbox, mail_user, step("IMAP Set Message Flags", uid="3,4", flags="\\Flagged")),
    )
    assert wire.count("UID STORE") == 1 and wire.count("UID FETCH") == 1
    assert wire.count("UID SEARCH") == 0
    assert flags_by_subject(sandbox, mail_user) == {"m2": {"\\Flagged"}, "m3": {"\\Flagged"}}
    result = run(
        host, _open_and(sandbox, mail_user, step("IMAP Set Message Flags", uid="1", flags="\\Seen"))
    )
    assert result.error.code == "message_not_found"


def _without(monkeypatch, *capabilities: str) -> None:
    real_has = ImapSession.has
    monkeypatch.setattr(
        ImapSession, "has", lambda self, cap: cap not in capabilities and real_has(self, cap)
    )


def test_move_fallback_with_uidplus_expunges_the_moved(host, sandbox, mail_user, monkeypatch):
    _seed(sandbox, mail_user, count=4)
    _without(monkeypatch, "MOVE")
    wire = Wire(monkeypatch)
    move = step(
        "IMAP Move Message",
        uid="{json:Msg.uid}",
        destination="Old",
        create_if_missing=True,
        save_new_uid_to="New",
    )
    result = run_ok(host, _open_and(sandbox, mail_user, _loop([move, log("S:{New}")])))
    assert [line.rsplit("S:", 1)[1] for line in result.log if "S:" in line] == ["1", "2", "3", "4"]
    assert wire.count("UID COPY") == 5 and wire.count("UID EXPUNGE") == 4
    assert wire.count("UID FETCH") == 1  # the batch: COPYUID says what was copied
    assert subjects_by_uid(sandbox, mail_user) == {}  # expunged, as the docs promise
    assert len(subjects_by_uid(sandbox, mail_user, "Old")) == 4


def test_move_fallback_without_uidplus_says_the_messages_stay(
    host, sandbox, mail_user, monkeypatch
):
    _seed(sandbox, mail_user, count=3)
    with client(sandbox, mail_user) as c:
        c.create_folder("Old")
    _without(monkeypatch, "MOVE", "UIDPLUS")
    wire = Wire(monkeypatch)
    result = run_ok(
        host, _open_and(sandbox, mail_user, step("IMAP Move Message", uid="1,2", destination="Old"))
    )
    text = "\n".join(result.log)
    assert "stay in 'INBOX' marked \\Deleted" in text and "copies them again" in text
    assert wire.count("UID FETCH") == 1 and wire.count("UID SEARCH") == 0  # the check
    assert wire.count("UID EXPUNGE") == 0
    assert flags_by_subject(sandbox, mail_user)["m0"] == {"\\Deleted"}
    assert set(subjects_by_uid(sandbox, mail_user, "Old").values()) == {"m0", "m1"}
    result = run(
        host, _open_and(sandbox, mail_user, step("IMAP Move Message", uid="3,9", destination="Old"))
    )
    assert result.error.code == "message_not_found" and "9" in result.error.description


def test_move_with_move_but_no_uidplus(host, sandbox, mail_user, monkeypatch):
    _seed(sandbox, mail_user, count=2)
    with client(sandbox, mail_user) as c:
        c.create_folder("Old")
    _without(monkeypatch, "UIDPLUS")
    wire = Wire(monkeypatch)
    run_ok(
        host, _open_and(sandbox, mail_user, step("IMAP Move Message", uid="1", destination="Old"))
    )
    assert wire.names.count("UID MOVE") == 1 and wire.count("UID FETCH") == 0  # EXPUNGE says
    result = run(
        host, _open_and(sandbox, mail_user, step("IMAP Move Message", uid="7", destination="Old"))
    )
    assert result.error.code == "message_not_found"


# --- folders -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["inbox", "Inbox", "INBOX"])
def test_inbox_in_any_case_needs_no_list(host, sandbox, mail_user, monkeypatch, name):
    sandbox.deliver(mail_user.username, make_message("hello"))
    with client(sandbox, mail_user) as c:
        c.create_folder("Other")
    wire = Wire(monkeypatch)
    steps = [
        open_step(sandbox, mail_user, folder=name),
        _loop([log("S:{json:Msg.folder}")], folder=name),
        step("IMAP Move Message", uid="1", destination="Other"),
        step("IMAP Select Mail Folder", folder="Other"),
        step("IMAP Move Message", uid="1", destination=name),
        step("IMAP Folder Info", folder=name, save_to="I"),
    ]
    result = run_ok(host, steps)
    # INBOX exists in any case (RFC 3501); "Other" is known once a MOVE into it succeeded
    assert wire.count("LIST") == 0
    assert json.loads(result.variables["I"])["total"] == 1


def test_a_folder_deleted_meanwhile_is_asked_for_again(sandbox, mail_user, monkeypatch):
    """Known folders are not listed again, until a command says one is gone."""
    from mail_fixtures import imap_params

    from robomail_plugin import errors
    from robomail_plugin.imap.commands import _move_set
    from robomail_plugin.transport.connect import ConnectionSettings

    sandbox.deliver(mail_user.username, make_message("hello"))
    with client(sandbox, mail_user) as c:
        c.create_folder("Gone")
    settings = ConnectionSettings.from_params("imap", imap_params(sandbox, mail_user))
    session = ImapSession(client(sandbox, mail_user, None), settings, mail_user.username)
    wire = Wire(monkeypatch)
    try:
        session.select("Gone")
        session.select("INBOX")
        session.select("Gone")
        assert wire.count("LIST") == 1 and "Gone" in session.known_folders
        session.select("INBOX")
        with client(sandbox, mail_user, None) as other:
            other.delete_folder("Gone")
        with pytest.raises(errors.FolderNotFound):
            session.select("Gone")  # SELECT says [NONEXISTENT]; LIST confirms it
        assert wire.count("LIST") == 2 and "Gone" not in session.known_folders
        session.select("INBOX")
        session.known_folders.add("Nowhere")  # believed to exist, but does not
        with pytest.raises(errors.FolderNotFound):
            _move_set(session, "1", "Nowhere", False, True, True)  # [TRYCREATE]
        assert "Nowhere" not in session.known_folders
        assert _move_set(session, "1", "Nowhere", True, True, True) == ({1: 1}, 1)
    finally:
        session.close()


def _count_parses(monkeypatch) -> dict[str, int]:
    """Counts message parses, whole and header-only, wherever they are called from."""
    counts = {"whole": 0, "headers": 0}
    real = message_info.parse_message

    def parse(data, *, headers_only=False):
        if not isinstance(data, message_info.Message):
            counts["headers" if headers_only else "whole"] += 1
        return real(data, headers_only=headers_only)

    for module in ("message.info", "imap.commands", "imap.fetch", "message.files", "pop3.commands"):
        target = f"robomail_plugin.{module}"
        mod = __import__(target, fromlist=["x"])
        if hasattr(mod, "parse_message"):
            monkeypatch.setattr(mod, "parse_message", parse)
    return counts


# --- GNU Mailutils: no MOVE, no UIDPLUS, STORE answers without UIDs --------------------------------


@pytest.fixture(scope="module")
def mailutils_server():
    from hostsim.devservers.mailutils import MailutilsServer

    server = MailutilsServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_explicit_uids_on_mailutils(host, mailutils_server, monkeypatch):
    """Issue 11 against the real server: Move and Set Message Flags with explicit UIDs after
    some messages went (UIDs no longer match sequence numbers)."""
    import secrets

    server = mailutils_server
    user, password = f"w{secrets.token_hex(4)}@example.test", "pw-" + secrets.token_hex(4)
    server.add_user(user, password)
    server.seed(user, [make_message(f"m{i}") for i in range(6)])
    params = {
        "server": server.host,
        "port": server.ports["imaps"],
        "ca_file": str(server.ca_file),
        "username": user,
        "password": password,
        "timeout": 20,
    }
    steps = [
        {"action": "IMAP Open", "params": params},
        step("IMAP Set Message Flags", uid="1,2", flags="\\Deleted"),
        step("IMAP Delete Marked Messages"),  # UIDs 3..6 now sit at sequence numbers 1..4
        step("IMAP Set Message Flags", uid="4,5", flags="\\Flagged"),
        step("IMAP Move Message", uid="3,4", destination="Archive", create_if_missing=True),
        _loop(
            [step("IMAP Set Message Flags", uid="{json:Msg.uid}", flags="\\Answered")],
            folder="inbox",
            messages="undeleted",
        ),
        step("IMAP Get Message Flags", uid="5", save_to="F5"),
        step("IMAP Close"),
    ]
    wire = Wire(monkeypatch)
    result = run_ok(host, steps)
    assert "stay in 'INBOX' marked \\Deleted" in "\n".join(result.log)
    assert set(result.variables["F5"].split()) >= {"\\Flagged", "\\Answered"}
    assert wire.count("UID SEARCH") == 1  # the loop's; existence is checked with UID FETCH
    result = run(
        host,
        [
            {"action": "IMAP Open", "params": params},
            step("IMAP Set Message Flags", uid="1", flags="\\Seen"),
        ],
    )
    assert result.error.code == "message_not_found"
    result = run(
        host,
        [
            {"action": "IMAP Open", "params": params},
            step("IMAP Move Message", uid="5,99", destination="Archive"),
        ],
    )
    assert result.error.code == "message_not_found" and "99" in result.error.description


def test_imaplib_debug_formatting_is_off_unless_someone_logs_it():
    """imapclient sets imaplib's debug level 5: every answer's repr (whole messages) was built for
    a log line nobody kept. The session turns it off, unless its logger is at DEBUG."""
    import logging
    import types

    def fake_client():
        return types.SimpleNamespace(capabilities=lambda: (), _imap=types.SimpleNamespace(debug=5))

    quiet = ImapSession(fake_client(), None, "a")  # type: ignore[arg-type]
    assert quiet.client._imap.debug == 0
    logger = logging.getLogger("imapclient.imaplib")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        logged = ImapSession(fake_client(), None, "a")  # type: ignore[arg-type]
    finally:
        logger.setLevel(level)
    assert logged.client._imap.debug == 5


def test_pop3_download_writes_the_bytes_unparsed(host, sandbox, mail_user, monkeypatch, tmp_path):
    """POP3 Download Email: RETR, the bytes to the file; a header parse only for {subject}."""
    message = make_message("Quarterly", attachment=("q.pdf", b"%PDF-1.4 " * 500))
    sandbox.deliver(mail_user.username, message)
    parses = _count_parses(monkeypatch)
    pop3 = {
        "server": sandbox.host,
        "port": sandbox.ports["pop3s"],
        "ca_file": str(sandbox.ca_file),
        "username": mail_user.username,
        "password": mail_user.password,
    }
    steps = [
        step("POP3 Open", **pop3),
        step("POP3 Download Email", number=1, folder=str(tmp_path), save_path_to="P1"),
        step("POP3 Download Email", number=1, folder=str(tmp_path), file_name="{subject}.eml"),
        step("POP3 Close"),
    ]
    result = run_ok(host, steps)
    assert parses == {"whole": 0, "headers": 1}
    saved = (tmp_path / "Quarterly.eml").read_bytes()
    assert saved.endswith(message)  # the server adds its Return-Path / Received in front
    assert Path(result.variables["P1"]).read_bytes() == saved
