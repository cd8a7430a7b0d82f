"""SMTP Send Email: build the message, check everything, then one connection to send it.

Everything that can be wrong with the parameters (addresses, a CR or LF in a header value,
missing attachments, a charset that cannot hold the text) is found before connecting, so a task
never half-sends. The connection and login are ``connect.open_smtp``'s job.
``smtp.actions`` declares the action (imported at start-up); this module is imported on its
first run.
"""

from __future__ import annotations

import contextlib
import email.utils
import glob
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robomail_plugin import errors
from robomail_plugin.message import files
from robomail_plugin.message.info import html_to_text
from robomail_plugin.schema import ActionContext
from robomail_plugin.shared_params import Auth
from robomail_plugin.smtp.actions import BodyFormat, Priority
from robomail_plugin.transport import connect
from robomail_plugin.transport.connect import smtp_reply

# smtplib and the modern email API (policy, header registry, EmailMessage, mimetypes) are loaded
# on first use, in the functions that build and send: keeps `hostsim actions` start-up light.
if TYPE_CHECKING:
    import smtplib
    from email.headerregistry import Address
    from email.message import EmailMessage

    from robomail_plugin.services import Services
    from robomail_plugin.smtp.actions import SendEmail

PRIORITIES = {
    Priority.HIGH: ("1 (Highest)", "High"),
    Priority.NORMAL: None,
    Priority.LOW: ("5 (Lowest)", "Low"),
}
# Headers that have their own parameter (or are structural) and cannot be set via ``headers``.
RESERVED_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "reply-to", "subject", "content-type",
    "content-transfer-encoding", "mime-version", "content-disposition",
})
_HEADER_NAME_RE = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII but ':'
_WILDCARD_RE = re.compile(r"[*?\[]")
MAX_ATTACHMENT_BYTES = 100 * 1024 * 1024


# --- parameter checks ----------------------------------------------------------------------------


def no_line_breaks(label: str, value: str) -> str:
    """Refuses CR or LF in a header value (header injection); returns the value."""
    if "\r" in value or "\n" in value:
        raise errors.InvalidParameter(
            f"{label} contains a line break (CR or LF); header values must be one line. Remove "
            "the line break (a variable may have added it).")
    return value


def _split_text(text: str) -> list[str]:
    """Splits on ',' and ';' outside double quotes and angle brackets."""
    out, cur, quoted, angle = [], [], False, False
    escaped = False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
            continue
        if ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        elif ch in ",;" and not quoted and not angle:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return [p.strip() for p in out if p.strip()]


def parse_addresses(label: str, value: Any) -> list[Address]:
    """Addresses from text (',' or ';' separated) or a list; a malformed one is an error."""
    if value is None or value == "":
        return []
    from email.headerregistry import Address

    items = value if isinstance(value, list | tuple) else [value]
    result: list[Address] = []
    for item in items:
        text = no_line_breaks(label, str(item))
        for part in _split_text(text):
            name, addr = email.utils.parseaddr(part)
            addr = addr.strip()
            if not addr or "@" not in addr or any(c.isspace() for c in addr):
                raise errors.InvalidParameter(
                    f"{label}: {part!r} is not an e-mail address (expected name@domain or "
                    "Name <name@domain>)")
            try:
                result.append(Address(display_name=name, addr_spec=addr))
            except (ValueError, IndexError, TypeError) as exc:
                raise errors.InvalidParameter(
                    f"{label}: {part!r} is not a valid e-mail address ({exc})") from None
    return result


def parse_headers(value: Any) -> list[tuple[str, str]]:
    """Custom headers from a mapping, a list of [name, value] pairs, or JSON text of either."""
    if value is None or value == "" or value == {}:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise errors.InvalidParameter(
                "headers must be a mapping of header name to value (e.g. {\"X-Ticket\": "
                "\"42\"}), as YAML or JSON text") from None
    pairs: list[tuple[Any, Any]]
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(p, list | tuple) and len(p) == 2
                                         for p in value):
        pairs = [(p[0], p[1]) for p in value]
    else:
        raise errors.InvalidParameter("headers must be a mapping of header name to value")
    result = []
    for name, val in pairs:
        name = str(name).strip()
        if not _HEADER_NAME_RE.match(name):
            raise errors.InvalidParameter(
                f"headers: {name!r} is not a valid header name (printable ASCII, no spaces or "
                "colons)")
        if name.lower() in RESERVED_HEADERS:
            raise errors.InvalidParameter(
                f"headers: {name} cannot be set here; use the action's own parameter")
        items = val if isinstance(val, list) else [val]
        for item in items:
            text = "" if item is None else str(item)
            result.append((name, no_line_breaks(f"header {name}", text)))
    return result


def resolve_attachments(value: Any) -> list[Path]:
    """Attachment paths (wildcards expanded, sorted); a missing file is an error now."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str):
        items = [value] if Path(value).expanduser().is_file() else [
            p.strip() for p in re.split(r"[;\n]", value) if p.strip()]
        if len(items) == 1 and not Path(items[0]).expanduser().exists() and "," in items[0]:
            items = [p.strip() for p in items[0].split(",") if p.strip()]
    else:
        items = [str(v) for v in value]
    paths: list[Path] = []
    for item in items:
        pattern = str(Path(item).expanduser())
        if _WILDCARD_RE.search(item):
            matches = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
            if not matches:
                raise errors.FileError(f"attachments: no file matches {item!r}")
            paths.extend(matches)
            continue
        path = Path(pattern)
        if not path.is_file():
            raise errors.FileError(
                f"attachments: the file {item!r} does not exist (or is a folder); nothing was "
                "sent")
        paths.append(path)
    for path in paths:
        if path.stat().st_size > MAX_ATTACHMENT_BYTES:
            raise errors.FileError(f"attachments: {str(path)!r} is larger than 100 MB")
    return paths


def _read_body_file(path: str) -> str:
    p = Path(path).expanduser()
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise errors.FileError(f"body_file {path!r} does not exist") from None
    except OSError as exc:
        raise errors.FileError(f"cannot read body_file {path!r}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


# --- building ------------------------------------------------------------------------------------


def build_message(params: SendEmail, sender: Address) -> tuple[EmailMessage, list[str]]:
    """The message (no Bcc header) and the envelope recipients (to + cc + bcc)."""
    import email.policy
    from email.message import EmailMessage

    to = parse_addresses("to", params.to)
    cc = parse_addresses("cc", params.cc)
    bcc = parse_addresses("bcc", params.bcc)
    if not (to or cc or bcc):
        raise errors.InvalidParameter("give at least one recipient in to, cc or bcc")
    reply_to = parse_addresses("reply_to", params.reply_to)
    subject = no_line_breaks("subject", params.subject)
    custom = parse_headers(params.headers)
    charset = _charset(params)
    body = _body(params)

    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = (sender,)
    for name, addresses in (("To", to), ("Cc", cc), ("Reply-To", reply_to)):
        if addresses:
            msg[name] = addresses
    msg["Subject"] = subject
    _add_headers(msg, params, sender, custom)
    _set_body(msg, body, params.body_format, charset)
    _attach(msg, resolve_attachments(params.attachments))
    recipients = [a.addr_spec for a in (*to, *cc, *bcc)]
    return msg, list(dict.fromkeys(recipients))


def _charset(params: SendEmail) -> str:
    """The body's charset, checked by name before building: an unknown one is a parameter
    error, not a LookupError from deep inside the email package. An empty one is utf-8."""
    charset = params.charset.strip()
    try:
        "".encode(charset)
    except LookupError:
        raise errors.InvalidParameter(f"charset {charset!r} is unknown; use e.g. utf-8") from None
    return charset


def _body(params: SendEmail) -> str:
    """The body text: ``body_file``'s content when one is given, else ``body``."""
    if params.body_file:
        return _read_body_file(params.body_file)
    return params.body


def _add_headers(
    msg: EmailMessage, params: SendEmail, sender: Address, custom: list[tuple[str, str]]
) -> None:
    """Date, Message-ID, priority and read receipt, then the task's own headers. A task's own
    Message-ID or Date replaces the generated one: a second copy would make the message
    invalid (RFC 5322 allows one of each)."""
    msg["Date"] = email.utils.formatdate(localtime=True)
    domain = sender.domain or "localhost"
    if not any(n.lower() == "message-id" for n, _ in custom):
        msg["Message-ID"] = email.utils.make_msgid(domain=domain)
    priority = PRIORITIES[params.priority]
    if priority:
        msg["X-Priority"], msg["Importance"] = priority
    if params.read_receipt:
        msg["Disposition-Notification-To"] = str(sender)
    for name, value in custom:
        if name.lower() in ("message-id", "date"):
            del msg[name]
        msg[name] = value


def _set_body(msg: EmailMessage, body: str, fmt: BodyFormat, charset: str) -> None:
    """The body as text, HTML, or both (the text made from the HTML, for mail programs that
    show no HTML); a character the charset cannot hold is a parameter error."""
    try:
        if fmt is BodyFormat.HTML:
            msg.set_content(body, subtype="html", charset=charset)
        elif fmt is BodyFormat.HTML_TEXT:
            msg.set_content(html_to_text(body), charset=charset)
            msg.add_alternative(body, subtype="html", charset=charset)
        else:
            msg.set_content(body, charset=charset)
    except UnicodeEncodeError:
        raise errors.InvalidParameter(
            f"the body has characters that charset {charset!r} cannot hold; use charset: utf-8"
        ) from None


def _attach(msg: EmailMessage, paths: list[Path]) -> None:
    """Each file as an attachment typed by its name. A compressed file (``.tar.gz``: type tar,
    encoding gzip) or an unknown one goes as application/octet-stream: the bytes are not what
    the type would claim."""
    import mimetypes

    for path in paths:
        ctype, encoding = mimetypes.guess_type(path.name)
        if ctype is None or encoding is not None:
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype,
                           filename=path.name)


def _sender(params: SendEmail, settings: connect.ConnectionSettings,
            account: str | None) -> Address:
    """``from``, else the login's user name (password) or the record's Client Account."""
    raw = params.sender
    if not raw:
        if settings.auth is Auth.PASSWORD and "@" in settings.username:
            raw = settings.username
        elif settings.auth is Auth.OAUTH:
            raw = account
    if not raw:
        raise errors.InvalidParameter("from is empty: give the sender's address")
    found = parse_addresses("from", raw)
    if len(found) != 1:
        raise errors.InvalidParameter("from must be exactly one address")
    return found[0]


# --- sending -------------------------------------------------------------------------------------


# A size refusal (RFC 1870): 552, or the enhanced status 5.3.4, that speaks of size. 552 5.2.2 is
# a full mailbox, which is about the recipient, not the message.
_TOO_BIG_RE = re.compile(r"size|too (big|large|much)|exceed", re.IGNORECASE)


def _too_big(code: int, text: Any) -> bool:
    reply = smtp_reply(code, text)
    if "5.3.4" in reply:
        return True
    return code == 552 and "5.2.2" not in reply and bool(_TOO_BIG_RE.search(reply))


def _too_big_error(smtp: smtplib.SMTP, msg: EmailMessage, where: str,
                   reply: str) -> errors.SendFailed:
    """The message is larger than the server takes: say so, with its size and the server's
    limit when the server announced one (EHLO SIZE)."""
    size = len(msg.as_bytes())
    limit = str(smtp.esmtp_features.get("size") or "").strip()
    most = f"; the server takes at most {limit} bytes" if limit.isdigit() and int(limit) else ""
    return errors.SendFailed(
        f"{where} refused the message as too big: it is {size} bytes{most} (server said: "
        f"{reply}). Nothing was sent: make it smaller (fewer or smaller attachments, or a link "
        "to the file instead).", server_reply=reply)


def send(smtp: smtplib.SMTP, msg: EmailMessage, sender: str, recipients: list[str],
         where: str) -> dict[str, str]:
    """Sends once; returns the refused recipients (address -> reply). Errors say what failed."""
    import smtplib

    try:
        refused = smtp.send_message(msg, from_addr=sender, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        replies = list(exc.recipients.values())
        if replies and all(_too_big(c, t) for c, t in replies):
            raise _too_big_error(smtp, msg, where, smtp_reply(*replies[0])) from None
        detail = "; ".join(f"{a}: {smtp_reply(c, t)}" for a, (c, t) in exc.recipients.items())
        raise errors.SendFailed(
            f"{where} refused every recipient, nothing was sent ({detail}). Check the addresses "
            "and that this account may send to them.", server_reply=detail) from None
    except smtplib.SMTPSenderRefused as exc:
        reply = smtp_reply(exc.smtp_code, exc.smtp_error)
        if _too_big(exc.smtp_code, exc.smtp_error):  # MAIL FROM ... SIZE=n: not the From's fault
            raise _too_big_error(smtp, msg, where, reply) from None
        raise errors.SendFailed(
            f"{where} refused the sender {sender!r} (server said: {reply}). The From address "
            "must usually be the account's own address or an allowed alias.",
            server_reply=reply) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise errors.SendFailed(
            f"{where} cannot take this message: {exc} (non-ASCII addresses need SMTPUTF8).",
        ) from None
    except smtplib.SMTPResponseException as exc:
        reply = smtp_reply(exc.smtp_code, exc.smtp_error)
        if _too_big(exc.smtp_code, exc.smtp_error):
            raise _too_big_error(smtp, msg, where, reply) from None
        raise errors.SendFailed(
            f"{where} refused the message (server said: {reply}).", server_reply=reply) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise errors.SendFailed(
            f"sending through {where} failed: {exc.__class__.__name__}: {exc}. The message may "
            "not have been sent.") from None
    return {a: smtp_reply(c, t) for a, (c, t) in refused.items()}


def run_send(services: Services, ctx: ActionContext, params: SendEmail) -> None:
    settings = connect.ConnectionSettings.from_login(params.login)
    # the record is read once: its Client Account is the default sender and the login's user
    account = (
        str(services.store.get(settings.oauth_record).client_account)
        if settings.auth is Auth.OAUTH
        else None
    )
    sender = _sender(params, settings, account)
    msg, recipients = build_message(params, sender)
    if params.body and params.body_file:
        ctx.log("both body and body_file are given: the body is read from body_file", "warning")
    smtp = connect.open_smtp(
        settings, services, log=ctx.log, add_secret=ctx.add_secret, account=account
    )
    try:
        refused = send(smtp, msg, sender.addr_spec, recipients, settings.describe())
    finally:
        with contextlib.suppress(Exception):
            smtp.quit()
        with contextlib.suppress(Exception):
            smtp.close()
    message_id = str(msg["Message-ID"] or "")
    accepted = [r for r in recipients if r not in refused]
    if refused:
        detail = "; ".join(f"{a} ({reply})" for a, reply in refused.items())
        text = (f"the server refused {len(refused)} recipient(s): {detail}; the message was sent "
                f"to the other {len(accepted)}")
        if params.fail_on_any_refused:
            raise errors.SendFailed(text.capitalize() + ".", server_reply=detail)
        ctx.log(text, "warning")
    if params.save_copy_to:
        try:
            files.write_file(params.save_copy_to, msg.as_bytes(), "overwrite")
        except errors.FileError as exc:
            raise errors.FileError(f"the message WAS sent, but its copy was not saved: {exc}"
                                   ) from None
    if params.save_message_id_to:
        ctx.set_variable(params.save_message_id_to, message_id)
    ctx.log(f"sent {message_id} via {settings.describe()} to {len(accepted)} recipient(s)")
