"""The IMAP actions of the catalogue (ACTIONS.md, "IMAP"): what each one does.

Connecting is ``connect.open_imap``; the open connection is an ``ImapSession``; searching is
``imap.search``; batched fetching is ``imap.fetch``. Messages are addressed by UID in the selected
folder; folder names are plain Unicode (imapclient does the modified UTF-7).

An action costs one command: nothing is checked before a UID command, the server's answer says
what happened (COPYUID and EXPUNGE for a move, FETCH for a store), and only an answer that does
not tell is followed by a ``UID FETCH`` of the UIDs in doubt. A list of UIDs (a loop's
``save_uids_to``) is one command per ``imap.session.MAX_SET_CHARS`` of UID set.
``imap.actions`` declares the actions (imported at start-up); this module is imported when one of
them first runs.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from robomail_plugin import errors
from robomail_plugin.imap.actions import FlagOperation
from robomail_plugin.imap.fetch import iter_messages
from robomail_plugin.imap.search import (
    SearchPlan,
    needs_utf8,
    parse_uids,
    plan_search,
    search_raw,
)
from robomail_plugin.imap.session import (
    KIND,
    CurrentMessage,
    ImapSession,
    folder_name,
    is_nonexistent,
    uid_sets,
    wire,
)
from robomail_plugin.message import files
from robomail_plugin.message.conditions import parse_conditions
from robomail_plugin.message.info import parse_message, walk_parts
from robomail_plugin.message.wire_text import wire_text
from robomail_plugin.schema import ActionContext
from robomail_plugin.shared_params import Order
from robomail_plugin.transport.connect import ConnectionSettings, open_imap_as

if TYPE_CHECKING:
    from robomail_plugin.imap.actions import (
        ImapClose,
        ImapDeleteMarked,
        ImapDownload,
        ImapFolderInfo,
        ImapGetFlags,
        ImapMailLoop,
        ImapMove,
        ImapOpen,
        ImapSelect,
        ImapSetFlags,
    )
    from robomail_plugin.services import Services
    from robomail_plugin.shared_params import Login

SYSTEM_FLAGS = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}
_KEYWORD_RE = re.compile(r"^[!#$&'+\-./0-9:<=>?@A-Z^_`a-z|~]+$")  # IMAP atom without \ % * ] ( )

# --- helpers -------------------------------------------------------------------------------------


def _session(ctx: ActionContext, name: str, *, closing: bool = False) -> ImapSession:
    """The open IMAP connection of that name."""
    session = ctx.connection(name, KIND)
    if not isinstance(session, ImapSession):
        raise errors.InvalidParameter(f"connection {name!r} is not an IMAP connection.")
    if session.dropped is not None and not closing:  # it broke: free the name, say so
        ctx.close_connection(name, KIND)
        raise session.dropped_error(f"connection {name!r}")
    return session


def connect_session(ctx: ActionContext, login: Login, services: Services) -> ImapSession:
    """Opens and logs in per ``login`` (an ``ImapLogin``); the caller registers or closes it."""
    settings = ConnectionSettings.from_login(login)
    # the account comes from the login itself: an OAuth record is read once per login
    client, account = open_imap_as(settings, services, log=ctx.log, add_secret=ctx.add_secret)
    return ImapSession(client, settings, account)


def search_uids(
    session: ImapSession, criteria: list[Any], raw_search: str | None = None
) -> list[int]:
    """UIDs matching ``criteria`` (and ``raw_search`` when given), ascending."""
    charset = "UTF-8" if needs_utf8(criteria) else None
    uids = set(session.call("UID SEARCH", session.client.search, criteria, charset))
    raw = (raw_search or "").strip()
    if raw:  # 8-bit values go as literals, with CHARSET UTF-8 (imap.search.search_raw)
        uids &= set(session.call(f"UID SEARCH {raw}", search_raw, session.client, raw))
    return sorted(int(u) for u in uids)


def parse_flags(value: Any) -> list[str]:
    """Flags from ``"\\Seen \\Flagged"`` or a list; system flags normalised, keywords checked."""
    if isinstance(value, list | tuple):
        parts = [str(v) for v in value]
    else:
        parts = re.split(r"[\s,;]+", str(value or "").strip())
    out: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if part.startswith("\\"):
            flag = SYSTEM_FLAGS.get(part.lower())
            if flag is None:
                raise errors.InvalidParameter(
                    f"flag {part!r} is not a system flag; use \\Seen, \\Answered, \\Flagged, "
                    "\\Deleted, \\Draft or a keyword without a backslash."
                )
        elif _KEYWORD_RE.match(part):
            flag = part
        else:
            raise errors.InvalidParameter(
                f"flag {part!r} is not a valid keyword (letters, digits and $-._ only, no spaces)."
            )
        if flag not in out:
            out.append(flag)
    return out


def _explicit(uids: list[int | str]) -> list[int] | None:
    """The UIDs as ints when the list has no range (so missing ones can be reported)."""
    return (
        [u for u in uids if isinstance(u, int)] if all(isinstance(u, int) for u in uids) else None
    )


def _missing_error(missing: list[int], folder: str) -> errors.MessageNotFound:
    shown = ", ".join(str(u) for u in missing[:20]) + (" ..." if len(missing) > 20 else "")
    return errors.MessageNotFound(
        f"no message with UID {shown} in folder {folder!r}. It may have been moved or deleted; "
        "UIDs belong to one folder (a moved message gets a new UID)."
    )


def _fetch_one(session: ImapSession, uid: int, items: list[str]) -> dict[bytes, Any]:
    folder = session.require_selected("fetching a message")
    data = session.call(f"UID FETCH {uid}", session.client.fetch, [uid], items)
    if uid not in data:
        raise _missing_error([uid], folder)
    fetched: dict[bytes, Any] = data[uid]
    return fetched


def _single_uid(value: Any) -> int:
    uids = parse_uids(value)
    if len(uids) != 1 or not isinstance(uids[0], int):
        raise errors.InvalidParameter(f"uid must be one UID here, not {value!r}.")
    return uids[0]


def _uids(value: Any, what: str = "uid") -> list[int | str]:
    """UIDs from a task value; an empty list (a bulk variable that matched nothing) is []."""
    if isinstance(value, list | tuple) and not value:
        return []
    return parse_uids(value, what=what)


# EXPUNGE answers to EXPUNGE; GNU Mailutils (3.15) says "* n EXPUNGED".
_EXPUNGE_WORDS = (b"EXPUNGE", b"EXPUNGED")


def _expunges(session: ImapSession) -> int:
    """How many untagged EXPUNGE answers arrived since the last call (and forgets them)."""
    untagged = wire(session.client).untagged_responses
    return sum(len(untagged.pop(word.decode(), None) or []) for word in _EXPUNGE_WORDS)


def _present(session: ImapSession, uids: list[int]) -> set[int]:
    """Which of ``uids`` the selected folder holds: ``UID FETCH <set> (UID)``.

    Not ``UID SEARCH UID``: some servers (GNU Mailutils) read that set as sequence numbers.
    """
    from imapclient.response_parser import parse_fetch_response

    found: set[int] = set()
    for uid_set in uid_sets(list(uids)):
        data = session.call(
            "UID FETCH (UID)",
            session.client._command_and_check,
            "fetch",
            uid_set,
            "(UID)",
            uid=True,
        )
        # only answers naming a UID count: an unsolicited "* 3 FETCH (FLAGS ...)" (another
        # session changed flags) carries a sequence number that may look like a wanted UID
        entries = parse_fetch_response(data, uid_is_key=False).values()
        found.update(int(e[b"UID"]) for e in entries if e.get(b"UID") is not None)
    return found & set(uids)


_STORE_ITEMS = {
    FlagOperation.ADD: b"+FLAGS",
    FlagOperation.REMOVE: b"-FLAGS",
    FlagOperation.REPLACE: b"FLAGS",
}


def _store(
    session: ImapSession,
    uid_set: str,
    operation: FlagOperation,
    flags: list[str],
    *,
    silent: bool,
) -> dict[int, list[Any]]:
    """One ``UID STORE``; the flags the server reported for each UID it named.

    FETCH answers without a UID (GNU Mailutils sends them) confirm nothing: their numbers are
    sequence numbers, not UIDs.
    """
    from imapclient.imapclient import seq_to_parenstr
    from imapclient.response_parser import parse_fetch_response

    item = _STORE_ITEMS[operation] + (b".SILENT" if silent else b"")
    data = session.call(
        f"UID STORE {operation} {' '.join(flags)}",
        session.client._command_and_check,
        "store",
        uid_set,
        item,
        seq_to_parenstr(flags),
        uid=True,
    )
    if silent:
        return {}
    reported: dict[int, list[Any]] = {}
    for entry in parse_fetch_response(data, uid_is_key=False).values():
        uid, got = entry.get(b"UID"), entry.get(b"FLAGS")
        if uid is not None and got is not None:
            reported[int(uid)] = list(got)
    return reported


def _store_changes_nothing(
    session: ImapSession, uid: int, operation: FlagOperation, flags: list[str]
) -> bool:
    """Whether, by the flags the running loop fetched, a STORE leaves ``uid`` as it was: the
    server then sends no FETCH back, and that silence is no sign of a missing message."""
    cur = session.current_message(uid)
    if cur is None or cur.flags is None:
        return False
    have = {f.lower() for f in cur.flags} - {"\\recent"}
    wanted = {f.lower() for f in flags}
    if operation is FlagOperation.ADD:
        return wanted <= have
    if operation is FlagOperation.REMOVE:
        return not wanted & have
    return wanted == have


# --- actions -------------------------------------------------------------------------------------


def run_open(services: Services, ctx: ActionContext, params: ImapOpen) -> None:
    name = params.connection
    ImapSession.release_dropped(ctx, name)
    session = connect_session(ctx, params.login, services)
    try:
        folder = params.folder or ""
        if folder:
            info = session.select(folder, read_only=params.read_only)
            where = f"; folder {folder!r} ({info['total']} messages)"
        else:
            where = "; no folder selected"
        ctx.open_connection(name, KIND, session)
    except BaseException:
        session.close()
        raise
    ctx.log(
        f"IMAP connection {name!r} open to {session.settings.describe()} as "
        f"{session.account!r}{where}"
    )


def run_close(ctx: ActionContext, params: ImapClose) -> None:
    name = params.connection
    session = _session(ctx, params.connection, closing=True)
    ctx.close_connection(name, KIND)
    try:
        if params.expunge:
            folder = session.require_selected("IMAP Close with expunge")
            session.require_writable("IMAP Close with expunge")
            _msg, resps = session.call("EXPUNGE", session.client.expunge)
            count = sum(1 for r in resps if len(r) > 1 and r[1] in _EXPUNGE_WORDS)
            ctx.log(f"expunged {count} message(s) marked \\Deleted in {folder!r}")
    finally:
        session.close()
    ctx.log(f"IMAP connection {name!r} closed")


def run_select(ctx: ActionContext, params: ImapSelect) -> None:
    session = _session(ctx, params.connection)
    folder = params.folder or ""
    if not folder:
        raise errors.InvalidParameter("folder is empty: give the folder to select, e.g. INBOX.")
    info = session.select(
        folder, read_only=params.read_only, create_if_missing=params.create_if_missing
    )
    if params.save_info_to:
        ctx.set_variable(params.save_info_to, info)
    ctx.log(f"selected {folder!r}: {info['total']} messages")


def run_mail_loop(ctx: ActionContext, params: ImapMailLoop) -> Iterator[dict[str, Any]]:
    session = _session(ctx, params.connection)
    conditions = parse_conditions(params.filters.conditions, params.filters.match)
    plan = plan_search(params.messages, conditions)
    max_messages = params.max_messages
    if max_messages < 0:
        raise errors.InvalidParameter("max_messages must be 0 (no limit) or more.")
    if params.uids_only and not params.save_uids_to:
        raise errors.InvalidParameter(
            "uids_only needs save_uids_to: the variable that receives the matching UIDs."
        )
    previous = (session.folder, session.read_only)
    outer_message = session.current
    folder = folder_name(params.folder or "")
    if folder and folder != session.folder:
        session.select(folder, read_only=session.read_only)
    folder = session.require_selected("IMAP Mail Loop")
    try:
        if params.uids_only:
            _collect_uids(ctx, params, session, folder, plan, max_messages)
            return
        yield from _loop_selected(ctx, params, session, folder, plan, max_messages)
    finally:
        session.current = outer_message  # an outer loop's message, or none
        # A loop over another folder gives the selection back, so nested loops and the steps
        # after them see the folder they expect.
        if previous[0] is not None and session.folder != previous[0]:
            with contextlib.suppress(errors.RobomailError):
                session.select(previous[0], read_only=previous[1])


def mark_seen_uids(session: ImapSession, uids: list[int]) -> None:
    """Sets \\Seen on ``uids`` (UID STORE +FLAGS.SILENT, one command per UID set)."""
    for uid_set in uid_sets(list(uids)):
        _store(session, uid_set, FlagOperation.ADD, ["\\Seen"], silent=True)


def _collect_uids(
    ctx: ActionContext,
    params: ImapMailLoop,
    session: ImapSession,
    folder: str,
    plan: SearchPlan,
    max_messages: int,
) -> None:
    """The bulk form: the matching UIDs into ``save_uids_to``, the body never runs. Only
    conditions SEARCH cannot express make it fetch (headers, or bodies when they need them)."""
    uids = search_uids(session, plan.criteria, params.raw_search)
    if params.order is Order.NEWEST:
        uids.reverse()
    if plan.client:
        uids = [
            item.uid
            for item in iter_messages(session, uids, need_raw=plan.needs_body, include_body=True)
            if plan.client.matches(item.info)
        ]
    if max_messages:
        uids = uids[:max_messages]
    mark_seen = params.mark_seen
    if mark_seen and session.read_only:
        ctx.log(f"mark_seen ignored: {folder!r} was selected read-only", "warning")
    elif mark_seen and uids:
        mark_seen_uids(session, uids)
    save_uids_to = params.save_uids_to or ""  # run_mail_loop checked it is given
    ctx.set_variable(save_uids_to, uids)
    ctx.log(
        f"IMAP Mail Loop: {len(uids)} matching UID(s) in {folder!r} saved to "
        f"{save_uids_to!r} (uids_only: the body did not run)"
    )


def _loop_selected(
    ctx: ActionContext,
    params: ImapMailLoop,
    session: ImapSession,
    folder: str,
    plan: SearchPlan,
    max_messages: int,
) -> Iterator[dict[str, Any]]:
    save_to = params.save_to
    read_only = session.read_only
    mark_seen = params.mark_seen
    if mark_seen and read_only:
        ctx.log(f"mark_seen ignored: {folder!r} was selected read-only", "warning")
        mark_seen = False
    include_body = params.include_body

    uids = search_uids(session, plan.criteria, params.raw_search)
    if params.order is Order.NEWEST:
        uids.reverse()
    ctx.log(
        f"IMAP Mail Loop: {len(uids)} message(s) in {folder!r} match the server search"
        + (" (more conditions are checked per message)" if plan.client else "")
    )
    if not plan.client:  # with conditions checked here, the count is not known ahead
        ctx.progress(0, min(len(uids), max_messages) if max_messages else len(uids))
    done: list[int] = []
    for item in iter_messages(
        session, uids, need_raw=include_body or plan.needs_body, include_body=True
    ):
        if session.folder != folder:  # the body selected another folder: back to ours
            session.select(folder, read_only=read_only)
        info = item.info
        if plan.client and not plan.client.matches(info):
            continue
        if not include_body:
            info.pop("body_text", None)
            info.pop("body_html", None)
        if mark_seen and "\\Seen" not in info["flags"]:
            mark_seen_uids(session, [item.uid])
            info["flags"] = [*info["flags"], "\\Seen"]
            info["seen"] = True
        # what the body's actions may use instead of asking the server again
        session.current = CurrentMessage(
            folder=folder,
            uidvalidity=session.uidvalidity,
            uid=item.uid,
            number=info.get("number"),
            flags=set(info["flags"]),
            raw=item.raw,
            msg=item.msg,
        )
        ctx.set_variable(save_to, info)
        yield info
        done.append(item.uid)
        if max_messages and len(done) >= max_messages:
            break
    session.current = None
    if params.save_uids_to:
        ctx.set_variable(params.save_uids_to, done)
    ctx.log(f"IMAP Mail Loop: {len(done)} message(s) processed")


def run_download(ctx: ActionContext, params: ImapDownload) -> None:
    session = _session(ctx, params.connection)
    session.require_selected("IMAP Download Message")
    uid = _single_uid(params.uid)
    mark_seen = params.mark_seen
    if_exists = params.if_exists
    cur = session.current_message(uid)
    msg = None
    if cur is not None and cur.raw is not None:  # the loop fetched it a moment ago
        raw, number, msg = cur.raw, cur.number, cur.msg
        flags = sorted(cur.flags) if cur.flags is not None else []
    else:
        # mark_seen on a writable folder: BODY[] sets \Seen in the same command
        peek = not mark_seen or session.read_only
        entry = _fetch_one(session, uid, ["FLAGS", "BODY.PEEK[]" if peek else "BODY[]"])
        raw = bytes(entry.get(b"BODY[]") or b"")
        flags = [f.decode() if isinstance(f, bytes) else str(f) for f in entry.get(b"FLAGS", ())]
        number = entry.get(b"SEQ")
        if not peek and "\\Seen" not in flags:
            flags.append("\\Seen")
        session.flags_changed(uid, flags)
    path = files.save_raw_message(
        raw,
        uid=uid,
        number=number,
        save_to_file=params.save_to_file or None,
        folder=params.folder or None,
        file_name=params.file_name,
        if_exists=if_exists,
        parsed=msg,
    )
    saved = [path]
    if params.attachments_folder:
        _text, _html, found = walk_parts(msg if msg is not None else parse_message(raw))
        saved += files.extract_attachments(found, params.attachments_folder, if_exists)
    if mark_seen and "\\Seen" not in flags:
        session.require_writable("IMAP Download Message with mark_seen")
        mark_seen_uids(session, [uid])
        if cur is not None and cur.flags is not None:
            cur.flags.add("\\Seen")
    if params.save_path_to:
        ctx.set_variable(params.save_path_to, str(path))
    ctx.log(
        f"saved UID {uid} to {str(path)!r}"
        + (f" and {len(saved) - 1} attachment(s)" if len(saved) > 1 else "")
    )


def run_get_flags(ctx: ActionContext, params: ImapGetFlags) -> None:
    session = _session(ctx, params.connection)
    uid = _single_uid(params.uid)
    entry = _fetch_one(session, uid, ["FLAGS"])
    flags = [f.decode() if isinstance(f, bytes) else str(f) for f in entry.get(b"FLAGS", ())]
    session.flags_changed(uid, flags)
    value: Any = flags if params.as_json else " ".join(flags)
    ctx.set_variable(params.save_to, value)


def run_set_flags(ctx: ActionContext, params: ImapSetFlags) -> None:
    session = _session(ctx, params.connection)
    folder = session.require_selected("IMAP Set Message Flags")
    session.require_writable("IMAP Set Message Flags")
    uids = _uids(params.uid)
    flags = parse_flags(params.flags)
    operation = params.operation
    if not flags and operation is not FlagOperation.REPLACE:
        raise errors.InvalidParameter("flags is empty: give e.g. \\Seen or \\Flagged.")
    shown = " ".join(flags) or "(no flags)"
    if not uids:
        ctx.log(f"{operation} {shown}: no UIDs given (an empty list), nothing changed")
        return
    explicit = _explicit(uids)
    reported: dict[int, list[Any]] = {}
    for uid_set in uid_sets(uids):
        # non-silent for explicit UIDs: the FETCH answers say which exist
        reported.update(_store(session, uid_set, operation, flags, silent=explicit is None))
    for uid, now in reported.items():
        session.flags_changed(uid, now)
    if explicit is None:
        if session.current is not None:
            session.current.flags = None  # a range may have changed them: unknown now
    else:
        # A STORE that changes nothing sends no FETCH back: that is no sign of a missing
        # message when the loop's flags say so; otherwise ask (UID FETCH, one command).
        unconfirmed = [
            u
            for u in explicit
            if u not in reported and not _store_changes_nothing(session, u, operation, flags)
        ]
        if unconfirmed:
            present = _present(session, unconfirmed)
            missing = [u for u in unconfirmed if u not in present]
            if missing:
                raise _missing_error(missing, folder)
    ctx.log(f"{operation} {shown} on UID {_shown_uids(uids)}")


def _shown_uids(uids: list[int | str]) -> str:
    text = ",".join(str(u) for u in uids[:20])
    return text + (f" ... ({len(uids)} in all)" if len(uids) > 20 else "")


def run_delete_marked(ctx: ActionContext, params: ImapDeleteMarked) -> None:
    session = _session(ctx, params.connection)
    folder = session.require_selected("IMAP Delete Marked Messages")
    session.require_writable("IMAP Delete Marked Messages")
    raw_uids = params.uids
    if raw_uids is not None:
        uids = _uids(raw_uids, what="uids")
        if uids and not session.has("UIDPLUS"):
            raise errors.MailProtocolError(
                f"{session.settings.describe()} lacks UIDPLUS, so it cannot expunge only some "
                "UIDs. Leave uids out to expunge every message marked \\Deleted."
            )
        count = 0
        _expunges(session)
        for uid_set in uid_sets(uids):
            # the server names each message it expunges: no SEARCH needed to count them
            session.call("UID EXPUNGE", session.client.uid_expunge, uid_set)
            count += _expunges(session)
        if not uids:
            ctx.log("uids is an empty list: nothing expunged (leave uids out for all)")
    else:
        _msg, resps = session.call("EXPUNGE", session.client.expunge)
        count = sum(1 for r in resps if len(r) > 1 and r[1] in _EXPUNGE_WORDS)
    if count:
        session.current = None  # sequence numbers moved; the loop's message may be gone
    if params.save_count_to:
        ctx.set_variable(params.save_count_to, count)
    ctx.log(f"expunged {count} message(s) from {folder!r}")


def _expand_set(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if ":" in part:
            lo, hi = (int(x) for x in part.split(":"))
            step = 1 if hi >= lo else -1
            out.extend(range(lo, hi + step, step))
        elif part:
            out.append(int(part))
    return out


def parse_copyuid(text: str) -> dict[int, int]:
    """``[COPYUID <validity> <src set> <dst set>]`` (RFC 4315) -> {source uid: new uid}."""
    m = re.search(r"COPYUID\s+\d+\s+([\d:,]+)\s+([\d:,]+)", text, re.I)
    if not m:
        m = re.search(r"^\s*\d+\s+([\d:,]+)\s+([\d:,]+)", text)
    if not m:
        return {}
    src, dst = _expand_set(m.group(1)), _expand_set(m.group(2))
    return dict(zip(src, dst, strict=False)) if len(src) == len(dst) else {}


def run_move(ctx: ActionContext, params: ImapMove) -> None:
    session = _session(ctx, params.connection)
    folder = session.require_selected("IMAP Move Message")
    session.require_writable("IMAP Move Message")
    uids = _uids(params.uid)
    destination = _move_destination(params, folder)
    explicit = _explicit(uids)
    if not uids:
        if params.save_new_uid_to:
            ctx.set_variable(params.save_new_uid_to, {})
        ctx.log(f"no UIDs given (an empty list): nothing moved to {destination!r}")
        return
    use_move = session.has("MOVE")
    uidplus = session.has("UIDPLUS")
    missing: list[int] = []
    targets = uids
    checked = False
    if explicit is not None and not uidplus and (not use_move or len(explicit) > 1):
        # The answer will not say which UIDs moved (no COPYUID; and COPY + STORE succeed on
        # missing UIDs silently): ask first.
        present = _present(session, explicit)
        missing = [u for u in explicit if u not in present]
        targets = [u for u in explicit if u in present]
        checked = True
    mapping: dict[int, int] = {}
    create = params.create_if_missing
    for uid_set in uid_sets(targets):
        moved, expunged = _move_set(session, uid_set, destination, create, use_move, uidplus)
        mapping.update(moved)
        if explicit is not None and not checked:
            missing += _unmoved(_expand_set(uid_set), moved, expunged, use_move)
    if targets:
        session.current = None  # the loop's message left the folder (or may have)
    how = _move_method(ctx, session, folder, use_move, uidplus, bool(targets))
    if params.save_new_uid_to:
        ctx.set_variable(params.save_new_uid_to, _new_uids_value(explicit, mapping))
    if missing:
        error = _missing_error(missing, folder)
        if len(missing) < len(uids):
            error = errors.MessageNotFound(
                f"{error} The other UID(s) were moved to {destination!r}."
            )
        raise error
    ctx.log(f"moved UID {_shown_uids(uids)} from {folder!r} to {destination!r} ({how})")


def _move_destination(params: ImapMove, folder: str) -> str:
    """The folder to move to, checked before the server is asked anything: an empty one, or the
    selected folder itself, is a mistake in the task."""
    destination = folder_name(params.destination or "")
    if not destination:
        raise errors.InvalidParameter("destination is empty: give the folder to move to.")
    if destination == folder:
        raise errors.InvalidParameter(f"destination {destination!r} is the selected folder.")
    return destination


def _move_method(
    ctx: ActionContext,
    session: ImapSession,
    folder: str,
    use_move: bool,
    uidplus: bool,
    moved_any: bool,
) -> str:
    """How the messages were moved, for the log. Without MOVE and UIDPLUS the originals stay
    behind marked \\Deleted, which a loop over the folder would see again: that gets a warning."""
    if use_move:
        return "MOVE"
    if uidplus:
        return "COPY + \\Deleted + UID EXPUNGE"
    if moved_any:
        ctx.log(
            f"{session.settings.describe()} has neither MOVE nor UIDPLUS: the moved "
            f"message(s) stay in {folder!r} marked \\Deleted until IMAP Delete Marked "
            "Messages or IMAP Close with expunge: true. Until then a loop over "
            f"{folder!r} sees them again, and moving them again copies them again.",
            "warning",
        )
    return "COPY + \\Deleted (run IMAP Delete Marked Messages to expunge)"


def _new_uids_value(
    explicit: list[int] | None, mapping: dict[int, int]
) -> int | str | dict[str, int]:
    """What ``save_new_uid_to`` gets: for one UID its new UID ("" when the server did not say),
    so a task can go on with the moved message; else {old UID as text: new UID}."""
    if explicit is not None and len(explicit) == 1:
        return mapping.get(explicit[0], "")
    return {str(k): v for k, v in sorted(mapping.items())}


def _unmoved(
    wanted: list[int], mapping: dict[int, int], expunged: int, use_move: bool
) -> list[int]:
    """The UIDs of ``wanted`` the server's answer shows were not moved (they are missing)."""
    if mapping:  # COPYUID names every source UID it moved
        return [u for u in wanted if u not in mapping]
    if use_move and expunged >= len(wanted):  # moved, though the server named no new UIDs
        return []
    return wanted  # "OK No messages found": nothing was there to move


def _move_set(
    session: ImapSession,
    uid_set: str,
    destination: str,
    create: bool,
    use_move: bool,
    uidplus: bool,
) -> tuple[dict[int, int], int]:
    """One UID MOVE (or COPY + \\Deleted [+ UID EXPUNGE]) of ``uid_set``; the COPYUID mapping
    and how many messages left the folder. The destination is not checked first: a missing one
    answers [TRYCREATE], and is then created (``create``) or reported."""
    client = session.client
    untagged = wire(client).untagged_responses
    for attempt in (1, 2):
        untagged.pop("COPYUID", None)
        _expunges(session)
        try:
            if use_move:
                reply = session.call(
                    f"UID MOVE to {destination!r}", client.move, uid_set, destination
                )
            else:
                reply = session.call(
                    f"UID COPY to {destination!r}", client.copy, uid_set, destination
                )
            break
        except errors.MailProtocolError as exc:
            if attempt == 2 or not _destination_missing(session, destination, exc):
                raise
            if not create:
                raise session.folder_not_found(destination) from None
            session.create_folder(destination)
    found = untagged.pop("COPYUID", None) or []
    # as ASCII: COPYUID's UID sets are ASCII digits (\d would also match other scripts' digits)
    codes = " ".join(wire_text(x, "ascii") for x in found)
    mapping = parse_copyuid(wire_text(reply or b"", "ascii") + " " + codes)
    session.known_folders.add(destination)
    if use_move:
        return mapping, _expunges(session)
    _store(session, uid_set, FlagOperation.ADD, ["\\Deleted"], silent=True)
    if uidplus:
        session.call("UID EXPUNGE", client.uid_expunge, uid_set)
    return mapping, _expunges(session)


def _destination_missing(session: ImapSession, folder: str, exc: errors.RobomailError) -> bool:
    """Whether a refused MOVE/COPY was for want of its destination: the reply says so
    ([TRYCREATE]), or (for servers that do not) LIST finds no such folder."""
    if is_nonexistent(exc.server_reply or ""):
        return True
    session.folder_gone(folder)
    return not session.folder_exists(folder)


def run_folder_info(ctx: ActionContext, params: ImapFolderInfo) -> None:
    session = _session(ctx, params.connection)
    folder = folder_name(params.folder or "")
    folder = folder or session.require_selected("IMAP Folder Info")
    session.ensure_folder(folder, False)
    status = session.call(f"STATUS {folder!r}", session.client.folder_status, folder)
    info = {
        "folder": folder,
        "total": int(status.get(b"MESSAGES", 0)),
        "unseen": int(status.get(b"UNSEEN", 0)),
        "recent": int(status.get(b"RECENT", 0)),
        "uidnext": int(status.get(b"UIDNEXT", 0)),
        "uidvalidity": int(status.get(b"UIDVALIDITY", 0)),
    }
    ctx.set_variable(params.save_to, info)
    ctx.log(f"{folder!r}: {info['total']} messages, {info['unseen']} unseen")
