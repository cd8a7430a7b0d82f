"""Streaming message info out of a folder: many messages per round trip, memory kept flat.

Loops and Check for Email give a snapshot of UIDs; this module fetches them in batches
(``UID FETCH <200 uids> (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (...)])``, only the
headers Message info is made from) and, only when bodies are needed, the bodies in sub-batches
bounded by their total size. It never sets \\Seen: every body fetch is a PEEK. A whole message is
parsed once: its Message info and, for a Download in the loop body, its parts come from the same
parse.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from email.message import Message
from typing import Any

import attrs

from robomail_plugin.imap.session import ImapSession
from robomail_plugin.message.info import INFO_HEADERS, message_info, parse_message
from robomail_plugin.message.wire_text import wire_text

FETCH_BATCH = 200
BODY_BATCH_BYTES = 8 * 1024 * 1024
HEADER_ITEM = f"BODY.PEEK[HEADER.FIELDS ({' '.join(INFO_HEADERS).upper()})]"


@attrs.frozen
class Fetched:
    """One message as fetched: its UID, Message info, and whole bytes (parsed) when fetched."""

    uid: int
    info: dict[str, Any]
    raw: bytes | None = attrs.field(default=None, repr=False)
    msg: Message | None = attrs.field(default=None, repr=False)


def chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _body_chunks(uids: list[int], sizes: dict[int, int]) -> Iterator[list[int]]:
    """Groups ``uids`` so each group's bodies stay under BODY_BATCH_BYTES (at least one each)."""
    group: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if group and total + size > BODY_BATCH_BYTES:
            yield group
            group, total = [], 0
        group.append(uid)
        total += size
    if group:
        yield group


def _info(
    uid: int, entry: dict[bytes, Any], folder: str, msg: Message | None, include_body: bool
) -> dict[str, Any]:
    flags = [wire_text(f) for f in entry.get(b"FLAGS", ())]
    size = entry.get(b"RFC822.SIZE")
    number = entry.get(b"SEQ")
    if msg is not None:
        return message_info(
            msg,
            uid=uid,
            number=number,
            flags=flags,
            folder=folder,
            size=size,
            include_body=include_body,
        )
    header = next((bytes(v) for k, v in entry.items() if k.startswith(b"BODY[HEADER")), b"")
    return message_info(
        header, uid=uid, number=number, flags=flags, folder=folder, size=size, headers_only=True
    )


def iter_messages(
    session: ImapSession,
    uids: Iterable[int],
    *,
    need_raw: bool = False,
    include_body: bool = False,
    batch_size: int = FETCH_BATCH,
) -> Iterator[Fetched]:
    """Yields ``Fetched`` for each UID still present, in the given order.

    ``need_raw`` fetches whole messages (for body conditions, attachments, downloads);
    ``include_body`` puts ``body_text``/``body_html`` into the info. Messages that vanished since
    the snapshot (moved or expunged by the loop body) are skipped.
    """
    folder = session.require_selected("fetching messages")
    read_only = session.read_only
    client = session.client
    wanted = list(uids)
    # No INTERNALDATE: the catalogue's Message info dates come from the Date header, and parsing
    # the server's arrival dates cost a third of the loop's time.
    items = ["UID", "FLAGS", "RFC822.SIZE"]
    if not need_raw:
        items.append(HEADER_ITEM)
    for batch in chunks(wanted, batch_size):
        if session.folder != folder:  # the loop body selected another folder (nested loops)
            session.select(folder, read_only=read_only)
        meta = session.call(f"UID FETCH ({len(batch)} messages)", client.fetch, batch, items)
        present = [uid for uid in batch if uid in meta]
        if not need_raw:
            for uid in present:
                yield Fetched(uid, _info(uid, meta[uid], folder, None, False))
            continue
        sizes = {uid: int(meta[uid].get(b"RFC822.SIZE", 0) or 0) for uid in present}
        for group in _body_chunks(present, sizes):
            if session.folder != folder:
                session.select(folder, read_only=read_only)
            bodies = session.call(
                f"UID FETCH bodies ({len(group)} messages)", client.fetch, group, ["BODY.PEEK[]"]
            )
            for uid in group:
                raw = bodies.get(uid, {}).get(b"BODY[]")
                if raw is None:  # vanished between the two fetches
                    continue
                raw = bytes(raw)
                msg = parse_message(raw)
                if meta[uid].get(b"RFC822.SIZE") is None:
                    meta[uid][b"RFC822.SIZE"] = len(raw)
                yield Fetched(uid, _info(uid, meta[uid], folder, msg, include_body), raw, msg)
            del bodies
