"""Email Arrived (IMAP): new mail in a folder starts a task, pushed by IDLE or polled.

One connection per watched folder, selected read-only (EXAMINE: nothing changes on the server).
With IDLE (RFC 2177) the server pushes EXISTS as mail arrives; the watcher ends IDLE with DONE,
asks ``UID SEARCH UID <last+1>:*`` what is new (``n:*`` names the highest UID even when it is
below n, so the answer is filtered) and goes back to IDLE. Every ``keepalive`` seconds of silence
(and at the latest every ``idle_minutes``, before a server's 30-minute autologout) it sends DONE
and NOOP: a connection that died without a word (a NAT box dropping it, a half-open TCP link)
then fails within ``timeout`` seconds, TCP keepalive probes notice one in between, and the
watcher reconnects with backoff and jitter. Each reconnection logs in afresh, so an expired
access token is replaced by then (``connect`` asks the token service, which refreshes it, and
retries once with a new one when the server refuses a cached one).

The state per folder is the UIDVALIDITY and the highest UID handled (``trigger.state``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from robomail_plugin import errors
from robomail_plugin.imap.fetch import iter_messages
from robomail_plugin.imap.search import SearchPlan, plan_search
from robomail_plugin.imap.session import ImapSession, folder_name, wire
from robomail_plugin.message import files
from robomail_plugin.message.conditions import parse_conditions
from robomail_plugin.message.wire_text import wire_text
from robomail_plugin.schema import TriggerEvent
from robomail_plugin.transport.connect import ConnectionSettings, open_imap_as
from robomail_plugin.trigger.actions import (
    IDLE_MINUTES_MAX,
    EmailArrivedImap,
    ExistingMail,
    Push,
)
from robomail_plugin.trigger.state import (
    PERMANENT,
    REFUSED,
    Backoff,
    UidTracker,
    describe_error,
    positive_int,
)

if TYPE_CHECKING:
    from robomail_plugin.schema import TriggerContext
    from robomail_plugin.services import Services

#: untagged responses during IDLE that mean the folder changed
_CHANGES = {b"EXISTS", b"RECENT", b"EXPUNGE", b"FETCH", b"VANISHED"}
CHECK_EVERY = 0.5  # seconds: how often a waiting watcher looks at its stop event



@attrs.define
class _LinkState:
    """What the reconnect loop remembers: whether it ever connected, and since when (and why)
    the connection has been lost."""

    connected_once: bool = False
    lost: str | None = None
    lost_at: float = 0.0

class ConnectionLost(errors.ConnectFailed):
    """The server said BYE, closed the connection, or stopped answering."""


def set_keepalive(sock: socket.socket | None, idle: int) -> None:
    """TCP keepalive probes after ``idle`` seconds of silence: they keep NAT entries alive and
    turn a peer that vanished into an error instead of an endless wait."""
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, idle))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, min(idle, 15)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)


class ImapWatch:
    """One folder watched for one task: ``run()`` yields a ``TriggerEvent`` per new message."""

    def __init__(
        self,
        services: Services,
        ctx: TriggerContext,
        params: EmailArrivedImap,
        stop: threading.Event,
    ) -> None:
        self.services = services
        self.ctx = ctx
        self.stop = stop
        self.settings = ConnectionSettings.from_login(params.login)
        conditions = parse_conditions(params.filters.conditions, params.filters.match)
        self.plan: SearchPlan = plan_search(params.messages, conditions)
        self.folder = folder_name(params.folder)
        self.push = params.push
        options = params.options
        self.poll_interval = positive_int("poll_interval", options.poll_interval)
        idle_minutes = positive_int("idle_minutes", params.idle_minutes, top=IDLE_MINUTES_MAX)
        keepalive = positive_int("keepalive", params.keepalive)
        #: longest IDLE without a word from us: the keepalive, at most idle_minutes
        self.idle_period = float(min(keepalive, idle_minutes * 60))
        self.keepalive = keepalive
        self.backoff = Backoff(positive_int("max_backoff", options.max_backoff))
        self.existing = options.existing_mail
        self.with_body = options.with_body
        self.download_to = options.download_to or None
        self.tracker: UidTracker | None = None
        self.session: ImapSession | None = None
        self.idling = False

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> Iterator[TriggerEvent]:
        try:
            yield from self._run()
        finally:
            self._drop(clean=True)

    def _run(self) -> Iterator[TriggerEvent]:
        """Connect, scan, wait for news and scan again, until stopped; reconnect on failure."""
        link = _LinkState()
        while not self.stop.is_set():
            try:
                idle = self._connect()
                self._announce(link, idle)
                yield from self._scan()
                if self.ctx.once:
                    return
                while not self.stop.is_set():
                    self._wait(idle)
                    if self.stop.is_set():
                        break
                    yield from self._scan()
            except Exception as exc:
                self._recover(link, exc)

    def _announce(self, link: _LinkState, idle: bool) -> None:
        """One log line for the first connection and one per reconnection."""
        how = "IDLE" if idle else f"polling every {self.poll_interval} s"
        if not link.connected_once:
            account = self.session.account if self.session else "?"
            self.ctx.log(
                f"watching {self.folder!r} of {account} on {self.settings.describe()} with {how}"
            )
        elif link.lost is not None:
            self.ctx.log(
                f"reconnected to {self.settings.describe()} after "
                f"{time.monotonic() - link.lost_at:.1f} s (connection lost: {link.lost}); {how}"
            )
        link.lost = None
        link.connected_once = True
        self.backoff.reset()

    def _recover(self, link: _LinkState, exc: Exception) -> None:
        """After a failure: give up (a wrong set-up at the first connection, or --once), or
        drop the connection, say so once, and wait before the next attempt."""
        if isinstance(exc, PERMANENT) and not link.connected_once:
            raise exc
        if self.ctx.once:
            if isinstance(exc, errors.RobomailError):
                raise exc
            raise errors.ConnectFailed(
                f"watching {self.folder!r} on {self.settings.describe()}: {describe_error(exc)}"
            ) from None
        self._drop(clean=False)
        reason = describe_error(exc)
        permanent = isinstance(exc, PERMANENT)
        if isinstance(exc, REFUSED):  # no use asking again soon: the longest wait
            self.backoff.attempts = max(self.backoff.attempts, 30)
        delay = self.backoff.next()
        first = link.lost is None
        if first:
            link.lost, link.lost_at = reason, time.monotonic()
        if not first or permanent or not link.connected_once:
            verb = "reconnecting to" if link.connected_once else "connecting to"
            self.ctx.log(
                f"{verb} {self.settings.describe()} failed: {reason}; next attempt in "
                f"{delay:.1f} s",
                "error" if permanent else "warning",
            )
        self.stop.wait(delay)

    # --- connecting ----------------------------------------------------------------------------

    def _connect(self) -> bool:
        """Logs in, selects the folder read-only, loads the state; returns whether to IDLE."""
        self._drop(clean=False)
        client, account = open_imap_as(
            self.settings, self.services, log=self.ctx.log, add_secret=self.ctx.add_secret
        )
        self.session = session = ImapSession(client, self.settings, account)
        set_keepalive(client.socket(), min(self.keepalive, 60))
        self._drain()
        selected = session.select(self.folder, read_only=True)
        self._drain()
        uidvalidity = int(selected["uidvalidity"] or 0)
        self._track(account, uidvalidity, selected["uidnext"], int(selected["total"] or 0))
        return self.push == Push.IDLE and session.has("IDLE")

    def _key(self, account: str) -> str:
        return f"imap|{account.lower()}|{self.settings.address}|{self.folder}"

    def _track(self, account: str, uidvalidity: int, uidnext: int | None, total: int) -> None:
        old = self.tracker
        if old is not None and old.uidvalidity == uidvalidity:
            return  # the same folder: go on from what this process has looked at
        key = self._key(account)
        state = self.ctx.load_state(key)
        if old is None and state.get("uidvalidity") == uidvalidity:
            self.tracker = UidTracker(self.ctx, key, uidvalidity, int(state.get("last_uid") or 0))
            return
        baseline = self._baseline(uidnext)
        skip = self.existing == ExistingMail.SKIP
        skipped = "none fires" if skip else "each fires once"
        if old is not None or state:
            before = old.uidvalidity if old is not None else state.get("uidvalidity")
            self.ctx.log(
                f"{self.folder!r} was rebuilt on the server (UIDVALIDITY {before} -> "
                f"{uidvalidity}): its stored UIDs mean nothing now; the {total} message(s) in it "
                f"are taken as there before (existing_mail: {self.existing}: {skipped}); mail "
                "arriving from now on fires",
                "warning",
            )
            if old is not None:
                old.retire()
        elif total:
            self.ctx.log(
                f"first start on {self.folder!r}: {total} message(s) already there "
                f"(existing_mail: {self.existing}: {skipped})"
            )
        last = baseline if skip else 0
        self.tracker = UidTracker(self.ctx, key, uidvalidity, last)
        self.tracker.save_now()

    def _baseline(self, uidnext: int | None) -> int:
        """The highest UID in the folder now (UIDNEXT - 1, or asked when not given)."""
        if uidnext:
            return int(uidnext) - 1
        assert self.session is not None
        found = self._search(["UID", "*"])
        return max(found, default=0)

    def _drop(self, clean: bool) -> None:
        session, self.session = self.session, None
        idling, self.idling = self.idling, False
        if session is None:
            return
        if not clean:
            with contextlib.suppress(Exception):
                session.client.shutdown()
            return
        with contextlib.suppress(Exception):
            session.client.socket().settimeout(5)
            if idling:
                session.client.idle_done()
        session.close()

    # --- finding new mail ----------------------------------------------------------------------

    def _search(self, criteria: list[Any]) -> list[int]:
        assert self.session is not None
        from robomail_plugin.imap.search import needs_utf8

        charset = "UTF-8" if needs_utf8(criteria) else None
        found = self.session.call("UID SEARCH", self.session.client.search, criteria, charset)
        self._drain()
        return sorted(int(u) for u in found)

    def _scan(self) -> Iterator[TriggerEvent]:
        """Yields an event per new matching message, oldest first; moves the state past the
        others."""
        tracker, session = self.tracker, self.session
        assert tracker is not None and session is not None
        start = tracker.scanned + 1
        new = [u for u in self._search(["UID", f"{start}:*"]) if u >= start]
        if not new:
            return
        wanted = new
        if self.plan.criteria != ["ALL"]:
            hits = set(self._search(["UID", f"{start}:{new[-1]}", *self.plan.criteria]))
            wanted = [u for u in new if u in hits]
        need_raw = self.plan.needs_body or self.with_body or bool(self.download_to)
        for item in iter_messages(session, wanted, need_raw=need_raw, include_body=self.with_body):
            info = item.info
            if self.plan.client and not self.plan.client.matches(info):
                continue
            if not self.with_body:
                info.pop("body_text", None)
                info.pop("body_html", None)
            if self.download_to and item.raw is not None:
                path = files.save_message(
                    item.raw, info, folder=self.download_to, file_name="{uid}.eml",
                    if_exists="unique",
                )
                info["file"] = str(path)
            ack = tracker.fire(item.uid)
            subject = str(info.get("subject") or "")[:80]
            yield TriggerEvent(
                variables={"Msg": info, "MsgUid": item.uid},
                summary=f"UID {item.uid} in {self.folder}: {subject!r} from "
                f"{info.get('from_address') or '?'}",
                key=f"{tracker.key}|{tracker.uidvalidity}|{item.uid}",
                ack=ack,
            )
        tracker.skip_to(new[-1])
        self._drain()

    # --- waiting -------------------------------------------------------------------------------

    def _wait(self, idle: bool) -> None:
        if idle:
            self._idle()
            return
        self.stop.wait(self.poll_interval)
        if not self.stop.is_set():
            self._noop()

    def _noop(self) -> None:
        assert self.session is not None
        try:
            _text_, responses = self.session.call("NOOP", self.session.client.noop)
        except errors.ConnectFailed as exc:
            if "TimeoutError" in str(exc):
                raise ConnectionLost(f"no answer to NOOP in {self.settings.timeout:g} s") from None
            raise
        self._forget()
        self._untagged(responses)

    def _idle(self) -> None:
        """One IDLE: until the server reports a change, ``idle_period`` passes, or stop."""
        assert self.session is not None
        client = self.session.client
        self.session.call("IDLE", client.idle)
        self.idling = True
        started = time.monotonic()
        changed = False
        suspicious = False
        while not self.stop.is_set():
            left = self.idle_period - (time.monotonic() - started)
            if left <= 0:
                break
            chunk = min(CHECK_EVERY, left)
            asked = time.monotonic()
            responses = self.session.call("IDLE", client.idle_check, chunk)
            if responses:
                if self._untagged(responses):
                    changed = True
                    break
            elif time.monotonic() - asked < chunk / 2:
                # readable, yet no whole line: the peer closed or broke the connection
                suspicious = True
                break
        if self.stop.is_set():
            return  # _drop(clean=True) ends the IDLE
        self.idling = False
        try:
            _done, responses = client.idle_done()
        except Exception as exc:
            why = (
                f"no answer to DONE in {self.settings.timeout:g} s"
                if isinstance(exc, TimeoutError)
                else describe_error(exc)
            )
            if suspicious:
                why = f"the server closed the connection ({why})"
            raise ConnectionLost(why) from None
        self._forget()
        if self._untagged(responses):
            changed = True
        if not changed:
            self._noop()  # a connection silent this long proves it is alive, or fails here

    def _untagged(self, responses: list[Any]) -> bool:
        """Logs alerts and refusals; raises ConnectionLost on BYE; True if the folder changed."""
        changed = False
        for response in responses:
            if not isinstance(response, tuple) or len(response) < 2:
                continue
            first, second = response[0], response[1]
            if isinstance(first, int):
                changed = changed or second in _CHANGES
                continue
            kind = wire_text(first).upper()
            # imapclient splits OK and NO into (kind, text), BYE and BAD into atoms
            text = " ".join(wire_text(part) for part in response[1:])
            if kind == "BYE":
                raise ConnectionLost(f"the server said BYE {text}".strip())
            if text.upper().startswith("[ALERT]"):
                self.ctx.log(f"server alert: {text[7:].strip()}", "warning")
            elif kind in ("NO", "BAD"):
                self.ctx.log(f"server said: {kind} {text}", "warning")
        return changed

    def _drain(self) -> None:
        """Logs what the server said besides the answers (ALERTs, NO, BAD, BYE) and forgets the
        rest, so a session watched for weeks keeps no pile of old responses."""
        session = self.session
        if session is None:
            return
        pile = getattr(wire(session.client), "untagged_responses", None)
        if not pile:
            return
        for alert in pile.pop("ALERT", []) or []:
            self.ctx.log(f"server alert: {wire_text(alert).strip()}", "warning")
        for kind in ("NO", "BAD"):
            for text in pile.pop(kind, []) or []:
                self.ctx.log(f"server said: {kind} {wire_text(text)}", "warning")
        self._forget()

    def _forget(self) -> None:
        """Drops the untagged responses imaplib kept (their parsed copies were looked at);
        a BYE stays: imaplib turns it into an abort at the next command."""
        session = self.session
        pile = getattr(wire(session.client), "untagged_responses", None) if session else None
        if not pile:
            return
        bye = pile.get("BYE")
        pile.clear()
        if bye:
            pile["BYE"] = bye


def watch_imap(
    services: Services,
    ctx: TriggerContext,
    params: EmailArrivedImap,
    stop: threading.Event | None,
) -> Iterator[TriggerEvent]:
    """``TriggerSpec.watch`` of Email Arrived (IMAP), ``params`` bound (``BoundWatch``)."""
    return ImapWatch(services, ctx, params, stop or threading.Event()).run()
