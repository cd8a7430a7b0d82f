"""The IMAP actions of the catalogue (ACTIONS.md, "IMAP"): what each one does.

Connecting is ``connect.open_imap``; the open connection is an ``ImapSession``; searching is
``imap_search``; batched fetching is ``imap_fetch``. Messages are addressed by UID in the selected
folder; folder names are plain Unicode (imapclient does the modified UTF-7).
``imap_actions`` declares the actions (imported at start-up); this module is imported when one of
them first runs.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from robomail_plugin import errors
from robomail_plugin.mail import files
from robomail_plugin.mail.conditions import parse_conditions
from robomail_plugin.mail.connect import ConnectionSettings, open_imap_as
from robomail_plugin.mail.imap_actions import DEFAULT_CONNECTION
from robomail_plugin.mail.imap_fetch import iter_messages
from robomail_plugin.mail.imap_search import (
    SearchPlan,
    needs_utf8,
    parse_uids,
    plan_search,
    search_raw,
)
from robomail_plugin.mail.imap_session import KIND, ImapSession
from robomail_plugin.mail.message_info import message_info, parse_message, walk_parts

SYSTEM_FLAGS = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}
_KEYWORD_RE = re.compile(r"^[!#$&'+\-./0-9:<=>?@A-Z^_`a-z|~]+$")  # IMAP atom without \ % * ] ( )

# --- helpers -------------------------------------------------------------------------------------


def _session(ctx: Any, params: Mapping[str, Any]) -> ImapSession:
    name = params.get("connection") or DEFAULT_CONNECTION
    session = ctx.connection(name, KIND)
    if not isinstance(session, ImapSession):
        raise errors.InvalidParameter(f"connection {name!r} is not an IMAP connection.")
    return session


def connect_session(ctx: Any, params: Mapping[str, Any], services: Any) -> ImapSession:
    """Opens and logs in per the connection params; the caller registers or closes it."""
    settings = ConnectionSettings.from_params("imap", params)
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
    if raw:  # 8-bit values go as literals, with CHARSET UTF-8 (imap_search.search_raw)
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
    return data[uid]


def _single_uid(value: Any) -> int:
    uids = parse_uids(value)
    if len(uids) != 1 or not isinstance(uids[0], int):
        raise errors.InvalidParameter(f"uid must be one UID here, not {value!r}.")
    return uids[0]


# --- actions -------------------------------------------------------------------------------------


def _open(services: Any, ctx: Any, params: Mapping[str, Any]) -> None:
    name = params.get("connection") or DEFAULT_CONNECTION
    session = connect_session(ctx, params, services)
    try:
        folder = params.get("folder") or ""
        if folder:
            info = session.select(folder, read_only=bool(params.get("read_only")))
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


def _close(ctx: Any, params: Mapping[str, Any]) -> None:
    name = params.get("connection") or DEFAULT_CONNECTION
    session = _session(ctx, params)
    ctx.close_connection(name, KIND)
    try:
        if params.get("expunge"):
            folder = session.require_selected("IMAP Close with expunge")
            session.require_writable("IMAP Close with expunge")
            _msg, resps = session.call("EXPUNGE", session.client.expunge)
            count = sum(1 for r in resps if len(r) > 1 and r[1] == b"EXPUNGE")
            ctx.log(f"expunged {count} message(s) marked \\Deleted in {folder!r}")
    finally:
        session.close()
    ctx.log(f"IMAP connection {name!r} closed")


def _select(ctx: Any, params: Mapping[str, Any]) -> None:
    session = _session(ctx, params)
    folder = params.get("folder") or ""
    if not folder:
        raise errors.InvalidParameter("folder is empty: give the folder to select, e.g. INBOX.")
    info = session.select(
        folder,
        read_only=bool(params.get("read_only")),
        create_if_missing=bool(params.get("create_if_missing")),
    )
    if params.get("save_info_to"):
        ctx.set_variable(params["save_info_to"], info)
    ctx.log(f"selected {folder!r}: {info['total']} messages")


def _mail_loop(ctx: Any, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    session = _session(ctx, params)
    conditions = parse_conditions(params.get("conditions"), params.get("match"))
    plan = plan_search(params.get("messages") or "all", conditions)
    max_messages = int(params.get("max_messages") or 0)
    if max_messages < 0:
        raise errors.InvalidParameter("max_messages must be 0 (no limit) or more.")
    previous = (session.folder, session.read_only)
    folder = params.get("folder") or ""
    if folder and folder != session.folder:
        session.select(folder, read_only=session.read_only)
    folder = session.require_selected("IMAP Mail Loop")
    try:
        yield from _loop_selected(ctx, params, session, folder, plan, max_messages)
    finally:
        # A loop over another folder gives the selection back, so nested loops and the steps
        # after them see the folder they expect.
        if previous[0] is not None and session.folder != previous[0]:
            with contextlib.suppress(errors.RobomailError):
                session.select(previous[0], read_only=previous[1])


def _loop_selected(
    ctx: Any,
    params: Mapping[str, Any],
    session: ImapSession,
    folder: str,
    plan: SearchPlan,
    max_messages: int,
) -> Iterator[dict[str, Any]]:
    save_to = params.get("save_to") or "Msg"
    read_only = session.read_only
    mark_seen = bool(params.get("mark_seen"))
    if mark_seen and read_only:
        ctx.log(f"mark_seen ignored: {folder!r} was selected read-only", "warning")
        mark_seen = False
    include_body = bool(params.get("include_body"))

    uids = search_uids(session, plan.criteria, params.get("raw_search"))
    if (params.get("order") or "oldest") == "newest":
        uids.reverse()
    ctx.log(
        f"IMAP Mail Loop: {len(uids)} message(s) in {folder!r} match the server search"
        + (" (more conditions are checked per message)" if plan.client else "")
    )
    if not plan.client:  # with conditions checked here, the count is not known ahead
        ctx.progress(0, min(len(uids), max_messages) if max_messages else len(uids))
    done = 0
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
            session.call(
                f"UID STORE {item.uid} +FLAGS \\Seen",
                session.client.add_flags,
                [item.uid],
                ["\\Seen"],
                silent=True,
            )
            info["flags"] = [*info["flags"], "\\Seen"]
            info["seen"] = True
        ctx.set_variable(save_to, info)
        yield info
        done += 1
        if max_messages and done >= max_messages:
            break
    ctx.log(f"IMAP Mail Loop: {done} message(s) processed")


def _download(ctx: Any, params: Mapping[str, Any]) -> None:
    session = _session(ctx, params)
    folder = session.require_selected("IMAP Download Message")
    uid = _single_uid(params.get("uid"))
    mark_seen = bool(params.get("mark_seen"))
    entry = _fetch_one(session, uid, ["FLAGS", "RFC822.SIZE", "BODY.PEEK[]"])
    raw = bytes(entry.get(b"BODY[]") or b"")
    flags = [f.decode() if isinstance(f, bytes) else str(f) for f in entry.get(b"FLAGS", ())]
    info = message_info(raw, uid=uid, number=entry.get(b"SEQ"), flags=flags, folder=folder)
    if_exists = files.check_if_exists(params.get("if_exists"))
    path = files.save_message(
        raw,
        info,
        save_to_file=params.get("save_to_file") or None,
        folder=params.get("folder") or None,
        file_name=params.get("file_name") or "{uid}.eml",
        if_exists=if_exists,
    )
    saved = [path]
    if params.get("attachments_folder"):
        _text, _html, found = walk_parts(parse_message(raw))
        saved += files.extract_attachments(found, params["attachments_folder"], if_exists)
    if mark_seen and "\\Seen" not in flags:
        session.require_writable("IMAP Download Message with mark_seen")
        session.call("UID STORE +FLAGS \\Seen", session.client.add_flags, [uid], ["\\Seen"])
    if params.get("save_path_to"):
        ctx.set_variable(params["save_path_to"], str(path))
    ctx.log(
        f"saved UID {uid} to {str(path)!r}"
        + (f" and {len(saved) - 1} attachment(s)" if len(saved) > 1 else "")
    )


def _get_flags(ctx: Any, params: Mapping[str, Any]) -> None:
    session = _session(ctx, params)
    uid = _single_uid(params.get("uid"))
    entry = _fetch_one(session, uid, ["FLAGS"])
    flags = [f.decode() if isinstance(f, bytes) else str(f) for f in entry.get(b"FLAGS", ())]
    value: Any = flags if params.get("as_json") else " ".join(flags)
    ctx.set_variable(params.get("save_to") or "Flags", value)


def _set_flags(ctx: Any, params: Mapping[str, Any]) -> None:
    session = _session(ctx, params)
    folder = session.require_selected("IMAP Set Message Flags")
    session.require_writable("IMAP Set Message Flags")
    uids = parse_uids(params.get("uid"))
    flags = parse_flags(params.get("flags"))
    operation = (params.get("operation") or "add").lower()
    if not flags and operation != "replace":
        raise errors.InvalidParameter("flags is empty: give e.g. \\Seen or \\Flagged.")
    method = {
        "add": session.client.add_flags,
        "remove": session.client.remove_flags,
        "replace": session.client.set_flags,
    }.get(operation)
    if method is None:
        raise errors.InvalidParameter("operation must be add, remove or replace.")
    explicit = _explicit(uids)
    result = session.call(
        f"UID STORE {operation} {' '.join(flags)}", method, uids, flags, silent=explicit is None
    )
    if explicit is not None:
        # A STORE that changes nothing may send no FETCH back: ask before calling a UID missing.
        unconfirmed = [u for u in explicit if u not in (result or {})]
        if unconfirmed:
            present = set(
                session.call(
                    "UID SEARCH", session.client.search, ["UID", ",".join(map(str, unconfirmed))]
                )
            )
            missing = [u for u in unconfirmed if u not in present]
            if missing:
                raise _missing_error(missing, folder)
    ctx.log(f"{operation} {' '.join(flags) or '(no flags)'} on UID {params.get('uid')}")


def _delete_marked(ctx: Any, params: Mapping[str, Any]) -> None:
    session = _session(ctx, params)
    folder = session.require_selected("IMAP Delete Marked Messages")
    session.require_writable("IMAP Delete Marked Messages")
    raw_uids = params.get("uids")
    if raw_uids not in (None, "", []):
        uids = parse_uids(raw_uids, what="uids")
        if not session.has("UIDPLUS"):
            raise errors.MailProtocolError(
                f"{session.settings.describe()} lacks UIDPLUS, so it cannot expunge only some "
                "UIDs. Leave uids empty to expunge every message marked \\Deleted."
            )
        marked = session.call(
            "UID SEARCH DELETED",
            session.client.search,
            ["UID", ",".join(map(str, uids)), "DELETED"],
        )
        session.call("UID EXPUNGE", session.client.uid_expunge, uids)
        count = len(marked)
    else:
        _msg, resps = session.call("EXPUNGE", session.client.expunge)
        count = sum(1 for r in resps if len(r) > 1 and r[1] == b"EXPUNGE")
    if params.get("save_count_to"):
        ctx.set_variable(params["save_count_to"], count)
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


def _untagged_copyuid(session: ImapSession, *, clear: bool = False) -> str:
    responses = session.client._imap.untagged_responses
    if clear:
        responses.pop("COPYUID", None)
        return ""
    found = responses.pop("COPYUID", None) or []
    return " ".join(_text_of(x) for x in found if x)


def _text_of(value: Any) -> str:
    return (
        bytes(value).decode("ascii", "replace")
        if isinstance(value, bytes | bytearray)
        else str(value)
    )


def _move(ctx: Any, params: Mapping[str, Any]) -> None:
    session = _session(ctx, params)
    folder = session.require_selected("IMAP Move Message")
    session.require_writable("IMAP Move Message")
    uids = parse_uids(params.get("uid"))
    destination = params.get("destination") or ""
    if not destination:
        raise errors.InvalidParameter("destination is empty: give the folder to move to.")
    if destination == folder:
        raise errors.InvalidParameter(f"destination {destination!r} is the selected folder.")
    session.ensure_folder(destination, bool(params.get("create_if_missing")))
    explicit = _explicit(uids)
    if explicit is not None:
        present = session.call(
            "UID SEARCH", session.client.search, ["UID", ",".join(map(str, explicit))]
        )
        missing = [u for u in explicit if u not in set(present)]
        if missing:
            raise _missing_error(missing, folder)
    _untagged_copyuid(session, clear=True)
    if session.has("MOVE"):
        reply = session.call(f"UID MOVE to {destination!r}", session.client.move, uids, destination)
        how = "MOVE"
    else:
        reply = session.call(f"UID COPY to {destination!r}", session.client.copy, uids, destination)
        session.call(
            "UID STORE +FLAGS \\Deleted", session.client.add_flags, uids, ["\\Deleted"], silent=True
        )
        if session.has("UIDPLUS"):
            session.call("UID EXPUNGE", session.client.uid_expunge, uids)
            how = "COPY + \\Deleted + UID EXPUNGE"
        else:
            how = "COPY + \\Deleted (run IMAP Delete Marked Messages to expunge)"
    mapping = parse_copyuid(_text_of(reply or b"") + " " + _untagged_copyuid(session))
    if params.get("save_new_uid_to"):
        value: Any
        if explicit is not None and len(explicit) == 1:
            value = mapping.get(explicit[0], "")
        else:
            value = {str(k): v for k, v in sorted(mapping.items())}
        ctx.set_variable(params["save_new_uid_to"], value)
    ctx.log(f"moved UID {params.get('uid')} from {folder!r} to {destination!r} ({how})")


def _folder_info(ctx: Any, params: Mapping[str, Any]) -> None:
    session = _session(ctx, params)
    folder = params.get("folder") or ""
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
    ctx.set_variable(params.get("save_to") or "FolderInfo", info)
    ctx.log(f"{folder!r}: {info['total']} messages, {info['unseen']} unseen")
