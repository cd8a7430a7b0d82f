"""Email Arrived (POP3): new mail in a POP3 mailbox starts a task, found by polling.

POP3 has no push, and a session sees the mailbox as it was at login (RFC 1939), so every check
is a short session: log in, UIDL, fetch what is new (``TOP n 0``, or ``RETR`` when a condition
reads the body), QUIT, and then hand the events over; no session is held while tasks run. The
state is the set of UIDLs handled that are still on the server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from robomail_plugin import errors
from robomail_plugin.message import files
from robomail_plugin.message.conditions import parse_conditions
from robomail_plugin.message.info import message_info
from robomail_plugin.pop3.commands import Pop3Session, account_key
from robomail_plugin.schema import TriggerEvent
from robomail_plugin.transport import connect
from robomail_plugin.trigger.actions import EmailArrivedPop3, ExistingMail
from robomail_plugin.trigger.state import (
    PERMANENT,
    REFUSED,
    Backoff,
    UidlTracker,
    describe_error,
    positive_int,
)

if TYPE_CHECKING:
    from robomail_plugin.schema import TriggerContext
    from robomail_plugin.services import Services


class Pop3Watch:
    """One POP3 mailbox watched for one task."""

    def __init__(
        self,
        services: Services,
        ctx: TriggerContext,
        params: EmailArrivedPop3,
        stop: threading.Event,
    ) -> None:
        self.services = services
        self.ctx = ctx
        self.stop = stop
        self.settings = connect.ConnectionSettings.from_login(params.login)
        self.conditions = parse_conditions(params.filters.conditions, params.filters.match)
        options = params.options
        self.poll_interval = positive_int("poll_interval", options.poll_interval)
        self.backoff = Backoff(positive_int("max_backoff", options.max_backoff))
        self.existing = options.existing_mail
        self.with_body = options.with_body
        self.download_to = options.download_to or None
        self.key = "trigger:" + account_key(self.settings)
        self.tracker: UidlTracker | None = None

    def run(self) -> Iterator[TriggerEvent]:
        connected_once = False
        lost: str | None = None
        lost_at = 0.0
        while not self.stop.is_set():
            try:
                found = self._check()
            except Exception as exc:
                if (isinstance(exc, PERMANENT) and not connected_once) or self.ctx.once:
                    if isinstance(exc, errors.RobomailError):
                        raise
                    raise errors.ConnectFailed(
                        f"checking {self.settings.describe()}: {describe_error(exc)}"
                    ) from None
                reason = describe_error(exc)
                permanent = isinstance(exc, PERMANENT)
                if isinstance(exc, REFUSED):  # no use asking again soon: the longest wait
                    self.backoff.attempts = max(self.backoff.attempts, 30)
                delay = self.backoff.next()
                if lost is None:
                    lost, lost_at = reason, time.monotonic()
                self.ctx.log(
                    f"checking {self.settings.describe()} failed: {reason}; next attempt in "
                    f"{delay:.1f} s",
                    "error" if permanent else "warning",
                )
                self.stop.wait(delay)
                continue
            if not connected_once:
                self.ctx.log(
                    f"watching the POP3 mailbox on {self.settings.describe()}, checking every "
                    f"{self.poll_interval} s"
                )
            elif lost is not None:
                self.ctx.log(
                    f"reconnected to {self.settings.describe()} after "
                    f"{time.monotonic() - lost_at:.1f} s (connection lost: {lost})"
                )
            connected_once, lost = True, None
            self.backoff.reset()
            tracker = self.tracker
            assert tracker is not None
            for uidl, info in found:
                subject = str(info.get("subject") or "")[:80]
                yield TriggerEvent(
                    variables={"Msg": info, "MsgUid": uidl},
                    summary=f"UIDL {uidl}: {subject!r} from {info.get('from_address') or '?'}",
                    key=f"{self.key}|{uidl}",
                    ack=tracker.fire(uidl),
                )
            if self.ctx.once:
                return
            self.stop.wait(self.poll_interval)

    def _check(self) -> list[tuple[str, dict[str, Any]]]:
        """One session: (UIDL, Message info) of each new matching message, then QUIT."""
        pop = connect.open_pop3(
            self.settings, self.services, log=self.ctx.log, add_secret=self.ctx.add_secret
        )
        session = Pop3Session(pop, self.settings)
        try:
            table = session.uidl()
            present = set(table.values())
            if self.tracker is None:
                self.tracker = self._load(present)
            tracker = self.tracker
            whole = self.conditions.needs_body or self.with_body or bool(self.download_to)
            sizes = session.sizes() if any(not tracker.known(u) for u in present) else {}
            found: list[tuple[str, dict[str, Any]]] = []
            skipped: list[str] = []
            for number in sorted(table):
                uidl = table[number]
                if tracker.known(uidl):
                    continue
                data = session.retrieve(number) if whole else session.headers(number)
                info = message_info(
                    data, number=number, uid=uidl, size=sizes.get(number),
                    headers_only=not whole, include_body=self.with_body,
                )
                if not self.conditions.matches(info):
                    skipped.append(uidl)
                    continue
                if not self.with_body:
                    info.pop("body_text", None)
                    info.pop("body_html", None)
                if self.download_to:
                    path = files.save_message(
                        data, info, folder=self.download_to, file_name="{uid}.eml",
                        if_exists="unique",
                    )
                    info["file"] = str(path)
                found.append((uidl, info))
            tracker.settle(skipped, present)
        finally:
            session.close()
        return found

    def _load(self, present: set[str]) -> UidlTracker:
        state = self.ctx.load_state(self.key)
        if "uidls" in state:
            return UidlTracker(self.ctx, self.key, [str(u) for u in state["uidls"]])
        skip = self.existing == ExistingMail.SKIP
        handled = present if skip else set()
        if present:
            what = "none fires" if skip else "each fires once"
            self.ctx.log(
                f"first start on this mailbox: {len(present)} message(s) already there "
                f"(existing_mail: {self.existing}: {what})"
            )
        tracker = UidlTracker(self.ctx, self.key, handled)
        tracker.settle((), present)
        return tracker


def watch_pop3(
    services: Services,
    ctx: TriggerContext,
    params: EmailArrivedPop3,
    stop: threading.Event | None,
) -> Iterator[TriggerEvent]:
    """``TriggerSpec.watch`` of Email Arrived (POP3), ``params`` bound (``BoundWatch``)."""
    return Pop3Watch(services, ctx, params, stop or threading.Event()).run()
