"""The ROBOMAIL_STORE setting: a ``postgresql://`` URL read once, shown without its password,
and PostgreSQL's failures turned into errors that name the setting to fix.

A connection string may hold the database password, so neither it nor libpq's own echo of it may
reach a message: every message is built from the host, port, user and database alone.
"""

from __future__ import annotations

import os
import re
from typing import Any

from robomail_plugin.errors import StoreError

STORE_ENV = "ROBOMAIL_STORE"
LOCK_TIMEOUT_ENV = "ROBOMAIL_STORE_LOCK_TIMEOUT"
KEY_NEXT_ENV = "ROBOMAIL_KEY_NEXT"
DEFAULT_LOCK_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 5
SCHEMES = ("postgresql://", "postgres://")
_PASSWORD_SOURCES = "the password in ROBOMAIL_STORE, PGPASSWORD or ~/.pgpass"  # noqa: S105


def is_postgres_url(value: str) -> bool:
    return value.strip().lower().startswith(SCHEMES)


class Location:
    """A parsed ROBOMAIL_STORE: the URL (private) and a description safe to show."""

    def __init__(self, url: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        if not is_postgres_url(url):
            raise StoreError(
                f"{STORE_ENV} must be a postgresql:// URL (or unset, for the embedded store in "
                "ROBOMAIL_HOME); the value given is not one (not shown: it may hold a password)."
            )
        try:
            params = conninfo_to_dict(url.strip())
        except Exception:
            raise StoreError(
                f"{STORE_ENV} is not a valid postgresql:// URL (libpq cannot read it; not shown: "
                "it may hold a password). Percent-encode special characters in the user name and "
                "password, e.g. postgresql://robomail:p%40ss@db.example:5432/robomail."
            ) from None
        self._url = url.strip()
        self._password = str(params.get("password") or "")
        self.params = {k: v for k, v in params.items() if k != "password"}
        self.user = str(params.get("user") or os.environ.get("PGUSER") or _login_name())
        self.dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or self.user)
        host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
        port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
        self.server = f"{host}:{port}" if not host.startswith("/") else f"{host} (socket)"
        self.shown = f"postgresql://{self.user}@{self.server}/{self.dbname}"

    def __repr__(self) -> str:
        return f"Location({self.shown!r})"

    @property
    def url(self) -> str:
        return self._url

    def connect_kwargs(self) -> dict[str, Any]:
        """libpq settings robomail adds unless the URL sets them: a bounded connect and TCP
        keepalives, so a host that vanished frees its locks and a dead server is noticed."""
        wanted: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "robomail",
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        return {k: v for k, v in wanted.items() if k not in self.params}

    def scrub(self, text: str) -> str:
        """``text`` with the password (and the whole URL) masked."""
        for secret in (self._url, self._password):
            if secret and len(secret) >= 3:
                text = text.replace(secret, "***")
        return text

    # --- failures -------------------------------------------------------------------------

    def fault(self, exc: BaseException, *, doing: str = "connect") -> StoreError:
        """The StoreError for a failure to connect (or a lost connection), naming the setting."""
        raw = self.scrub(str(exc))
        low = raw.lower()
        where = f"the PostgreSQL store {self.shown} ({STORE_ENV})"
        if "password authentication failed" in low or "no password supplied" in low:
            return StoreError(
                f"PostgreSQL refused the login of user {self.user!r} at {self.server}: wrong "
                f"password. Fix {_PASSWORD_SOURCES}; nothing was changed."
            )
        if re.search(r'role "[^"]*" does not exist', low):
            return StoreError(
                f"PostgreSQL at {self.server} has no user {self.user!r}. Fix the user in "
                f"{STORE_ENV}, or create the user (CREATE ROLE ... LOGIN); nothing was changed."
            )
        if re.search(r'database "[^"]*" does not exist', low):
            return StoreError(
                f"PostgreSQL at {self.server} has no database {self.dbname!r}. Create it "
                f"(createdb {self.dbname}) or fix the database name in {STORE_ENV}; nothing was "
                "changed."
            )
        if "no pg_hba.conf entry" in low:
            return StoreError(
                f"PostgreSQL at {self.server} does not let user {self.user!r} in from this host "
                f"(pg_hba.conf). Allow this host on the server, or fix {STORE_ENV}."
            )
        if "permission denied" in low:
            return StoreError(
                f"User {self.user!r} may not create or use robomail's tables in database "
                f"{self.dbname!r} at {self.server}. Grant it CREATE on the schema, or use another "
                f"user in {STORE_ENV}."
            )
        reason = _short_reason(raw)
        if doing == "connect":
            return StoreError(
                f"Cannot reach {where}: {reason}. Start PostgreSQL, or fix the host and port in "
                f"{STORE_ENV}; nothing was changed."
            )
        return StoreError(
            f"The connection to {where} was lost ({reason}) {doing}. Check that PostgreSQL is "
            f"running and reachable ({STORE_ENV}); robomail reconnects by itself."
        )


def lock_timeout() -> float:
    """Seconds a write waits for a record another host holds (ROBOMAIL_STORE_LOCK_TIMEOUT)."""
    text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise StoreError(
            f"{LOCK_TIMEOUT_ENV} must be a number of seconds between 0 and 86400, e.g. 60."
        )
    return value


def _short_reason(text: str) -> str:
    """libpq's reason in one line: 'Connection refused', 'timeout expired', ..."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "no answer"
    first = lines[0]
    if "failed:" in first:
        first = first.rsplit("failed:", 1)[1].strip()
    first = first.removeprefix("FATAL:").strip()
    return first[:200] or "no answer"


def _login_name() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "?"
