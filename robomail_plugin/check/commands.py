"""Check for Email: one self-contained step that opens, searches, records and closes.

IMAP is here; POP3 plugs in through ``CHECKERS`` (helper module ``pop3`` provides
``check_for_email(ctx, params, services, conditions) -> list[dict]`` and registers it below).
``only_new`` remembers, per task, the highest UID an earlier check saw in this account and folder
(reset when the folder's UIDVALIDITY changes), so "new" means "arrived since the last check".
``check_actions`` declares the action (imported at start-up); this module is imported on its first
run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from robomail_plugin import errors
from robomail_plugin.imap.commands import connect_session, mark_seen_uids, search_uids
from robomail_plugin.imap.fetch import iter_messages
from robomail_plugin.imap.search import SearchPlan, plan_search
from robomail_plugin.imap.session import ImapSession
from robomail_plugin.message import files
from robomail_plugin.message.conditions import Conditions, parse_conditions

Checker = Callable[[Any, Mapping[str, Any], Any, Conditions], list[dict[str, Any]]]


def _check_imap(
    ctx: Any, params: Mapping[str, Any], services: Any, conditions: Conditions
) -> list[dict[str, Any]]:
    plan = plan_search(params.get("messages") or "unseen", conditions)
    folder = params.get("folder") or "INBOX"
    mark_seen = bool(params.get("mark_seen"))
    only_new = bool(params.get("only_new"))
    download_to = params.get("download_to") or None
    session = connect_session(ctx, params, services)
    try:
        # EXAMINE unless we change flags: a check must not disturb \Recent or anything else.
        selected = session.select(folder, read_only=not mark_seen)
        key = f"imap|{session.account.lower()}|{session.settings.address}|{folder}"
        last_uid = _last_checked_uid(ctx, key, selected, folder) if only_new else 0
        criteria = list(plan.criteria)
        if last_uid:
            criteria += ["UID", f"{last_uid + 1}:*"]
        uids = [u for u in search_uids(session, criteria) if u > last_uid]
        if plan.client or download_to or params.get("save_to"):
            found = _fetch_matching(session, uids, plan, download_to)
        else:
            # only a count or the UIDs are wanted: the search said it all, fetch nothing
            found = [{"uid": u, "flags": None} for u in uids]
        if mark_seen and found:
            _mark_found_seen(session, found)
        if only_new:
            newest = max([last_uid, (selected["uidnext"] or 1) - 1, *uids])
            ctx.save_state(key, {"uidvalidity": selected["uidvalidity"], "last_uid": newest})
        return found
    finally:
        session.close()


def _last_checked_uid(ctx: Any, key: str, selected: Mapping[str, Any], folder: str) -> int:
    """The highest UID an earlier ``only_new`` check saw here; 0 when there was none, or when
    the folder was rebuilt since (a new UIDVALIDITY makes the old UIDs mean nothing)."""
    state = ctx.load_state(key)
    if state.get("uidvalidity") == selected["uidvalidity"]:
        return int(state.get("last_uid") or 0)
    if state:
        ctx.log(
            f"{folder!r} was rebuilt on the server (UIDVALIDITY changed): every "
            "message counts as new once",
            "warning",
        )
    return 0


def _fetch_matching(
    session: ImapSession, uids: list[int], plan: SearchPlan, download_to: Any
) -> list[dict[str, Any]]:
    """The found messages' info, fetched for the conditions the server cannot check, for
    ``download_to`` or for ``save_to``; bodies are read for the conditions only, not returned."""
    found: list[dict[str, Any]] = []
    for item in iter_messages(
        session, uids, need_raw=plan.needs_body or bool(download_to), include_body=True
    ):
        info = item.info
        if plan.client and not plan.client.matches(info):
            continue
        info.pop("body_text", None)
        info.pop("body_html", None)
        if download_to and item.raw is not None:
            path = files.save_message(
                item.raw, info, folder=download_to, file_name="{uid}.eml", if_exists="unique"
            )
            info["file"] = str(path)
        found.append(info)
    return found


def _mark_found_seen(session: ImapSession, found: list[dict[str, Any]]) -> None:
    """Sets \\Seen on the server for the found messages that lack it (one STORE per UID set),
    and shows it in their info, as the server now has it."""
    fresh = [i["uid"] for i in found if "\\Seen" not in (i["flags"] or ())]
    if fresh:
        mark_seen_uids(session, fresh)
    for info in found:
        if info["flags"] is not None and "\\Seen" not in info["flags"]:
            info["flags"] = [*info["flags"], "\\Seen"]
        info["seen"] = True


def _check_pop3(
    ctx: Any, params: Mapping[str, Any], services: Any, conditions: Conditions
) -> list[dict[str, Any]]:
    from robomail_plugin.pop3 import commands as pop3

    checker = getattr(pop3, "check_for_email", None)
    if checker is None:
        raise errors.InvalidParameter(
            "Check for Email over POP3 is not available in this version; use protocol: imap, "
            "or a POP3 Mail Loop with skip_seen."
        )
    return list(checker(ctx, params, services, conditions))


#: protocol -> checker. POP3's lives in pop3.py (``check_for_email``); this entry only finds it.
CHECKERS: dict[str, Checker] = {"imap": _check_imap, "pop3": _check_pop3}


def run_check(services: Any, ctx: Any, params: Mapping[str, Any]) -> None:
    protocol = (params.get("protocol") or "imap").lower()
    checker = CHECKERS.get(protocol)
    if checker is None:
        raise errors.InvalidParameter(f"protocol must be imap or pop3, not {protocol!r}.")
    conditions = parse_conditions(params.get("conditions"), params.get("match"))
    found = checker(ctx, params, services, conditions)
    if params.get("save_count_to"):
        ctx.set_variable(params["save_count_to"], len(found))
    if params.get("save_to"):
        ctx.set_variable(params["save_to"], found)
    if params.get("save_uids_to"):
        ctx.set_variable(params["save_uids_to"], [info["uid"] for info in found])
    what = "new " if params.get("only_new") else ""
    ctx.log(f"Check for Email: {len(found)} {what}message(s) found over {protocol.upper()}")
