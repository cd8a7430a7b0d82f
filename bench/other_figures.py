"""POP3 loop, SMTP send and Parse Email figures, each against the stdlib doing the same job.

The plugin side runs the real actions through Host.run_text in this process (the host is loaded
and warmed up first, so only the work is timed); the baseline is the plain stdlib script a
person would write for the same result.
"""

from __future__ import annotations

import datetime as dt
import poplib
import random
import smtplib
import ssl
import statistics
import time
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import yaml

from bench.common import Bench, Figure, header_message, load_host, run_task_timed
from bench.probes import header_facts


def _interleaved(repeat: int, plugin: Any, baseline: Any) -> tuple[float, float]:
    """Median of ``repeat`` runs of each, alternating, after one untimed round of each."""
    plugin()
    baseline()
    p, b = [], []
    for _ in range(repeat):
        p.append(plugin())
        b.append(baseline())
    return statistics.median(p), statistics.median(b)


def _timer(fn: Any) -> Any:
    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


# --- POP3 ----------------------------------------------------------------------------------------

POP3_TASK = """\
name: bench-pop3-loop
on_error: stop
steps:
  - action: POP3 Open
    params: {server: "{Server}", port: "{Port}", security: ssl, username: "{User}",
             password: "{Password}", ca_file: "{CaFile}"}
  - action: POP3 Mail Loop
    params: {retrieve: headers, save_to: Msg}
    do:
      - action: Set Variable
        params: {name: Last, value: "{json:Msg.subject}"}
  - action: POP3 Close
"""


def pop3_figure(bench: Bench, size: dict[str, int], log: Any) -> Figure:
    count = size["pop3"]
    user = bench.new_user("pop3")
    log(f"seeding {count} messages for the POP3 loop")
    bench.sandbox.seed(user[0], [header_message(n) for n in range(count)])
    host = load_host()
    variables = {
        "Server": bench.sandbox.host,
        "Port": bench.sandbox.ports["pop3s"],
        "CaFile": str(bench.sandbox.ca_file),
        "User": user[0],
        "Password": user[1],
    }

    def baseline() -> None:
        ctx = ssl.create_default_context(cafile=str(bench.sandbox.ca_file))
        pop = poplib.POP3_SSL(bench.sandbox.host, bench.sandbox.ports["pop3s"], context=ctx)
        pop.user(user[0])
        pop.pass_(user[1])
        total, _size = pop.stat()
        for n in range(1, total + 1):
            _resp, lines, _octets = pop.top(n, 0)
            header_facts(b"\r\n".join(lines) + b"\r\n")
        pop.quit()
        if total != count:
            raise RuntimeError(f"POP3 baseline saw {total} messages, not {count}")

    plugin, base = _interleaved(
        size["repeat"], lambda: run_task_timed(host, POP3_TASK, variables), _timer(baseline)
    )
    return Figure(
        key="pop3_loop",
        title=f"POP3 Mail Loop, {count} messages, headers",
        value=plugin,
        unit="s",
        baseline=base,
        baseline_label="raw poplib TOP n 0 loop + stdlib header parsing",
        target="ratio <= 1.5",
        limit=1.5,
        how=f"Host.run_text in this process (host loaded first) vs poplib, median of "
        f"{size['repeat']}",
    )


# --- SMTP ----------------------------------------------------------------------------------------


def _smtp_task(count: int) -> str:
    send = {
        "server": "{Server}",
        "port": "{Port}",
        "security": "starttls",
        "username": "{User}",
        "password": "{Password}",
        "ca_file": "{CaFile}",
        "to": "{User}",
        "subject": "Bench message {N}",
        "body": "Hello from the benchmark.\nLine two.",
    }
    task = {
        "name": "bench-smtp",
        "on_error": "stop",
        "steps": [
            {
                "action": "For Each",
                "params": {"items": list(range(count)), "save_to": "N"},
                "do": [{"action": "SMTP Send Email", "params": send}],
            }
        ],
    }
    return yaml.safe_dump(task, sort_keys=False)


def smtp_figure(bench: Bench, size: dict[str, int], log: Any) -> Figure:
    count = size["smtp"]
    user = bench.new_user("smtp")
    host = load_host()
    variables = {
        "Server": bench.sandbox.host,
        "Port": bench.sandbox.ports["submission"],
        "CaFile": str(bench.sandbox.ca_file),
        "User": user[0],
        "Password": user[1],
    }
    text = _smtp_task(count)

    def baseline() -> None:
        ctx = ssl.create_default_context(cafile=str(bench.sandbox.ca_file))
        for n in range(count):
            msg = EmailMessage()
            msg["From"] = user[0]
            msg["To"] = user[0]
            msg["Subject"] = f"Bench message {n}"
            msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
            msg["Message-ID"] = make_msgid(domain="example.test")
            msg.set_content("Hello from the benchmark.\nLine two.")
            with smtplib.SMTP(bench.sandbox.host, bench.sandbox.ports["submission"]) as smtp:
                smtp.ehlo()
                smtp.starttls(context=ctx)
                smtp.ehlo()
                smtp.login(user[0], user[1])
                smtp.send_message(msg)

    log(f"{count} SMTP Send Email actions vs {count} smtplib sends")
    plugin, base = _interleaved(
        size["repeat"], lambda: run_task_timed(host, text, variables), _timer(baseline)
    )
    return Figure(
        key="smtp_send",
        title=f"SMTP Send Email, {count} messages, one action each",
        value=plugin,
        unit="s",
        baseline=base,
        baseline_label="raw smtplib, one connection per message",
        target="ratio <= 1.3",
        limit=1.3,
        how=f"Host.run_text, For Each over {count} sends (STARTTLS, password) vs smtplib, "
        f"median of {size['repeat']}",
    )


# --- Parse Email ---------------------------------------------------------------------------------


def corpus_message(n: int, rng: random.Random) -> bytes:
    """One of several shapes real mail comes in, with sizes from 1 to about 60 KB."""
    msg = EmailMessage()
    msg["From"] = rng.choice(
        ["Ann <ann@example.test>", "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.test>",
         "billing@shop.example", '"Doe, John" <john@example.test>']
    )
    msg["To"] = ", ".join(f"r{i}@example.test" for i in range(1 + n % 4))
    if n % 3 == 0:
        msg["Cc"] = "cc@example.test"
    msg["Subject"] = rng.choice(
        ["Invoice {n}", "Grüße aus München {n}", "Réunion {n}", "会议记录 {n}", "Re: Fwd: {n}"]
    ).replace("{n}", str(n))
    msg["Date"] = format_datetime(dt.datetime(2024, 5, 1, tzinfo=dt.UTC) + dt.timedelta(hours=n))
    msg["Message-ID"] = make_msgid(domain="example.test")
    text = f"Grüße, this is line {n} of a message body. " * rng.randint(3, 120)
    shape = n % 6
    if shape == 0:  # plain text, UTF-8
        msg.set_content(text)
    elif shape == 1:  # Latin-1, quoted-printable
        msg.set_content(text, charset="iso-8859-1", cte="quoted-printable")
    elif shape == 2:  # text + HTML alternative
        msg.set_content(text)
        msg.add_alternative(f"<html><body><p>{text}</p><p>Bye</p></body></html>", subtype="html")
    elif shape == 3:  # HTML only
        msg.set_content(f"<html><body><h1>News</h1><p>{text}</p></body></html>", subtype="html")
    elif shape == 4:  # text + attachments
        msg.set_content(text)
        for i in range(1 + n % 3):
            data = rng.randbytes(rng.randint(500, 20_000))
            msg.add_attachment(data, maintype="application", subtype="octet-stream",
                               filename=f"Bericht-{n}-{i}.bin")
    else:  # a forwarded message inside
        msg.set_content(text)
        inner = EmailMessage()
        inner["From"] = "inner@example.test"
        inner["Subject"] = f"Original {n}"
        inner.set_content("The original text.")
        msg.add_attachment(inner)
    return msg.as_bytes()


def stdlib_facts(data: bytes) -> dict[str, Any]:
    """The same facts with the stdlib's modern API: headers, best text and HTML, attachments."""
    msg = BytesParser(policy=default_policy).parsebytes(data)
    facts: dict[str, Any] = {k: str(msg.get(k, "")) for k in ("subject", "from", "to", "date")}
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    facts["text"] = plain.get_content() if plain is not None else ""
    facts["html"] = html.get_content() if html is not None else ""
    facts["attachments"] = [
        (part.get_filename(), len(part.get_payload(decode=True) or b""))
        for part in msg.iter_attachments()
    ]
    return facts


def parse_figure(bench: Bench, size: dict[str, int], log: Any) -> Figure:
    count = size["parse"]
    rng = random.Random(6)
    folder = bench.work / "corpus"
    folder.mkdir()
    paths: list[str] = []
    for n in range(count):
        path = folder / f"{n:05d}.eml"
        path.write_bytes(corpus_message(n, rng))
        paths.append(str(path))
    log(f"Parse Email over {count} files")
    host = load_host()
    text = yaml.safe_dump(
        {
            "name": "bench-parse",
            "on_error": "stop",
            "steps": [
                {
                    "action": "For Each",
                    "params": {"items": paths, "save_to": "File"},
                    "do": [{"action": "Parse Email", "params": {"file": "{File}",
                                                                "save_to": "Parsed"}}],
                }
            ],
        },
        sort_keys=False,
    )

    def parse_only() -> None:
        parser = BytesParser(policy=default_policy)
        for p in paths:
            parser.parsebytes(Path(p).read_bytes())

    def baseline() -> None:
        for p in paths:
            stdlib_facts(Path(p).read_bytes())

    plugin, base = _interleaved(
        size["repeat"], lambda: run_task_timed(host, text, {}), _timer(baseline)
    )
    bare = statistics.median(_timer(parse_only)() for _ in range(size["repeat"]))
    return Figure(
        key="parse_email",
        title=f"Parse Email over {count} varied messages",
        value=plugin,
        unit="s",
        baseline=base,
        baseline_label="stdlib BytesParser(policy=default) + get_body/iter_attachments",
        target="ratio <= 1.5",
        limit=1.5,
        how=f"Host.run_text, For Each over {count} files vs the stdlib reading the same files, "
        f"median of {size['repeat']}",
        notes=(
            f"BytesParser(policy=default).parsebytes alone (no header or body access): "
            f"{bare:.3f} s, ratio {plugin / bare:.2f}",
        ),
    )
