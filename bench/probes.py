"""Measurements that must run in a fresh process: ``python -m bench.probes <probe> <config.json>``.

* ``imap-bulk``: the baseline of the IMAP loop figure, raw imaplib: one
  ``UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])`` and stdlib header parsing.
* ``imap-naive``: the same with one ``UID FETCH`` per message (what batching saves).
* ``imap-tools``: imap-tools reading every header (``MailBox.fetch(headers_only=True,
  bulk=True)``) and the same fields of each.
* ``memory``: peak RSS (VmHWM) of a process before and after an IMAP Mail Loop with bodies.

Each prints one JSON line on stdout. The config file (0600, in the run's private folder) holds
the sandbox address and the user's password, so no password shows in a process list.
"""

from __future__ import annotations

import imaplib
import json
import ssl
import sys
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from typing import Any

_PARSER = BytesHeaderParser()  # compat32: the fast path (policy=default is about 5x slower)


def _decoded(value: str | None) -> str:
    try:
        return str(make_header(decode_header(value or "")))
    except (ValueError, LookupError, UnicodeError):
        return value or ""


def header_facts(header: bytes) -> dict[str, Any]:
    """What a plain stdlib script takes out of a header: the usual fields, decoded."""
    msg = _PARSER.parsebytes(header)
    try:
        date = parsedate_to_datetime(msg.get("date", "")).isoformat()
    except (TypeError, ValueError):
        date = ""
    return {
        "subject": _decoded(msg.get("subject")),
        "from": parseaddr(_decoded(msg.get("from")))[1],
        "to": [a for _n, a in getaddresses([_decoded(msg.get("to"))])],
        "date": date,
        "message_id": (msg.get("message-id") or "").strip(),
        "size": len(header),
    }


def _imap(config: dict[str, Any]) -> imaplib.IMAP4_SSL:
    ctx = ssl.create_default_context(cafile=config["ca_file"])
    imap = imaplib.IMAP4_SSL(config["host"], config["port"], ssl_context=ctx)
    imap.login(config["username"], config["password"])
    imap.select("INBOX", readonly=True)
    return imap


def _facts_of(data: list[Any]) -> list[dict[str, Any]]:
    return [header_facts(item[1]) for item in data if isinstance(item, tuple)]


def imap_bulk(config: dict[str, Any]) -> dict[str, Any]:
    imap = _imap(config)
    _typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])")
    facts = _facts_of(data)
    imap.logout()
    return {"messages": len(facts)}


def imap_naive(config: dict[str, Any]) -> dict[str, Any]:
    imap = _imap(config)
    _typ, found = imap.uid("SEARCH", "ALL")
    count = 0
    for uid in found[0].split():
        _typ, data = imap.uid("FETCH", uid, "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])")
        count += len(_facts_of(data))
    imap.logout()
    return {"messages": count}


def imap_tools_headers(config: dict[str, Any]) -> dict[str, Any]:
    from imap_tools import MailBox

    ctx = ssl.create_default_context(cafile=config["ca_file"])
    count = 0
    with MailBox(config["host"], config["port"], ssl_context=ctx).login(
        config["username"], config["password"], initial_folder="INBOX"
    ) as mailbox:
        for msg in mailbox.fetch(headers_only=True, mark_seen=False, bulk=True):
            facts = (msg.subject, msg.from_, msg.to, msg.date, msg.headers.get("message-id"))
            count += bool(facts)
    return {"messages": count}


def vm_hwm_mb() -> float:
    """Peak resident set size of this process so far (VmHWM), in MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory(config: dict[str, Any]) -> dict[str, Any]:
    """Loads the host, warms it up on a tiny folder (imports, TLS), then loops with bodies."""
    from hostsim.runtime.host import Host

    host = Host.load()
    variables = {
        "Server": config["host"],
        "Port": config["port"],
        "CaFile": config["ca_file"],
        "User": config["username"],
        "Password": config["password"],
    }
    warm = host.run_text(config["task"].replace("INBOX", "Warm"), variables)
    if not warm.ok:
        raise RuntimeError(f"warm-up failed: {warm.error}")
    before = vm_hwm_mb()
    result = host.run_text(config["task"], variables)
    if not result.ok:
        raise RuntimeError(f"loop failed: {result.error}")
    after = vm_hwm_mb()
    loops = [line for line in result.log if "iteration(s)" in line]
    return {"before_mb": before, "after_mb": after, "loop": loops[-1] if loops else ""}


PROBES = {
    "imap-bulk": imap_bulk,
    "imap-naive": imap_naive,
    "imap-tools": imap_tools_headers,
    "memory": memory,
}


def main(argv: list[str]) -> int:
    probe, path = argv
    with open(path, encoding="utf-8") as fh:
        config = json.load(fh)
    print(json.dumps(PROBES[probe](config)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
