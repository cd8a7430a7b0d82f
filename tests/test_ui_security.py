"""The settings screen's security rules, with plain HTTP requests: the launch token, the Host
and Origin checks, CSRF, the headers that keep the page from being framed or running injected
script, and no secret in anything the server sends or logs. And `hostsim ui` itself."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from ui_support import Visitor, running_screen

from hostsim.runtime.host import Host

CANARY_SECRET = "canary-client-secret-4f1d2a"
CANARY_PASSPHRASE = "canary passphrase 93c1"


@pytest.fixture
def screen():
    with running_screen(Host.load()) as running:
        yield running


@pytest.fixture
def visitor(screen):
    return Visitor(screen[0])


def raw_get(server, path: str, **headers: str) -> requests.Response:
    return requests.get(server.guard.origin + path, headers=headers, allow_redirects=False,
                        timeout=10)


def record_form(fake_provider, name: str = "Guarded") -> dict[str, str]:
    return {"record_name": name, "client_account": "alice@example.test", "client_id": "cid-1",
            "client_secret": CANARY_SECRET, "authorization_endpoint": fake_provider.authorize_url,
            "token_endpoint": fake_provider.token_url, "scope": "mail"}


# --- who may talk to it ----------------------------------------------------------------------


def test_it_listens_on_loopback_only(screen):
    server, _log = screen
    assert server._server.socket.getsockname()[0] == "127.0.0.1"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{40,}", server.url)


@pytest.mark.parametrize("path", ["/", "/editors/oauth", "/actions", "/api/editors/oauth/records",
                                  "/static/app.js"])
def test_without_the_launch_token_every_request_is_refused(screen, path):
    server, _log = screen
    assert raw_get(server, path).status_code == 403
    assert raw_get(server, path + "?token=not-the-token").status_code == 403
    wrong_cookie = requests.get(server.guard.origin + path, timeout=10, allow_redirects=False,
                                cookies={server.guard.cookie_name: "not-the-token"})
    assert wrong_cookie.status_code == 403


def test_the_token_becomes_a_strict_httponly_cookie_and_leaves_the_address(screen):
    server, _log = screen
    first = requests.get(server.url, allow_redirects=False, timeout=10)
    assert first.status_code == 200
    assert '<meta http-equiv="refresh" content="0;url=/">' in first.text
    assert server.guard.token not in first.text
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{server.guard.cookie_name}={server.guard.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = requests.get(server.guard.origin + "/editors/oauth", cookies=first.cookies, timeout=10)
    assert page.status_code == 200
    assert server.guard.token not in page.text


@pytest.mark.parametrize("host_header", ["evil.example", "evil.example:{port}", "localhost:{port}",
                                         "127.0.0.1", "127.0.0.1:1", "[::1]:{port}"])
def test_a_host_header_other_than_the_loopback_address_and_port_is_refused(visitor, host_header):
    header = host_header.format(port=visitor.server.port)
    page = visitor.get("/editors/oauth", headers={"Host": header})
    assert page.status_code == 400
    first_visit = raw_get(visitor.server, "/?token=" + visitor.server.guard.token, Host=header)
    assert first_visit.status_code == 400 and "Set-Cookie" not in first_visit.headers


def test_changes_need_the_csrf_token_and_the_screens_own_origin(visitor, fake_provider):
    url = f"{visitor.base}/api/editors/oauth/commands/save"
    data = {"form": json.dumps(record_form(fake_provider))}
    good = {"X-CSRF-Token": visitor.csrf, "Origin": visitor.base}
    refusals = {
        "no CSRF token": {"Origin": visitor.base},
        "a wrong CSRF token": {**good, "X-CSRF-Token": "forged"},
        "no Origin": {"X-CSRF-Token": visitor.csrf},
        "another Origin": {**good, "Origin": "http://evil.example"},
        "the right host on another port": {**good, "Origin": "http://127.0.0.1:1"},
    }
    for why, headers in refusals.items():
        answer = visitor.http.post(url, data=data, headers=headers, timeout=10)
        assert answer.status_code == 403, why
        assert visitor.get("/api/editors/oauth/records").json()["records"] == [], why
    cross_site_read = visitor.get("/api/editors/oauth/records",
                                  headers={"Origin": "http://evil.example"})
    assert cross_site_read.status_code == 403
    answer = visitor.http.post(url, data=data, headers=good, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "Added OAuth record 'Guarded'."


# --- what a browser may do with its pages ------------------------------------------------------


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("an inline <script>")
        self.problems += [f"{tag} {name}=" for name in names if name.startswith("on")]
        if "style" in names:
            self.problems.append(f"{tag} style=")


def test_every_response_forbids_framing_and_inline_script(visitor, screen):
    responses = {
        "editor page": visitor.get("/editors/oauth"),
        "catalogue": visitor.get("/actions"),
        "script": visitor.get("/static/app.js"),
        "API": visitor.get("/api/editors/oauth/records"),
        "refusal": raw_get(screen[0], "/editors/oauth"),
        "not found": visitor.get("/editors/no-such-editor"),
    }
    for what, response in responses.items():
        policy = response.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'", what
        assert directives["frame-ancestors"] == "'none'", what
        assert directives["default-src"] == "'none'", what
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, what
        assert response.headers["X-Frame-Options"] == "DENY", what
        assert response.headers["X-Content-Type-Options"] == "nosniff", what
        assert response.headers["Referrer-Policy"] == "no-referrer", what
        assert response.headers["Cache-Control"] == "no-store", what
    for page in ("editor page", "catalogue"):
        parser = _Scripts()
        parser.feed(responses[page].text)
        assert parser.problems == [], page


# --- secrets never leave ----------------------------------------------------------------------


def test_no_secret_in_any_page_answer_or_log_line(visitor, screen, fake_provider, tmp_path):
    _server, log = screen
    saved = visitor.command("oauth", "save", form=record_form(fake_provider))
    assert saved.status_code == 200, saved.text
    assert saved.json()["record"]["secrets"] == {"client_secret": True, "refresh_token": False}

    answers = [saved]
    answers.append(visitor.command("oauth", "save", form={
        **record_form(fake_provider), "client_id": "", "client_secret": CANARY_SECRET + "-2"}))
    assert answers[-1].status_code == 422
    assert answers[-1].json()["field_errors"] == {"client_id": "Client ID is required."}
    exported = visitor.command("oauth", "export", params={
        "include_secrets": "true", "passphrase": CANARY_PASSPHRASE})
    answers.append(exported)
    assert exported.status_code == 200, exported.text
    download = exported.json()["downloads"][0]
    document = visitor.get(download["url"])
    assert document.status_code == 200
    assert document.headers["Content-Disposition"] == 'attachment; filename="oauth-export.json"'
    assert json.loads(document.text)["secrets"] == "encrypted"
    assert visitor.get(download["url"]).status_code == 404  # one download only
    answers.append(visitor.command("oauth", "import", params={
        "on_conflict": "rename", "passphrase": CANARY_PASSPHRASE + "-wrong"},
        files={"file": ("export.json", document.content)}))
    assert answers[-1].status_code == 400
    answers.append(visitor.command("oauth", "import", params={
        "on_conflict": "rename", "passphrase": CANARY_PASSPHRASE},
        files={"file": ("export.json", document.content)}))
    assert answers[-1].json()["details"] == [["added", "Guarded (2)"], ["overwritten", "none"],
                                             ["renamed", "Guarded → Guarded (2)"]]
    answers += [
        visitor.get("/editors/oauth"),
        visitor.get("/api/editors/oauth/records"),
        visitor.get("/api/editors/oauth/record?key=Guarded"),
        visitor.get("/api/editors/oauth/record?key=Guarded%20(2)"),
        visitor.command("oauth", "show", record="Guarded"),
        visitor.command("oauth", "list"),
        visitor.command("oauth", "edit", record="Guarded", form={"client_secret": CANARY_SECRET}),
        visitor.command("oauth", "test", record="Guarded"),
    ]
    assert answers[-4].status_code == 200, answers[-4].text
    for answer in answers:
        for secret in (CANARY_SECRET, CANARY_PASSPHRASE):
            assert secret not in answer.text, answer.request.url
            assert secret not in json.dumps(dict(answer.headers))
    assert "/api/editors/oauth/commands/save 200" in log.text()
    for secret in (CANARY_SECRET, CANARY_PASSPHRASE, visitor.server.guard.token):
        assert secret not in log.text()
    record = visitor.get("/api/editors/oauth/record?key=Guarded").json()["record"]
    assert record["secrets"]["client_secret"] is True and "client_secret" not in record["values"]


def test_a_long_command_is_a_job_the_page_polls_and_cancels(visitor, fake_provider, oauth_client):
    form = {**record_form(fake_provider, "Polled"), "client_id": oauth_client[0],
            "client_secret": oauth_client[1],
            "authorization_endpoint": fake_provider.base_url + "/nobody-answers"}
    assert visitor.command("oauth", "save", form=form).status_code == 200
    started = visitor.command("oauth", "get_refresh_token", record="Polled",
                              params={"timeout": "120"})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] == "running"
    assert job["open_url"].startswith(fake_provider.base_url + "/nobody-answers?")
    assert oauth_client[1] not in started.text
    assert 115 <= job["seconds_left"] <= 120
    status_url = f"/api/jobs/{job['job']}"
    assert visitor.get(status_url).json()["state"] == "running"
    cancel = f"{visitor.base}/api/jobs/{job['job']}/cancel"
    assert visitor.http.post(cancel, timeout=10).status_code == 403  # no CSRF token, no Origin
    cancelled = visitor.http.post(cancel, headers={"X-CSRF-Token": visitor.csrf,
                                                   "Origin": visitor.base}, timeout=10)
    assert cancelled.status_code == 200
    deadline = time.monotonic() + 10
    while (status := visitor.get(status_url).json())["state"] == "running":
        assert time.monotonic() < deadline, "Cancel did not stop Get Refresh Token"
        time.sleep(0.1)
    assert status["answer"]["ok"] is False
    assert "cancelled" in status["answer"]["error"]["message"]
    assert visitor.get("/api/jobs/not-a-job").status_code == 404


def wait_for_end(visitor, job_id: str) -> dict:
    deadline = time.monotonic() + 15
    while (status := visitor.get(f"/api/jobs/{job_id}").json())["state"] == "running":
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.1)
    return status


def test_the_device_code_flow_shows_its_code_and_stops_on_cancel(visitor, fake_provider,
                                                                 oauth_client):
    form = {**record_form(fake_provider, "Device"), "client_id": oauth_client[0],
            "client_secret": oauth_client[1], "device_endpoint": fake_provider.device_url}
    assert visitor.command("oauth", "save", form=form).status_code == 200
    fake_provider.device_auto_approve = False  # the person approves, or cancels
    device = {"device": "true", "timeout": "60"}
    started = visitor.command("oauth", "get_refresh_token", record="Device", params=device)
    assert started.status_code == 202, started.text
    job = started.json()
    code = re.search(r"enter the code (\S+?)\.", "\n".join(job["log"]))
    assert code, job["log"]
    fake_provider.approve_device(code.group(1))
    answer = wait_for_end(visitor, job["job"])["answer"]
    assert answer["ok"], answer
    assert answer["message"] == (
        "Got a Refresh Token for 'Device' (device code) and saved it in the record.")
    assert answer["record"]["secrets"]["refresh_token"] is True

    again = visitor.command("oauth", "get_refresh_token", record="Device", params=device).json()
    visitor.http.post(f"{visitor.base}/api/jobs/{again['job']}/cancel", timeout=10,
                      headers={"X-CSRF-Token": visitor.csrf, "Origin": visitor.base})
    answer = wait_for_end(visitor, again["job"])["answer"]
    assert not answer["ok"] and "cancelled" in answer["error"]["message"]
    assert answer["record"]["secrets"]["refresh_token"] is True  # the earlier one is kept


# --- hostsim ui ------------------------------------------------------------------------------


def test_hostsim_ui_prints_the_address_serves_it_and_stops_cleanly_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "hostsim.cli.main", "ui", "--no-open"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "BROWSER": "false"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        found = re.fullmatch(r"Settings screen: (http://127\.0\.0\.1:(\d+)/\?token=([\w-]+))",
                             line)
        assert found, line
        url, port, token = found.group(1), int(found.group(2)), found.group(3)
        session = requests.Session()
        assert session.get(url, timeout=10).status_code == 200
        assert "OAuth parameters" in session.get(f"http://127.0.0.1:{port}/", timeout=10).text
        with socket.socket() as probe:  # nothing answers on other addresses
            probe.settimeout(2)
            assert probe.connect_ex(("127.0.0.2", port)) != 0
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Settings screen stopped." in out
    assert token not in err
    assert "GET / 200" in err
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # the port is free again


def test_hostsim_ui_starts_the_browser_on_a_private_file_not_on_the_token_url(tmp_path):
    """Every user of the machine can read a program's command line (ps): the browser gets the
    path of a file only its owner can read, which forwards to the address with the token."""
    seen = tmp_path / "browser.json"
    browser = tmp_path / "browser.py"
    browser.write_text(
        "import json, os, sys, urllib.parse, urllib.request\n"
        "path = urllib.request.url2pathname(urllib.parse.urlsplit(sys.argv[1]).path)\n"
        f"json.dump({{'argv': sys.argv[1:], 'mode': os.stat(path).st_mode & 0o777, "
        f"'page': open(path).read()}}, open({str(seen)!r}, 'w'))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hostsim.cli.main", "ui"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "BROWSER": f"{sys.executable} {browser} %s"},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("Settings screen: ")
        deadline = time.monotonic() + 15
        while not seen.exists():
            assert time.monotonic() < deadline, "the browser was not started"
            time.sleep(0.1)
        time.sleep(0.2)  # let it finish writing
        started = json.loads(seen.read_text())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    token = url.split("token=", 1)[1]
    (launcher,) = started["argv"]
    assert launcher.startswith("file://") and token not in launcher
    assert started["mode"] == 0o600
    assert f'content="0;url={url}"' in started["page"]
    assert proc.returncode == 0, err
    assert not Path(urllib.request.url2pathname(urllib.parse.urlsplit(launcher).path)).exists()
