"""Copying every record between two stores (embedded <-> PostgreSQL), secrets included.

Secrets travel only in memory: read and opened by the source store, sealed again by the target
store with its key, for the target's record and field. Nothing is written in clear, no file is
made, and the target changes in one transaction (all of it, or nothing on error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from robomail_plugin.credentials.locations import open_store, same_place
from robomail_plugin.credentials.store import CheckedRecord, read_checked
from robomail_plugin.credentials.transfer import ImportReport, ParsedExport, import_records
from robomail_plugin.errors import InvalidParameter


@attrs.frozen
class CopyReport:
    source: str
    target: str
    report: ImportReport
    damaged: tuple[CheckedRecord, ...] = ()
    into_here: bool = False


def _describe(store: Any) -> str:
    return str(getattr(store, "description", type(store).__name__))


def copy_store(
    here: Any, home: Path, *, to: str | None, from_: str | None, on_conflict: str = "error"
) -> CopyReport:
    """Copies every record from the store in use (``here``) to ``to``, or from ``from_`` into
    it. A damaged record is left out and reported, as export does."""
    if bool(to) == bool(from_):
        raise InvalidParameter(
            "Give either --to or --from: a postgresql:// URL, 'embedded' (the embedded store in "
            "ROBOMAIL_HOME) or the folder of an embedded store. The other side is the store in "
            "use."
        )
    other = open_store(str(to or from_), home, folders=True)
    try:
        source, target = (here, other) if to else (other, here)
        if same_place(source, target):
            raise InvalidParameter(
                f"The two stores are the same ({_describe(here)}): nothing to copy."
            )
        checked = read_checked(source)
        records = tuple(c.record for c in checked if not c.damage)
        report = import_records(target, ParsedExport(records=records, has_secrets=True),
                                on_conflict)
        return CopyReport(
            source=_describe(source),
            target=_describe(target),
            report=report,
            damaged=tuple(c for c in checked if c.damage),
            into_here=bool(from_),
        )
    finally:
        close = getattr(other, "close", None)
        if callable(close):
            close()
