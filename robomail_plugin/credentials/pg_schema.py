"""The PostgreSQL store's schema, created and migrated by robomail, numbered versions.

Several hosts may start at once against a new or older database: each migration runs under one
transaction-scoped advisory lock, so exactly one host applies each version and the others wait and
find it done. A database newer than this robomail is refused before anything is written.
"""

from __future__ import annotations

from typing import Any

from robomail_plugin.credentials.records import PUBLIC_FIELDS, SECRET_FIELDS
from robomail_plugin.errors import StoreError

#: ``pg_advisory_xact_lock`` key of schema changes ("RbMl", as the embedded store's id)
MIGRATION_LOCK = 0x52624D6C
RECORDS = "robomail_oauth_records"
META = "robomail_meta"
VERSIONS = "robomail_schema"
CHANNEL = "robomail_records"
PLAIN_FIELDS = PUBLIC_FIELDS[1:]  # all but record_name, the key column
COLUMNS = ("record_name", *PLAIN_FIELDS, *SECRET_FIELDS)

_V1 = (
    f"CREATE TABLE {META} (k text PRIMARY KEY, v bytea NOT NULL)",
    f"CREATE TABLE {RECORDS} (record_name text PRIMARY KEY, "
    + ", ".join(f"{c} text NOT NULL" for c in PLAIN_FIELDS)
    + ", "
    + ", ".join(f"{c} bytea NOT NULL" for c in SECRET_FIELDS)
    + ", updated_at timestamptz NOT NULL DEFAULT now())",
)
#: (version, statements): append new versions, never edit an applied one
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _V1),)
LATEST = MIGRATIONS[-1][0]


def migrate(conn: Any, lock_timeout_s: float) -> int:
    """Brings the schema to ``LATEST`` inside the caller's transaction; returns the version.

    Call within ``conn.transaction()``; the advisory lock is released when it ends.
    """
    conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_s * 1000)}")
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSIONS} (version integer PRIMARY KEY, "
        "applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL)"
    )
    row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {VERSIONS}").fetchone()  # noqa: S608
    current = int(row[0])
    if current > LATEST:
        raise StoreError(
            f"The PostgreSQL store has schema version {current}; this robomail knows versions up "
            f"to {LATEST}. Upgrade robomail on this host: every host of a fleet must run a "
            "robomail that knows the database's schema. Nothing was changed."
        )
    for version, statements in MIGRATIONS:
        if version <= current:
            continue
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            f"INSERT INTO {VERSIONS} (version, applied_by) "  # noqa: S608
            "VALUES (%s, current_user || '@' || coalesce(inet_client_addr()::text, 'local'))",
            (version,),
        )
    return LATEST
