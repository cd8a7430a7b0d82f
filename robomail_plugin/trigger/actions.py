"""Email Arrived (IMAP) and Email Arrived (POP3): the trigger declarations.

Imported at start-up (listing what the plugins offer), so it imports no mail code: each watch
imports ``trigger.imap`` / ``trigger.pop3`` the first time it runs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from robomail_plugin import errors
from robomail_plugin.declare import (
    Parameters,
    bind,
    choice,
    error_code,
    flag,
    group,
    integer,
    params_of,
    path,
    tailored,
    text,
)
from robomail_plugin.lazy import deferred_module
from robomail_plugin.schema import TriggerEvent, TriggerSpec, TriggerVariable
from robomail_plugin.shared_params import (
    LOGIN_ERRORS,
    ConditionParams,
    ImapLogin,
    Messages,
    Pop3Login,
)

if TYPE_CHECKING:
    import threading

    from robomail_plugin.schema import TriggerContext
    from robomail_plugin.services import Services
    from robomail_plugin.trigger import imap as imap_watch
    from robomail_plugin.trigger import pop3 as pop3_watch
else:
    imap_watch = deferred_module("robomail_plugin.trigger.imap")
    pop3_watch = deferred_module("robomail_plugin.trigger.pop3")

CATEGORY = "Email"
IDLE_MINUTES_MAX = 29  # RFC 3501: a server may log out a client silent for 30 minutes


class Push(enum.StrEnum):
    IDLE = "idle"
    POLL = "poll"


class ExistingMail(enum.StrEnum):
    SKIP = "skip"
    FIRE = "fire"


_EXISTING_MAIL = (
    ": skip = the mail already there counts as seen; fire = an event for each message already "
    "there."
)


class TriggerOptions(Parameters):
    """What both triggers share after the conditions: pacing, the first start, what an event
    carries (POP3's wording; ``ImapTriggerOptions`` adds UIDVALIDITY)."""

    poll_interval: int = integer(
        60,
        help="Seconds between checks when polling (POP3 always; IMAP without IDLE or with "
        "push: poll).",
    )
    max_backoff: int = integer(
        300,
        help="Longest wait in seconds between reconnection attempts (they start at about 1 s "
        "and double, with jitter).",
    )
    existing_mail: ExistingMail = choice(
        ExistingMail, ExistingMail.SKIP, help="At the first start" + _EXISTING_MAIL
    )
    with_body: bool = flag(
        False,
        help="Fetch whole messages: Msg gets body_text, body_html and the attachments list "
        "(else headers only).",
    )
    download_to: str | None = path(
        help="Folder to save each new message in as <uid>.eml (its path is Msg.file)."
    )


class ImapTriggerOptions(
    TriggerOptions,
    tailor=tailored(
        existing_mail={
            "help": "At the first start (and after a UIDVALIDITY change)" + _EXISTING_MAIL
        }
    ),
):
    pass


class EmailArrivedImap(Parameters):
    login: ImapLogin = group(ImapLogin)
    folder: str = text("INBOX", help="IMAP folder to watch.", empty_is_default=True)
    messages: Messages = choice(
        Messages,
        Messages.ALL,
        help="Which new messages by flag (default all; unseen skips mail another client has "
        "read already).",
    )
    push: Push = choice(
        Push,
        Push.IDLE,
        help="idle = IMAP IDLE (RFC 2177) when the server offers it, else polling; poll = check "
        "every poll_interval seconds.",
    )
    idle_minutes: int = integer(
        IDLE_MINUTES_MAX,
        help="Re-issue IDLE after this many minutes (1-29; servers may drop an IDLE client "
        "after 30).",
    )
    keepalive: int = integer(
        120,
        help="Seconds of silence after which the connection is checked (DONE, NOOP, IDLE "
        "again); a dead or half-open one is noticed within keepalive + timeout.",
    )
    filters: ConditionParams = group(ConditionParams)
    options: ImapTriggerOptions = group(ImapTriggerOptions)


class EmailArrivedPop3(Parameters):
    login: Pop3Login = group(Pop3Login)
    filters: ConditionParams = group(ConditionParams)
    options: TriggerOptions = group(TriggerOptions)


class BoundWatch:
    """``TriggerSpec.watch``: binds the host's mapping to the trigger's class, then calls
    ``watch(services, ctx, params, stop)`` (its module imported on the first call)."""

    __slots__ = ("params", "services", "watch")

    def __init__(
        self,
        params: type[Any],
        watch: Callable[..., Iterator[TriggerEvent]],
        services: Services,
    ) -> None:
        self.params = params
        self.watch = watch
        self.services = services

    def __call__(
        self,
        ctx: TriggerContext,
        values: Mapping[str, Any],
        stop: threading.Event | None = None,
    ) -> Iterator[TriggerEvent]:
        return self.watch(self.services, ctx, bind(self.params, values), stop)

    def __repr__(self) -> str:
        return f"watch({self.params.__name__}: {self.watch!r})"


VARIABLES = (
    TriggerVariable(
        name="Msg",
        help="Message info of the new message (as Check for Email lists them): from, subject, "
        "date, uid, folder, attachments (with with_body), file (with download_to)...",
    ),
    TriggerVariable(
        name="MsgUid",
        help="Its UID (IMAP; for IMAP Move Message, Download Email...) or UIDL (POP3).",
    ),
)

ERRORS = (*LOGIN_ERRORS, errors.MailProtocolError, errors.InvalidParameter, errors.FileError)


def trigger_specs(services: Services) -> list[TriggerSpec]:
    """Email Arrived (IMAP) and (POP3), for ``robomail_register_triggers``."""
    return [
        TriggerSpec(
            id="robomail.email_arrived_imap",
            title="Email Arrived (IMAP)",
            category=CATEGORY,
            watch=BoundWatch(EmailArrivedImap, imap_watch.watch_imap, services),
            params=params_of(EmailArrivedImap),
            variables=VARIABLES,
            errors=tuple(error_code(e) for e in (*ERRORS, errors.FolderNotFound)),
            description="Starts the task for each new message in an IMAP folder that matches "
            "the conditions: pushed by IDLE, or polled. Reconnects by itself; remembers what "
            "it handled across restarts (docs/triggers.md).",
        ),
        TriggerSpec(
            id="robomail.email_arrived_pop3",
            title="Email Arrived (POP3)",
            category=CATEGORY,
            watch=BoundWatch(EmailArrivedPop3, pop3_watch.watch_pop3, services),
            params=params_of(EmailArrivedPop3),
            variables=VARIABLES,
            errors=tuple(error_code(e) for e in ERRORS),
            description="Starts the task for each new message in a POP3 mailbox that matches "
            "the conditions, checking every poll_interval seconds (POP3 has no push); "
            "remembers the UIDLs it handled across restarts.",
        ),
    ]
