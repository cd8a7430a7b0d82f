"""What every figure shares: sizes, the running servers, timing, messages, and the result line.

A figure is measured against a baseline taken in the same run on the same servers, so the ratio
says what the plugin costs on top of the protocol, whatever the machine.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOSTSIM = str(Path(PYTHON).with_name("hostsim"))

#: Sizes per mode: ``full`` is the issue's table, ``quick`` about a minute, ``tiny`` the smoke test.
#: ``wire``: messages whose commands are counted; ``latency``: messages per loop through the
#: 20 ms relay; ``download``: 100 KB messages downloaded; ``gmail``: Gmail-like headers looped.
SIZES: dict[str, dict[str, int]] = {
    "full": {"imap": 5000, "memory": 2000, "pop3": 2000, "smtp": 200, "oauth": 1000,
             "logins": 200, "parse": 1000, "startup": 15, "repeat": 5,
             "wire": 1000, "latency": 100, "download": 2000, "gmail": 5000},
    "quick": {"imap": 1000, "memory": 400, "pop3": 400, "smtp": 40, "oauth": 200,
              "logins": 60, "parse": 300, "startup": 7, "repeat": 3,
              "wire": 300, "latency": 30, "download": 400, "gmail": 1000},
    "tiny": {"imap": 20, "memory": 10, "pop3": 10, "smtp": 3, "oauth": 5,
             "logins": 4, "parse": 12, "startup": 2, "repeat": 1,
             "wire": 10, "latency": 4, "download": 10, "gmail": 20},
}


@attrs.frozen
class Figure:
    """One row of the table: the plugin's number, the baseline's, and the target."""

    key: str
    title: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = "-"
    target: str = "reported"
    #: the bound the target puts on ``ratio`` (or on ``value`` when ``on_value``); None = no target
    limit: float | None = None
    on_value: bool = False
    how: str = ""
    notes: tuple[str, ...] = ()

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        measured = self.value if self.on_value else self.ratio
        return measured is not None and measured <= self.limit


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    if float(value).is_integer():
        return f"{int(value)}{(' ' + unit) if unit else ''}"
    return f"{value:.2f}{(' ' + unit) if unit else ''}"


def figure_line(f: Figure) -> str:
    ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
    base = fmt(f.baseline, f.unit) if f.baseline is not None else "-"
    return (
        f"{f.title}: plugin {fmt(f.value, f.unit)} | baseline {base} ({f.baseline_label}) | "
        f"ratio {ratio} | target {f.target}"
    )


def verdict_line(f: Figure) -> str | None:
    if f.met is None:
        return None
    return f"{'met' if f.met else 'NOT met'}: {f.title} ({f.target})"


# --- timing --------------------------------------------------------------------------------------


def load_host() -> Any:
    """hostsim's host, loaded as `hostsim run` loads it (its plugins from entry points)."""
    from hostsim.runtime.host import Host

    return Host.load()


def run_task_timed(host: Any, text: str, variables: dict[str, Any]) -> float:
    """Seconds one task run takes in this process; a failed task ends the figure."""
    start = time.perf_counter()
    result = host.run_text(text, variables)
    took = time.perf_counter() - start
    if not result.ok:
        raise RuntimeError(f"task failed: {result.error}")
    return took


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    """The median wall time of ``repeat`` calls (seconds); the median resists one slow run."""
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_timed(cmd: list[str], *, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Runs a subprocess to the end; (wall seconds, stdout). Fails loudly with its stderr."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env, cwd=ROOT, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:4])} ... exited {proc.returncode}:\n"
            + proc.stderr.decode(errors="replace")[-3000:]
            + proc.stdout.decode(errors="replace")[-2000:]
        )
    return took, proc.stdout.decode(errors="replace")


# --- messages ------------------------------------------------------------------------------------

_SUBJECTS = [
    "Invoice {n} for March",
    "=?UTF-8?B?w5xiZXJ3ZWlzdW5nIE5yLiB7bn0=?=",  # "Überweisung Nr. {n}" (the {n} is literal)
    "Re: Team meeting notes #{n}",
    "=?ISO-8859-1?Q?R=E9union_d=27=E9quipe?= {n}",
    "Your order {n} has shipped",
]


def header_message(n: int, *, body_size: int = 600) -> bytes:
    """A plausible message (trace headers, an encoded subject now and then), CRLF line ends."""
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n)
    subject = _SUBJECTS[n % len(_SUBJECTS)].replace("{n}", str(n))
    sender = f"Sender {n % 37} <sender{n % 37}@example.test>"
    head = (
        f"Return-Path: <sender{n % 37}@example.test>\r\n"
        f"Received: from mx{n % 5}.example.test (mx{n % 5}.example.test [192.0.2.{n % 250}])\r\n"
        f"\tby mail.example.test with ESMTPS id {secrets.token_hex(6)}\r\n"
        f"\tfor <bench@example.test>; {format_datetime(when)}\r\n"
        f"From: {sender}\r\n"
        "To: Bench <bench@example.test>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {format_datetime(when)}\r\n"
        f"Message-ID: <{n}.{secrets.token_hex(4)}@example.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    line = f"Line of message {n}: the quick brown fox jumps over the lazy dog.\r\n"
    body = (line * (body_size // len(line) + 1))[:body_size]
    return head.encode() + body.encode()


def _b64(nbytes: int) -> str:
    return base64.b64encode(os.urandom(nbytes)).decode()


def _folded(name: str, value: str, width: int = 76) -> str:
    """``name: value`` folded the way mail software folds long base64 values."""
    first = f"{name}: {value[: width - len(name) - 2]}"
    rest = value[width - len(name) - 2 :]
    lines = [first] + ["\t" + rest[i : i + width - 1] for i in range(0, len(rest), width - 1)]
    return "\r\n".join(lines) + "\r\n"


def gmail_message(n: int) -> bytes:
    """A message as Gmail delivers it: a 3-6 KB header (Received chains, ARC, DKIM, Google's own
    X- headers) in front of a small text + HTML body, most of it bytes Message info never reads."""
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=7 * n)
    date = format_datetime(when)
    sender_domain = f"news{n % 23}.example.test"
    hops = 2 + n % 4  # 2-5 Received headers
    received = "".join(
        f"Received: from mail-{h}.{sender_domain} (mail-{h}.{sender_domain}. "
        f"[198.51.100.{(n + h) % 250}])\r\n"
        f"        by mx.google.example with SMTPS id {_b64(9)}\r\n"
        f"        for <bench@example.test>\r\n"
        f"        (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256);\r\n"
        f"        {date}\r\n"
        for h in range(hops)
    )
    seal = _b64(192)
    signed = "to:subject:message-id:date:from:mime-version:dkim-signature"
    head = (
        "Delivered-To: bench@example.test\r\n"
        + received
        + f"X-Google-Smtp-Source: {_b64(60)}\r\n"
        + f"X-Received: by 2002:a05:6a00:{n % 9999:x} with SMTP id {_b64(9)};\r\n"
        + f"        {date}\r\n"
        + _folded("ARC-Seal", f"i=1; a=rsa-sha256; t={1714521600 + n}; cv=none; d=google.example;"
                  f" s=arc-20160816; b={seal}")
        + _folded("ARC-Message-Signature", f"i=1; a=rsa-sha256; c=relaxed/relaxed; "
                  f"d=google.example; s=arc-20160816; h={signed}; bh={_b64(32)}; b={_b64(256)}")
        + _folded("ARC-Authentication-Results", f"i=1; mx.google.example; dkim=pass "
                  f"header.i=@{sender_domain} header.s=s1 header.b={_b64(6)}; spf=pass "
                  f"(google.example: domain of bounce@{sender_domain} designates 198.51.100.7 as "
                  f"permitted sender) smtp.mailfrom=bounce@{sender_domain}; dmarc=pass "
                  f"(p=NONE sp=NONE dis=NONE) header.from={sender_domain}")
        + f"Return-Path: <bounce-{n}@{sender_domain}>\r\n"
        + f"Received-SPF: pass (google.example: domain of bounce@{sender_domain} designates "
        + "198.51.100.7 as permitted sender) client-ip=198.51.100.7;\r\n"
        + _folded("Authentication-Results", f"mx.google.example; dkim=pass "
                  f"header.i=@{sender_domain} header.s=s1 header.b={_b64(6)}; spf=pass "
                  f"smtp.mailfrom=bounce@{sender_domain}; dmarc=pass header.from={sender_domain}")
        + _folded("DKIM-Signature", f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={sender_domain}; "
                  f"s=s1; t={1714521600 + n}; x={1715126400 + n}; h={signed}; bh={_b64(32)}; "
                  f"b={_b64(256 + 128 * (n % 3))}")
        + _folded("X-Google-DKIM-Signature", f"v=1; a=rsa-sha256; c=relaxed/relaxed; "
                  f"d=1e100.example; s=20230601; h={signed}; bh={_b64(32)}; b={_b64(256)}")
        + f"X-Gm-Message-State: {_b64(120)}\r\n"
        + f"List-Unsubscribe: <mailto:leave-{n}@{sender_domain}>, "
        + f"<https://{sender_domain}/u/{_b64(24)}>\r\n"
        + "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        + "MIME-Version: 1.0\r\n"
        + f"From: =?UTF-8?Q?Newsletter_{n % 23}?= <news@{sender_domain}>\r\n"
        + f"Date: {date}\r\n"
        + f"Message-ID: <{_b64(12)}.{n}@{sender_domain}>\r\n"
        + f"Subject: {_SUBJECTS[n % len(_SUBJECTS)].replace('{n}', str(n))}\r\n"
        + "To: Bench <bench@example.test>\r\n"
        + f'Content-Type: multipart/alternative; boundary="000000000000{n:012x}"\r\n\r\n'
    )
    body = (
        f"--000000000000{n:012x}\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
        f"Hello, this is issue {n}.\r\n"
        f"--000000000000{n:012x}\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n"
        f"<p>Hello, this is issue {n}.</p>\r\n--000000000000{n:012x}--\r\n"
    )
    return head.encode() + body.encode()


def big_message(n: int, size: int = 100 * 1024) -> bytes:
    """A message of about ``size`` bytes: text plus a base64 attachment (bodies loop)."""
    msg = EmailMessage()
    msg["From"] = f"sender{n % 11}@example.test"
    msg["To"] = "bench@example.test"
    msg["Subject"] = f"Report {n}"
    msg["Date"] = format_datetime(dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    msg["Message-ID"] = make_msgid(domain="example.test")
    msg.set_content("Please find the report attached.\n" * 20)
    payload = os.urandom(max(1, int((size - 2500) * 3 / 4)))
    msg.add_attachment(payload, maintype="application", subtype="pdf", filename=f"r{n}.pdf")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# --- the environment -----------------------------------------------------------------------------


class Bench:
    """The fake provider, the sandbox and a private data folder, for one benchmark run."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="rm-bench-"))
        self.work.chmod(0o700)
        self._saved: dict[str, str | None] = {}
        self.provider: Any = None
        self.sandbox: Any = None

    def start(self) -> Bench:
        from hostsim.devservers.fakeprovider import FakeProvider
        from hostsim.devservers.sandbox import Sandbox

        wanted = {
            "ROBOMAIL_HOME": str(self.work / "robomail"),
            "HOSTSIM_HOME": str(self.work / "hostsim"),
            "ROBOMAIL_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        }
        # Subprocesses use byte-code caches as an installed program does, kept in the run's
        # folder (PYTHONDONTWRITEBYTECODE would make every start compile the sources again).
        wanted["PYTHONPYCACHEPREFIX"] = str(self.work / "pycache")
        self._saved = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)
        for name in ("HOSTSIM_BLOCK_PLUGINS", "HOSTSIM_TRACE", "PYTHONDONTWRITEBYTECODE"):
            self._saved.setdefault(name, os.environ.pop(name, None))
        self.provider = FakeProvider().start()
        self.sandbox = Sandbox(self.provider).start()
        return self

    def stop(self) -> None:
        """Stops the servers this run started (Dovecot by its PID) and removes the folder."""
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.provider is not None:
            self.provider.stop()
            self.provider = None
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> Bench:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # users, records, private files

    def new_user(self, prefix: str) -> tuple[str, str]:
        username = f"{prefix}-{secrets.token_hex(3)}@example.test"
        password = secrets.token_urlsafe(12)
        self.sandbox.add_user(username, password)
        return username, password

    def oauth_record(self, username: str, name: str) -> str:
        """Stores an OAuth record for ``username`` (a refresh token the provider minted)."""
        from robomail_plugin.credentials.records import OAuthRecord
        from robomail_plugin.services import Services

        client_id = "bench-" + secrets.token_hex(4)
        client_secret = secrets.token_urlsafe(16)
        self.provider.register_client(client_id, client_secret)
        Services().store.add(
            OAuthRecord(
                record_name=name,
                client_account=username,
                client_id=client_id,
                client_secret=client_secret,
                refresh_token=self.provider.mint_refresh_token(client_id, username),
                authorization_endpoint=self.provider.authorize_url,
                token_endpoint=self.provider.token_url,
                scope="mail offline_access",
            )
        )
        return name

    def private_file(self, name: str, text: str) -> Path:
        """A 0600 file in the private work folder (task files and configs holding passwords)."""
        path = self.work / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def server_config(self, user: tuple[str, str], port: str) -> dict[str, Any]:
        return {
            "host": self.sandbox.host,
            "port": self.sandbox.ports[port],
            "ca_file": str(self.sandbox.ca_file),
            "username": user[0],
            "password": user[1],
        }

    def config_file(self, name: str, config: dict[str, Any]) -> Path:
        return self.private_file(name, json.dumps(config))
