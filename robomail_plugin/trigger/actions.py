"""Email Arrived (IMAP) and Email Arrived (POP3): the trigger declarations.

Imported at start-up (listing what the plugins offer), so it imports no mail code: ``watch``
imports ``trigger_imap`` / ``trigger_pop3`` the first time a trigger runs.
"""

from __future__ import annotations

from typing import Any

from robomail_plugin.imap.actions import E_FILE, E_FOLDER, E_PARAM, E_SERVER, LOGIN_ERRORS
from robomail_plugin.lazy import LazyRun
from robomail_plugin.schema import Param, ParamType, TriggerSpec, TriggerVariable
from robomail_plugin.shared_params import MESSAGES_CHOICES, conditions_params, connection_params

CATEGORY = "Email"
IDLE_MINUTES_MAX = 29  # RFC 3501: a server may log out a client silent for 30 minutes


class LazyWatch(LazyRun):
    """``module.function(*args, ctx, params, stop)``, the module imported on the first call."""

    __slots__ = ()

    def __call__(self, ctx: Any, params: Any, stop: Any = None) -> Any:
        return self.resolve()(*self.args, ctx, params, stop)

    def __repr__(self) -> str:
        return f"lazy_watch({self.module}.{self.function})"


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


def _common_params(protocol: str) -> list[Param]:
    """What both triggers share after the connection: conditions, pacing, first start."""
    return [
        *conditions_params(),
        Param(
            name="poll_interval",
            type=ParamType.INT,
            default=60,
            help="Seconds between checks when polling (POP3 always; IMAP without IDLE or with "
            "push: poll).",
        ),
        Param(
            name="max_backoff",
            type=ParamType.INT,
            default=300,
            help="Longest wait in seconds between reconnection attempts (they start at about "
            "1 s and double, with jitter).",
        ),
        Param(
            name="existing_mail",
            type=ParamType.CHOICE,
            choices=("skip", "fire"),
            default="skip",
            help="At the first start"
            + (" (and after a UIDVALIDITY change)" if protocol == "imap" else "")
            + ": skip = the mail already there counts as seen; fire = an event for each "
            "message already there.",
        ),
        Param(
            name="with_body",
            type=ParamType.BOOL,
            default=False,
            help="Fetch whole messages: Msg gets body_text, body_html and the attachments "
            "list (else headers only).",
        ),
        Param(
            name="download_to",
            type=ParamType.PATH,
            help="Folder to save each new message in as <uid>.eml (its path is Msg.file).",
        ),
    ]


def _imap_params() -> list[Param]:
    return [
        *connection_params("imap"),
        Param(name="folder", default="INBOX", help="IMAP folder to watch."),
        Param(
            name="messages",
            type=ParamType.CHOICE,
            choices=MESSAGES_CHOICES,
            default="all",
            help="Which new messages by flag (default all; unseen skips mail another client "
            "has read already).",
        ),
        Param(
            name="push",
            type=ParamType.CHOICE,
            choices=("idle", "poll"),
            default="idle",
            help="idle = IMAP IDLE (RFC 2177) when the server offers it, else polling; poll = "
            "check every poll_interval seconds.",
        ),
        Param(
            name="idle_minutes",
            type=ParamType.INT,
            default=IDLE_MINUTES_MAX,
            help="Re-issue IDLE after this many minutes (1-29; servers may drop an IDLE "
            "client after 30).",
        ),
        Param(
            name="keepalive",
            type=ParamType.INT,
            default=120,
            help="Seconds of silence after which the connection is checked (DONE, NOOP, IDLE "
            "again); a dead or half-open one is noticed within keepalive + timeout.",
        ),
        *_common_params("imap"),
    ]


def trigger_specs(services: Any) -> list[TriggerSpec]:
    """Email Arrived (IMAP) and (POP3), for ``robomail_register_triggers``."""
    errs = (*LOGIN_ERRORS, E_SERVER, E_PARAM, E_FILE)
    return [
        TriggerSpec(
            id="robomail.email_arrived_imap",
            title="Email Arrived (IMAP)",
            category=CATEGORY,
            watch=LazyWatch("robomail_plugin.trigger.imap", "watch_imap", services),
            params=tuple(_imap_params()),
            variables=VARIABLES,
            errors=(*errs, E_FOLDER),
            description="Starts the task for each new message in an IMAP folder that matches "
            "the conditions: pushed by IDLE, or polled. Reconnects by itself; remembers what "
            "it handled across restarts (docs/triggers.md).",
        ),
        TriggerSpec(
            id="robomail.email_arrived_pop3",
            title="Email Arrived (POP3)",
            category=CATEGORY,
            watch=LazyWatch("robomail_plugin.trigger.pop3", "watch_pop3", services),
            params=tuple([*connection_params("pop3"), *_common_params("pop3")]),
            variables=VARIABLES,
            errors=errs,
            description="Starts the task for each new message in a POP3 mailbox that matches "
            "the conditions, checking every poll_interval seconds (POP3 has no push); "
            "remembers the UIDLs it handled across restarts.",
        ),
    ]
