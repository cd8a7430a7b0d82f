"""A tiny SMTP relay between Dovecot's submission service and its LMTP listener.

Dovecot's submission service relays over SMTP (EHLO) and cannot talk to its own LMTP listener
(LHLO), so this aiosmtpd server sits in between and hands each accepted message to LMTP, one
recipient at a time. Mail sent over the sandbox's submission port then lands in the recipient's
INBOX, where IMAP and POP3 can read it.
"""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)


class _LmtpHandler:
    def __init__(self, lmtp_host: str, lmtp_port: int) -> None:
        self.lmtp_host = lmtp_host
        self.lmtp_port = lmtp_port

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        delivered, refused = 0, []
        for rcpt in envelope.rcpt_tos:
            try:
                with smtplib.LMTP(self.lmtp_host, self.lmtp_port, timeout=30) as lmtp:
                    lmtp.sendmail(envelope.mail_from or "", [rcpt], content)
                delivered += 1
            except (smtplib.SMTPException, OSError) as exc:
                log.warning("LMTP delivery to %s failed: %s", rcpt, exc)
                refused.append(rcpt)
        if delivered == 0 and refused:
            return "451 4.3.0 LMTP delivery failed for every recipient"
        return "250 OK delivered"


class LmtpRelay:
    """An SMTP server on 127.0.0.1:``port`` (run in a thread) that delivers over LMTP."""

    def __init__(self, port: int, lmtp_port: int, lmtp_host: str = "127.0.0.1") -> None:
        self.host = "127.0.0.1"
        self.port = port
        self._controller = Controller(
            _LmtpHandler(lmtp_host, lmtp_port),
            hostname=self.host,
            port=port,
            server_hostname="relay.localhost",
            enable_SMTPUTF8=True,
            decode_data=False,
            ready_timeout=10.0,
        )
        self._running = False

    def start(self) -> None:
        self._controller.start()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._controller.stop()
