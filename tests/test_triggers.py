"""Email Arrived (IMAP): new mail starts the task, against the sandbox's Dovecot.

Delivery goes the real way where it matters (SMTP submission -> relay -> LMTP -> INBOX). The
watch runs in a thread of the test (``trigger_support.WatchRun``), so events are seen as their
tasks start; restarts of the watch reuse the test's data folder, as a restarted process would.
"""

from __future__ import annotations

import imaplib
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from imap_helpers import flags_by_subject
from mail_fixtures import make_message
from trigger_support import (
    Proxy,
    WatchRun,
    imap_trigger_params,
    submit,
    trigger_task,
)

from hostsim.cli.main import main
from hostsim.runtime.task import TaskError, load_task_text
from hostsim.runtime.watch import load_tasks


def test_smtp_delivery_fires_the_task_once_and_a_restart_loses_nothing(
    host, sandbox, mail_user, tmp_path
):
    sandbox.seed(mail_user.username, [make_message("Already there")])
    text = trigger_task("invoices", imap_trigger_params(sandbox, mail_user))
    user, password = mail_user.username, mail_user.password
    with WatchRun(host, text) as run:
        run.wait_line("with IDLE")
        submit(sandbox, user, password, make_message("Invoice 1", to=user))
        submit(sandbox, user, password, make_message("Invoice 2", to=user))
        events = run.wait_events(2)
        run.wait_line("task 'invoices' finished", count=2)
    assert run.status == 0
    assert run.subjects() == ["Invoice 1", "Invoice 2"]  # not the message already there
    first = events[0].variables
    assert first["Msg"]["uid"] == first["MsgUid"] and isinstance(first["MsgUid"], int)
    assert first["Msg"]["folder"] == "INBOX" and first["Msg"]["from_address"]
    assert run.out.having(f"got Invoice 1 uid {first['MsgUid']}")  # the task saw the variables
    assert run.out.having("event: UID")
    assert run.out.having("stopped (2 event(s) handled)")

    # Mail that arrives while nothing watches fires at the next start, once; nothing fires again
    submit(sandbox, user, password, make_message("Invoice 3", to=user))
    sandbox.deliver(user, make_message("Invoice 4", to=user))
    with WatchRun(host, text) as again:
        again.wait_events(2)
        submit(sandbox, user, password, make_message("Invoice 5", to=user))
        again.wait_events(3)
    assert again.subjects() == ["Invoice 3", "Invoice 4", "Invoice 5"]


def test_conditions_choose_the_messages_and_skipped_ones_stay_skipped(host, sandbox, mail_user):
    params = imap_trigger_params(
        sandbox,
        mail_user,
        conditions=[
            {"field": "subject", "op": "contains", "value": "invoice"},
            {"field": "has_attachment", "op": "equals", "value": "true"},
        ],
        with_body=True,
    )
    text = trigger_task("conditions", params)
    user = mail_user.username
    with WatchRun(host, text) as run:
        run.wait_line("with IDLE")
        sandbox.deliver(user, make_message("Newsletter", attachment=("a.pdf", b"%PDF")))
        sandbox.deliver(user, make_message("Invoice without file"))
        sandbox.deliver(user, make_message("Invoice 7", attachment=("inv7.pdf", b"%PDF-1.4")))
        events = run.wait_events(1)
    assert run.subjects() == ["Invoice 7"]
    assert [a["name"] for a in events[0].variables["Msg"]["attachments"]] == ["inv7.pdf"]
    assert "body_text" in events[0].variables["Msg"]  # with_body
    with WatchRun(host, text) as again:
        again.wait_line("with IDLE")
        sandbox.deliver(user, make_message("Invoice 8", attachment=("inv8.pdf", b"%PDF")))
        again.wait_events(1)
    assert again.subjects() == ["Invoice 8"]


def test_polling_when_asked_fires_as_well(host, sandbox, mail_user):
    params = imap_trigger_params(sandbox, mail_user, push="poll", poll_interval=1)
    with WatchRun(host, trigger_task("polled", params)) as run:
        run.wait_line("with polling every 1 s")
        sandbox.deliver(mail_user.username, make_message("Polled"))
        run.wait_events(1)
    assert run.subjects() == ["Polled"]


def test_once_handles_what_is_waiting_and_exits(host, sandbox, mail_user, tmp_path):
    task = tmp_path / "cron.yaml"
    task.write_text(trigger_task("cron", imap_trigger_params(sandbox, mail_user)))
    user = mail_user.username
    sandbox.deliver(user, make_message("Before the first run"))
    runner = CliRunner()
    first = runner.invoke(main, ["watch", "--once", str(task)])
    assert first.exit_code == 0, first.output
    assert "1 message(s) already there" in first.output and "0 event(s)" in first.output
    sandbox.deliver(user, make_message("Cron 1"))
    sandbox.deliver(user, make_message("Cron 2"))
    second = runner.invoke(main, ["watch", "--once", "--verbose", str(task)])
    assert second.exit_code == 0, second.output
    assert "got Cron 1" in second.output and "got Cron 2" in second.output
    assert "done (2 event(s) handled)" in second.output
    third = runner.invoke(main, ["watch", "--once", str(task)])
    assert third.exit_code == 0 and "done (0 event(s) handled)" in third.output


def test_once_with_a_wrong_password_fails_with_exit_status_1(sandbox, mail_user, tmp_path):
    params = imap_trigger_params(sandbox, mail_user, password="wrong")
    task = tmp_path / "bad.yaml"
    task.write_text(trigger_task("bad", params))
    result = CliRunner().invoke(main, ["watch", "--once", str(task)])
    assert result.exit_code == 1
    assert "the trigger stopped [login_failed]" in result.output
    assert "wrong" not in result.output.replace("wrong password", "")  # the password is masked


def test_uidvalidity_change_fires_new_mail_only(host, sandbox, mail_user):
    user = mail_user.username
    sandbox.deliver(user, make_message("Old invoice"), folder="Invoices")
    params = imap_trigger_params(sandbox, mail_user, folder="Invoices")
    with WatchRun(host, trigger_task("rebuilt", params)) as run:
        run.wait_line("with IDLE")
        sandbox.deliver(user, make_message("Invoice A"), folder="Invoices")
        run.wait_events(1)
        imap = imaplib.IMAP4_SSL(sandbox.host, sandbox.ports["imaps"],
                                 ssl_context=sandbox.ssl_context())
        try:
            imap.login(user, mail_user.password)
            assert imap.delete("Invoices")[0] == "OK"
        finally:
            imap.logout()
        # the folder comes back at once with three old messages (built aside, then renamed in:
        # Dovecot gives it a new UIDVALIDITY when it first opens it)
        sandbox.seed(user, [make_message(f"Restored {n}") for n in range(3)], folder="Staging")
        os.rename(sandbox.folder_path(user, "Staging"), sandbox.folder_path(user, "Invoices"))
        warning = run.wait_line("UIDVALIDITY")[0]
        sandbox.deliver(user, make_message("Invoice B"), folder="Invoices")
        run.wait_events(2)
    assert run.subjects() == ["Invoice A", "Invoice B"]
    assert "3 message(s) in it are taken as there before" in warning


def test_server_alerts_and_bye_reach_the_log(host, sandbox, mail_user):
    with Proxy(sandbox.ports["imap"]) as proxy:
        params = imap_trigger_params(sandbox, mail_user, port=proxy.port, security="none")
        with WatchRun(host, trigger_task("alerts", params)) as run:
            run.wait_line("with IDLE")
            proxy.inject(b"* OK [ALERT] Mailbox is 95% full\r\n")
            assert run.wait_line("server alert: Mailbox is 95% full")[0].split(": ", 1)[1]
            proxy.inject(b"* BYE Going down for maintenance\r\n")
            line = run.wait_line("reconnected")[0]
            sandbox.deliver(mail_user.username, make_message("After the BYE"))
            run.wait_events(1)
    assert "the server said BYE Going down for maintenance" in line
    assert run.subjects() == ["After the BYE"]


def test_a_silent_connection_is_noticed_and_replaced(host, sandbox, mail_user):
    with Proxy(sandbox.ports["imaps"]) as proxy:
        params = imap_trigger_params(sandbox, mail_user, port=proxy.port, keepalive=2, timeout=2)
        with WatchRun(host, trigger_task("silent", params)) as run:
            run.wait_line("with IDLE")
            proxy.silence()  # nothing passes any more; no side closes anything
            sandbox.deliver(mail_user.username, make_message("Sent into the silence"))
            line = run.wait_line("reconnected")[0]
            run.wait_events(1)
    assert "no answer to" in line  # DONE or NOOP, depending on when the silence began
    assert proxy.accepted == 2
    assert run.subjects() == ["Sent into the silence"]


def test_a_token_that_expires_during_a_long_watch_is_replaced(
    host, sandbox, mail_user, oauth_record, fake_provider
):
    fake_provider.access_token_lifetime = 2  # the provider's tokens die after 2 s
    with Proxy(sandbox.ports["imaps"]) as proxy:
        params = imap_trigger_params(sandbox, mail_user, port=proxy.port, auth="oauth",
                                     oauth_record=oauth_record)
        params.pop("username"), params.pop("password")
        with WatchRun(host, trigger_task("oauth", params)) as run:
            run.wait_line("with IDLE")
            requests = len(fake_provider.token_requests)
            time.sleep(2.5)  # not a timing assertion: the login's token is dead by now
            sandbox.deliver(mail_user.username, make_message("While the token is dead"))
            run.wait_events(1)  # the session logged in before: an expired token ends nothing
            proxy.cut()  # the next login needs a token, and the old one is dead
            run.wait_line("reconnected")
            sandbox.deliver(mail_user.username, make_message("After the new login"))
            run.wait_events(2)
    assert len(fake_provider.token_requests) > requests  # a fresh token for the new login
    assert not run.out.having("ERROR")
    assert run.subjects() == ["While the token is dead", "After the new login"]


def test_task_files_name_a_known_trigger_with_known_params(host, tmp_path):
    def load(text):
        return load_task_text(text, host.registry)

    ok = load(trigger_task("x", {"server": "{Server}", "username": "u", "password": "p"}))
    assert ok.trigger is not None and ok.trigger.spec.id == "robomail.email_arrived_imap"
    with pytest.raises(TaskError, match="unknown trigger 'Email Arived'.*did you mean"):
        load(trigger_task("x", {"server": "s"}, kind="Email Arived"))
    with pytest.raises(TaskError, match=r"unknown parameter\(s\) folders.*did you mean 'folder'"):
        load(trigger_task("x", {"server": "s", "folders": "INBOX"}))
    with pytest.raises(TaskError, match="parameter 'server' is required"):
        load(trigger_task("x", {"username": "u"}))
    with pytest.raises(TaskError, match="parameter 'keepalive': expected a whole number"):
        load(trigger_task("x", {"server": "s", "keepalive": "soon"}))
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: plain\nsteps: []\n")
    with pytest.raises(TaskError, match="has no 'trigger:'"):
        load_tasks(host, [plain])


def test_the_invoice_example_files_each_invoice_and_saves_its_attachment(
    host, sandbox, mail_user, oauth_record, tmp_path
):
    example = Path(__file__).resolve().parent.parent / "examples" / "invoice-arrived.yaml"
    archive = tmp_path / "archive"
    variables = {"Server": sandbox.host, "Port": sandbox.ports["imaps"],
                 "CaFile": str(sandbox.ca_file), "Record": oauth_record, "Archive": str(archive)}
    user = mail_user.username
    with WatchRun(host, example.read_text(), variables=variables) as run:
        run.wait_line("with IDLE")
        sandbox.deliver(user, make_message("Hello", attachment=("photo.jpg", b"JPEG")))
        sandbox.deliver(user, make_message("Invoice 2024-17", attachment=("inv-17.pdf", b"%PDF")))
        run.wait_events(1)
        run.wait_line("task 'file invoices' finished")
    assert run.subjects() == ["Invoice 2024-17"]
    assert (archive / "attachments" / "inv-17.pdf").read_bytes() == b"%PDF"
    assert [p.name for p in archive.glob("*.eml")] == [f"{run.events[0][1].variables['MsgUid']} "
                                                       "Invoice 2024-17.eml"]
    assert set(flags_by_subject(sandbox, mail_user)) == {"Hello"}
    assert set(flags_by_subject(sandbox, mail_user, "Invoices")) == {"Invoice 2024-17"}
