"""Helpers for the IMAP tests: build task steps, run them, read what the loop bodies logged."""

from __future__ import annotations

import re
from typing import Any

import yaml
from imapclient import IMAPClient
from mail_fixtures import MailUser, imap_params


def open_step(
    sandbox, user: MailUser, *, folder: str | None = None, connection: str | None = None, **kw: Any
) -> dict[str, Any]:
    params = imap_params(sandbox, user, **kw)
    if folder is not None:
        params["folder"] = folder
    if connection is not None:
        params["connection"] = connection
    return {"action": "IMAP Open", "params": params}


def step(action: str, do: list[dict[str, Any]] | None = None, **params: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"action": action, "params": params}
    if do is not None:
        out["do"] = do
    return out


def log(message: str) -> dict[str, Any]:
    return step("Log Message", message=message)


def run(host, steps: list[dict[str, Any]], *, name: str = "imap test", on_error: str = "stop",
        variables: dict[str, Any] | None = None):
    text = yaml.safe_dump({"name": name, "on_error": on_error, "steps": steps}, allow_unicode=True)
    return host.run_text(text, variables=variables)


def run_ok(host, steps: list[dict[str, Any]], **kw: Any):
    result = run(host, steps, **kw)
    assert result.ok, (result.error, result.log)
    return result


def logged(result, tag: str = "S") -> list[str]:
    """Values the task logged as ``<tag>:<value>`` (one per loop pass), in order."""
    out = []
    for line in result.log:
        m = re.search(rf"(?:^|\] ){tag}:(.*)$", line)
        if m:
            out.append(m.group(1))
    return out


def client(sandbox, user: MailUser, folder: str | None = "INBOX") -> IMAPClient:
    """A direct imapclient connection for setting up and checking mailboxes."""
    c = IMAPClient(sandbox.host, port=sandbox.ports["imaps"], ssl_context=sandbox.ssl_context())
    c.login(user.username, user.password)
    if folder:
        c.select_folder(folder)
    return c


def subjects_by_uid(sandbox, user: MailUser, folder: str = "INBOX") -> dict[int, str]:
    with client(sandbox, user, None) as c:
        c.select_folder(folder, readonly=True)
        data = c.fetch(c.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    out = {}
    for uid, entry in data.items():
        raw = entry[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode()
        out[uid] = raw.split(":", 1)[1].strip() if ":" in raw else ""
    return out


def flags_by_subject(sandbox, user: MailUser, folder: str = "INBOX") -> dict[str, set[str]]:
    with client(sandbox, user, None) as c:
        c.select_folder(folder, readonly=True)
        uids = c.search("ALL")
        heads = c.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    out = {}
    for entry in heads.values():
        subject = entry[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().split(":", 1)[1].strip()
        out[subject] = {f.decode() for f in entry[b"FLAGS"] if f != b"\\Recent"}
    return out
