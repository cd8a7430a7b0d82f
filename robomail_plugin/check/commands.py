"""Check for Email: one self-contained step that opens, searches, records and closes.

IMAP is here; POP3's is ``pop3.commands.check_for_email``, which ``CHECKERS`` finds.
``only_new`` remembers, per task, the highest UID an earlier check saw in this account and folder
(reset when the folder's UIDVALIDITY changes), so "new" means "arrived since the last check".
``check.actions`` declares the action (imported at start-up); this module is imported on its
first run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from robomail_plugin.check.actions import Protocol
from robomail_plugin.imap.commands import connect_session, mark_seen_uids, search_uids
from robomail_plugin.imap.fetch import iter_messages
from robomail_plugin.imap.search import SearchPlan, plan_search
from robomail_plugin.imap.session import ImapSession
from robomail_plugin.message import files
from robomail_plugin.message.conditions import Conditions, parse_conditions
from robomail_plugin.schema import ActionContext

if TYPE_CHECKING:
    from robomail_plugin.check.actions import CheckForEmail
    from robomail_plugin.services import Services

Checker = Callable[[ActionContext, "CheckForEmail", "Services", Conditions], list[dict[str, Any]]]


def _check_imap(
    ctx: ActionContext, params: CheckForEmail, services: Services, conditions: Conditions
) -> list[dict[str, Any]]:
    plan = plan_search(params.messages, conditions)
    folder = params.folder
    mark_seen = params.mark_seen
    only_new = params.only_new
    download_to = params.download_to or None
    session = connect_session(ctx, params.login, services)
    try:
        # EXAMINE unless we change flags: a check must not disturb \Recent or anything else.
        selected = session.select(folder, read_only=not mark_seen)
        key = f"imap|{session.account.lower()}|{session.settings.address}|{folder}"
        last_uid = _last_checked_uid(ctx, key, selected, folder) if only_new else 0
        criteria = list(plan.criteria)
        if last_uid:
            criteria += ["UID", f"{last_uid + 1}:*"]
        uids = [u for u in search_uids(session, criteria) if u > last_uid]
        if plan.client or download_to or params.save_to:
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


def _last_checked_uid(
    ctx: ActionContext, key: str, selected: Mapping[str, Any], folder: str
) -> int:
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
    session: ImapSession, uids: list[int], plan: SearchPlan, download_to: str | None
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
    ctx: ActionContext, params: CheckForEmail, services: Services, conditions: Conditions
) -> list[dict[str, Any]]:
    from robomail_plugin.pop3.commands import check_for_email

    return check_for_email(
        ctx,
        params.login,
        services,
        conditions,
        only_new=params.only_new,
        mark_seen=params.mark_seen,
        download_to=params.download_to or None,
    )


#: protocol -> checker. POP3's lives in ``pop3.commands`` (``check_for_email``).
CHECKERS: dict[Protocol, Checker] = {Protocol.IMAP: _check_imap, Protocol.POP3: _check_pop3}


def run_check(services: Services, ctx: ActionContext, params: CheckForEmail) -> None:
    conditions = parse_conditions(params.filters.conditions, params.filters.match)
    found = CHECKERS[params.protocol](ctx, params, services, conditions)
    if params.save_count_to:
        ctx.set_variable(params.save_count_to, len(found))
    if params.save_to:
        ctx.set_variable(params.save_to, found)
    if params.save_uids_to:
        ctx.set_variable(params.save_uids_to, [info["uid"] for info in found])
    what = "new " if params.only_new else ""
    ctx.log(
        f"Check for Email: {len(found)} {what}message(s) found over {params.protocol.upper()}"
    )
