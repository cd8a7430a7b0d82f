"""Where records are kept, by name: the embedded store in a folder, or a PostgreSQL database.

One reading of a store's location for ROBOMAIL_STORE and for ``copy-store --from/--to``: empty or
``embedded`` is the embedded SQLite store in ROBOMAIL_HOME, a ``postgresql://`` URL the shared
store, and (for copy-store) a folder path an embedded store in that folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robomail_plugin.credentials.pg_config import is_postgres_url

EMBEDDED = "embedded"


def open_store(location: str, home: Path, *, folders: bool = False) -> Any:
    """The store at ``location``; ``home`` is ROBOMAIL_HOME (the embedded store, the key file).

    Without ``folders`` anything but a URL or ``embedded`` is refused (ROBOMAIL_STORE)."""
    location = location.strip()
    if is_postgres_url(location) or (location not in ("", EMBEDDED) and not folders):
        from robomail_plugin.credentials.pg_store import PostgresCredentialStore

        return PostgresCredentialStore(location, home)
    from robomail_plugin.credentials.store import SQLiteCredentialStore

    if location in ("", EMBEDDED):
        return SQLiteCredentialStore(home)
    return SQLiteCredentialStore(Path(location).expanduser())


def same_place(a: Any, b: Any) -> bool:
    """True when two stores are the same records (copying one onto the other is a mistake)."""
    pa, pb = getattr(a, "path", None), getattr(b, "path", None)
    if pa is not None and pb is not None:
        return Path(pa).resolve() == Path(pb).resolve()
    la, lb = getattr(a, "location", None), getattr(b, "location", None)
    return la is not None and lb is not None and la.shown == lb.shown
