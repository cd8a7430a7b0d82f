"""Check for Email over POP3: conditions, only_new by UIDL across runs, download_to."""

from __future__ import annotations

import pytest
from corpus import simple
from corpus.mailtest import add_oauth_record, new_user, pop3_params, run, var

from hostsim.runtime.host import Host


@pytest.fixture(scope="module")
def user(sandbox):
    return new_user(sandbox)


@pytest.fixture
def host(tmp_path, sandbox, user):
    sandbox.clear(user[0])
    return Host.load(home=tmp_path / "hostsim")


def check(host, params, **extra):
    return run(host, [{"action": "Check for Email", "params": {
        "protocol": "pop3", **params, "save_to": "Found", "save_count_to": "N", **extra}}])


def test_only_new_by_uidl(host, sandbox, user):
    sandbox.seed(user[0], [simple(subject="one"), simple(subject="two")])
    params = pop3_params(sandbox, user)
    first = check(host, params, only_new=True)
    assert first.ok, first.error
    assert [m["subject"] for m in var(first, "Found")] == ["one", "two"]
    assert "body_text" not in var(first, "Found")[0]
    again = check(host, params, only_new=True)
    assert int(again.variables["N"]) == 0 and var(again, "Found") == []
    sandbox.seed(user[0], [simple(subject="three")])
    third = check(host, params, only_new=True)
    assert [m["subject"] for m in var(third, "Found")] == ["three"]
    plain = check(host, params)  # without only_new: everything
    assert int(plain.variables["N"]) == 3


def test_conditions_download_and_oauth(host, sandbox, user, fake_provider, tmp_path):
    sandbox.seed(user[0], [simple(subject="report", body="quarterly numbers"),
                           simple(subject="report", body="nothing")])
    add_oauth_record(fake_provider, user[0])
    params = pop3_params(sandbox, user, security="starttls", oauth="oauthbearer")
    result = check(host, params, conditions=[{"field": "body", "op": "contains",
                                              "value": "QUARTERLY"}],
                   download_to=str(tmp_path / "dl"))
    assert result.ok, result.error
    (found,) = var(result, "Found")
    assert found["number"] == 1
    assert (tmp_path / "dl" / f"{found['uid']}.eml").is_file()
    assert found["file"] == str((tmp_path / "dl" / f"{found['uid']}.eml").resolve())
