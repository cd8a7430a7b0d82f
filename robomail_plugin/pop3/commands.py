"""The POP3 actions: Open, Close, Messages Count, Mail Loop, Download Email, Delete Email.

A ``Pop3Session`` wraps the logged-in ``poplib.POP3`` that ``connect.open_pop3`` returns and is
registered under the task's connection name. Message numbers stay valid for the whole POP3
session (RFC 1939), so a loop's snapshot is the UIDL list taken when it starts; deleting inside
the loop only marks (DELE) and takes effect at QUIT (Close with commit, or the end of the task).
``pop3.actions`` declares the actions (imported at start-up); this module is imported when one of
them first runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from robomail_plugin import errors
from robomail_plugin.message import files
from robomail_plugin.message.conditions import Conditions, parse_conditions
from robomail_plugin.message.info import message_info, parse_message, walk_parts
from robomail_plugin.pop3.actions import (
    KIND,
    OnClose,
    Pop3Close,
    Pop3DeleteEmail,
    Pop3DownloadEmail,
    Pop3MailLoop,
    Pop3MessagesCount,
    Pop3Open,
    Retrieve,
)
from robomail_plugin.schema import ActionContext
from robomail_plugin.shared_params import Auth, Order
from robomail_plugin.transport import connect

if TYPE_CHECKING:
    import poplib  # loaded with the connection (connect.open_pop3)

    from robomail_plugin.services import Services
    from robomail_plugin.shared_params import Login

T = TypeVar("T")


class Pop3Session:
    """A logged-in POP3 connection; ``close()`` is QUIT, which commits deletions."""

    def __init__(self, pop: poplib.POP3, settings: connect.ConnectionSettings) -> None:
        self.pop = pop
        self.settings = settings
        self._uidl: dict[int, str] | None = None
        self._sizes: dict[int, int] | None = None
        self.deleted: set[int] = set()  # marked with DELE in this session
        self.closed = False

    def __repr__(self) -> str:
        return f"Pop3Session({self.settings.describe()}, closed={self.closed})"

    def call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Runs one command; a refusal becomes MailProtocolError with the server's reply."""
        import poplib  # already loaded by connect.open_pop3: a dictionary look-up

        try:
            return fn(*args)
        except poplib.error_proto as exc:
            if connect.pop3_eof(exc):
                raise connect.pop3_closed(self.settings, f"POP3 {what}") from None
            reply = connect.pop3_reply(exc)
            if what != "QUIT" and self._gone():
                raise connect.pop3_closed(self.settings, f"POP3 {what}", reply) from None
            raise errors.MailProtocolError(
                f"POP3 {what}: the server {self.settings.describe()} refused it "
                f"(server said: {reply}).", server_reply=reply) from None
        except OSError as exc:
            raise errors.ConnectFailed(
                f"POP3 {what}: the connection to {self.settings.describe()} was lost "
                f"({exc.__class__.__name__}: {exc}). Open it again.") from None

    def _gone(self) -> bool:
        """Whether the server has closed the connection: a refusal can be its goodbye (Dovecot
        answers "-ERR [SYS/TEMP] Server shutting down." and hangs up). A NOOP tells."""
        import poplib

        try:
            self.pop.noop()
        except poplib.error_proto as exc:
            return connect.pop3_eof(exc)
        except OSError:
            return True
        return False

    # --- listing -------------------------------------------------------------------------------

    def stat(self) -> tuple[int, int]:
        count, size = self.call("STAT", self.pop.stat)
        return int(count), int(size)

    def uidl(self) -> dict[int, str]:
        """Message number -> unique id, listed once per session, without messages marked
        deleted (a later loop or lookup in the same session skips them)."""
        if self._uidl is None:
            _resp, lines, _octets = self.call("UIDL", self.pop.uidl)
            result: dict[int, str] = {}
            for line in lines:
                parts = bytes(line).split()
                if len(parts) >= 2 and parts[0].isdigit():
                    result[int(parts[0])] = parts[1].decode("ascii", "replace")
            self._uidl = result
        return {n: u for n, u in self._uidl.items() if n not in self.deleted}

    def sizes(self) -> dict[int, int]:
        if self._sizes is None:
            _resp, lines, _octets = self.call("LIST", self.pop.list)
            result: dict[int, int] = {}
            for line in lines:
                parts = bytes(line).split()
                if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                    result[int(parts[0])] = int(parts[1])
            self._sizes = result
        return self._sizes

    def resolve(self, number: int | None, uid: str | None) -> tuple[int, str]:
        """``(number, uid)`` of the message named by number or uid (exactly one given)."""
        if bool(number) == bool(uid):  # 0 and "" are no number and no uid
            raise errors.InvalidParameter(
                "name the message by number or by uid (one of them): e.g. number: "
                "{json:Msg.number} or uid: {json:Msg.uid}")
        table = self.uidl()
        if uid:
            for n, u in table.items():
                if u == str(uid).strip():
                    return n, u
            raise errors.MessageNotFound(
                f"no message with UIDL {str(uid)!r} on {self.settings.describe()} (it may have "
                "been deleted)")
        n = int(number or 0)
        if n not in table:
            count = len(table)
            raise errors.MessageNotFound(
                f"no message number {n} on {self.settings.describe()} (the mailbox has {count} "
                f"message(s), numbered 1 to {count}, or it was deleted)")
        return n, table[n]

    # --- fetching ------------------------------------------------------------------------------

    def retrieve(self, number: int) -> bytes:
        _resp, lines, _octets = self.call(f"RETR {number}", self.pop.retr, number)
        return b"\r\n".join(bytes(line) for line in lines) + b"\r\n"

    def headers(self, number: int) -> bytes:
        _resp, lines, _octets = self.call(f"TOP {number} 0", self.pop.top, number, 0)
        return b"\r\n".join(bytes(line) for line in lines) + b"\r\n"

    def delete(self, number: int) -> None:
        self.call(f"DELE {number}", self.pop.dele, number)
        self.deleted.add(number)

    # --- ending --------------------------------------------------------------------------------

    def close(self) -> None:
        """QUIT: deletions take effect. Never raises (the end of a task closes quietly)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.pop.quit()
        except Exception:
            with contextlib.suppress(Exception):
                self.pop.close()

    def quit(self) -> None:
        """QUIT, reporting a refusal (the server failed to remove deleted messages)."""
        self.closed = True
        try:
            self.call("QUIT", self.pop.quit)
        finally:
            with contextlib.suppress(Exception):
                self.pop.close()

    def discard(self) -> None:
        """RSET (unmark every deletion) then QUIT."""
        try:
            self.call("RSET", self.pop.rset)
        except BaseException:
            self.close()
            raise
        self.quit()


def _session(ctx: ActionContext, name: str) -> Pop3Session:
    session: Pop3Session = ctx.connection(name, KIND)
    return session


def account_key(settings: connect.ConnectionSettings) -> str:
    """Who is logged in where, for per-mailbox task state (skip_seen, only_new)."""
    who = settings.username if settings.auth == Auth.PASSWORD else f"oauth:{settings.oauth_record}"
    return f"pop3:{who}@{settings.server}:{settings.port}"


# --- actions -------------------------------------------------------------------------------------


def run_open(services: Services, ctx: ActionContext, params: Pop3Open) -> None:
    settings = connect.ConnectionSettings.from_login(params.login)
    name = params.connection
    pop = connect.open_pop3(settings, services, log=ctx.log, add_secret=ctx.add_secret)
    session = Pop3Session(pop, settings)
    try:
        ctx.open_connection(name, KIND, session)
        count, _size = session.stat()
    except BaseException:
        session.close()
        raise
    if params.save_count_to:
        ctx.set_variable(params.save_count_to, count)
    ctx.log(f"POP3 connection {name!r} open to {settings.describe()}: {count} message(s)")


def run_close(ctx: ActionContext, params: Pop3Close) -> None:
    name = params.connection
    session: Pop3Session = ctx.close_connection(name, KIND)
    if params.on_close == OnClose.DISCARD:
        session.discard()
        ctx.log(f"POP3 connection {name!r} closed; deletions discarded (RSET)")
    else:
        session.quit()
        ctx.log(f"POP3 connection {name!r} closed; deletions committed")


def run_count(ctx: ActionContext, params: Pop3MessagesCount) -> None:
    count, size = _session(ctx, params.connection).stat()
    if params.save_count_to:
        ctx.set_variable(params.save_count_to, count)
    if params.save_size_to:
        ctx.set_variable(params.save_size_to, size)
    ctx.log(f"POP3 mailbox: {count} message(s), {size} bytes")


def _matching(session: Pop3Session, table: Mapping[int, str], numbers: list[int],
              skip: set[str], whole: bool, conditions: Conditions
              ) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Fetches each message whose UIDL is not in ``skip`` (only its headers, by TOP n 0, unless
    ``whole``) and yields ``(bytes, info)`` for those the conditions match. Shared by the Mail
    Loop and Check for Email."""
    sizes = session.sizes()
    for n in numbers:
        uid = table[n]
        if uid in skip:
            continue
        data = session.retrieve(n) if whole else session.headers(n)
        info = message_info(data, number=n, uid=uid, size=sizes.get(n), headers_only=not whole)
        if conditions.matches(info):
            yield data, info


def run_loop(ctx: ActionContext, params: Pop3MailLoop) -> Iterator[dict[str, Any]]:
    conditions = parse_conditions(params.conditions, params.match)
    session = _session(ctx, params.connection)
    whole = params.retrieve == Retrieve.WHOLE or conditions.needs_body
    limit = params.max_messages
    if limit < 0:
        raise errors.InvalidParameter("max_messages must be 0 (no limit) or more")
    save_to = params.save_to
    table = dict(session.uidl())  # the snapshot
    numbers = sorted(table, reverse=params.order == Order.NEWEST)
    state_key = "skip_seen:" + account_key(session.settings)
    seen: set[str] = (
        set(ctx.load_state(state_key).get("uids", [])) if params.skip_seen else set()
    )
    done: list[str] = []
    if not conditions and not seen:  # else which messages count is known only as they come
        ctx.progress(0, min(len(numbers), limit) if limit else len(numbers))
    try:
        for _data, info in _matching(session, table, numbers, seen, whole, conditions):
            ctx.set_variable(save_to, info)
            yield info
            done.append(info["uid"])
            if limit and len(done) >= limit:
                break
    finally:
        if params.skip_seen and done:
            present = set(table.values())
            ctx.save_state(state_key, {"uids": sorted((seen & present) | set(done))})


def run_download(ctx: ActionContext, params: Pop3DownloadEmail) -> None:
    session = _session(ctx, params.connection)
    if not params.save_to_file and not params.folder:
        raise errors.InvalidParameter(
            "say where to save the message: save_to_file, or folder (with file_name)")
    number, uid = session.resolve(params.number, params.uid)
    data = session.retrieve(number)
    # written as it came; parsed only for a file name naming a header, or for attachments
    path = files.save_raw_message(data, uid=uid, number=number,
                                  save_to_file=params.save_to_file or None,
                                  folder=params.folder or None,
                                  file_name=params.file_name,
                                  if_exists=params.if_exists)
    saved: list[str] = []
    if params.attachments_folder:
        _text, _html, found = walk_parts(parse_message(data))
        saved = [str(p) for p in files.extract_attachments(
            found, params.attachments_folder, params.if_exists)]
    if params.save_path_to:
        ctx.set_variable(params.save_path_to, str(path))
    ctx.log(f"POP3 message {number} (UIDL {uid}) saved to {path}"
            + (f"; {len(saved)} attachment(s) extracted" if saved else ""))


def run_delete(ctx: ActionContext, params: Pop3DeleteEmail) -> None:
    session = _session(ctx, params.connection)
    number, uid = session.resolve(params.number, params.uid)
    session.delete(number)
    ctx.log(f"POP3 message {number} (UIDL {uid}) marked for deletion (takes effect at Close)")


def check_for_email(ctx: ActionContext, login: Login, services: Services,
                    conditions: Conditions, *, only_new: bool = False, mark_seen: bool = False,
                    download_to: str | None = None) -> list[dict[str, Any]]:
    """The POP3 branch of Check for Email (called by ``check.commands``): open, list, filter,
    QUIT. ``login`` is Check's own (its fields are POP3's here, whatever its ``protocol``).

    POP3 has no flags, so ``only_new`` (remember every UIDL an earlier check of this task saw in
    this mailbox) is the only way to tell new mail; ``messages`` and ``mark_seen`` do not apply.
    Headers come from TOP n 0 unless a condition reads the body or ``download_to`` is set.
    """
    settings = connect.ConnectionSettings.from_login(login, protocol=KIND)
    if mark_seen:
        ctx.log("mark_seen does not apply to POP3 (it has no flags); use only_new", "warning")
    download_to = download_to or None
    whole = conditions.needs_body or bool(download_to)
    key = "check:" + account_key(settings)
    pop = connect.open_pop3(settings, services, log=ctx.log, add_secret=ctx.add_secret)
    session = Pop3Session(pop, settings)
    try:
        table = session.uidl()
        known = set(ctx.load_state(key).get("uids", [])) if only_new else set()
        found: list[dict[str, Any]] = []
        for data, info in _matching(session, table, sorted(table), known, whole, conditions):
            info.pop("body_text", None)
            info.pop("body_html", None)
            if download_to:
                path = files.save_message(data, info, folder=download_to,
                                          file_name="{uid}.eml", if_exists="unique")
                info["file"] = str(path)
            found.append(info)
        if only_new:
            ctx.save_state(key, {"uids": sorted(table.values())})
        return found
    finally:
        session.close()
