"""`hostsim demo`: the whole story on a private mail server, with nothing to configure.

It starts the fake OAuth provider and the sandbox, creates an OAuth record through the editor's
own commands, gets its refresh token through the browser flow (a stand-in browser follows the
redirect, as a person's would), seeds a mailbox, and runs ``demo_task.yaml`` with the real actions.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import sys
import tempfile
import webbrowser
from email.message import EmailMessage
from pathlib import Path

import click

from hostsim.cli.commands import CommandContext
from hostsim.runtime.host import Host
from robomail_plugin.host_kit import command_params

DEMO_TASK = Path(__file__).with_name("demo_task.yaml")
RECORD = "Demo Mail"
USER = "alice@example.test"


def _sample(subject: str, sender: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = USER
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{secrets.token_hex(8)}@demo.test>"
    msg.set_content(body)
    return bytes(msg)


def _isolate(work: Path) -> dict[str, str | None]:
    """Points robomail and hostsim at the demo folder; returns what to restore."""
    wanted = {
        "ROBOMAIL_HOME": str(work / "robomail"),
        "HOSTSIM_HOME": str(work / "hostsim"),
        "ROBOMAIL_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "BROWSER": f"{sys.executable} -m hostsim.devservers.fakebrowser --wait %s",
    }
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    webbrowser._tryorder = None  # type: ignore[attr-defined]  # re-read BROWSER
    return saved


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    webbrowser._tryorder = None  # type: ignore[attr-defined]


def run_demo(*, keep_files: bool = False) -> int:
    from hostsim.devservers.fakeprovider import FakeProvider
    from hostsim.devservers.sandbox import Sandbox, find_dovecot

    find_dovecot()  # before anything starts: a missing Dovecot is the only thing said
    work = Path(tempfile.mkdtemp(prefix="rm-demo-"))
    saved = _isolate(work)
    provider = FakeProvider().start()
    try:
        client_id, client_secret = "demo-client", secrets.token_urlsafe(18)
        provider.register_client(client_id, client_secret)
        with Sandbox(provider) as box:
            click.echo(
                f"Private mail server on {box.host} (IMAPS {box.ports['imaps']}, POP3S "
                f"{box.ports['pop3s']}, submission {box.ports['submission']}); "
                f"fake OAuth provider at {provider.base_url}"
            )
            host = Host.load(home=work / "hostsim")
            editor = host.registry.editors.get("oauth")
            if editor is None:
                click.echo(
                    "robomail's OAuth editor is not loaded: is robomail installed?", err=True
                )
                return 1
            ctx = CommandContext(interactive=False)
            ctx.add_secret(client_secret)
            click.echo(f"\n== OAuth editor: add the record {RECORD!r} and Get Refresh Token")
            add = editor.command("add")
            click.echo(
                add.run(
                    ctx,
                    command_params(
                        add,
                        RECORD,
                        account=USER,
                        client_id=client_id,
                        client_secret=client_secret,
                        auth_endpoint=provider.authorize_url,
                        token_endpoint=provider.token_url,
                        scope="mail offline_access",
                    ),
                ).message
            )
            get_token = editor.command("get_refresh_token")
            click.echo(
                get_token.run(ctx, command_params(get_token, RECORD, timeout=30)).message
            )
            test = editor.command("test")
            click.echo(test.run(ctx, command_params(test, RECORD)).message)

            box.seed(
                USER,
                [
                    _sample("Invoice 2026-114", "billing@shop.example", "Amount due: 42.00 EUR"),
                    _sample("Team lunch on Friday", "bob@example.test", "Pizza at noon?"),
                    _sample("Invoice 2026-115", "billing@shop.example", "Amount due: 17.50 EUR"),
                ],
            )
            report = work / "report.txt"
            report.write_text("Quarterly figures: all green.\n", encoding="utf-8")
            variables = {
                "Server": box.host,
                "CaFile": str(box.ca_file),
                "ImapPort": box.ports["imaps"],
                "Pop3Port": box.ports["pop3s"],
                "SmtpPort": box.ports["submission"],
                "Record": RECORD,
                "Me": USER,
                "Report": str(report),
                "Work": str(work),
            }
            click.echo(f"\n== Running the task {DEMO_TASK.name}")
            result = host.run_file(DEMO_TASK, variables, out=sys.stdout)
            click.echo("")
            if not result.ok:
                assert result.error is not None
                click.echo(
                    f"The demo task failed at step {result.error.step} "
                    f"[{result.error.code}]: {result.error.description}",
                    err=True,
                )
                return 1
            token_calls = len(provider.token_requests)
            click.echo(
                f"Done. The token endpoint was called {token_calls} time(s) for the whole "
                "run: access tokens are cached until shortly before they expire."
            )
            return 0
    finally:
        provider.stop()
        _restore(saved)
        if keep_files:
            click.echo(f"Demo files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
