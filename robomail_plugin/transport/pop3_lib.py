"""``poplib`` as robomail uses it: import it from here to open a POP3 connection.

poplib refuses a line longer than its ``_MAXLINE`` (2 KB) with "line too long", and real mail has
longer ones (HTML without line breaks, long headers). The limit is a module global of poplib, so
raising it is process-wide: it is done once, here, when this module is first imported (with the
first POP3 connection; start-up loads neither this module nor poplib).
"""

from __future__ import annotations

import poplib

__all__ = ["poplib"]

poplib._MAXLINE = max(poplib._MAXLINE, 8 * 1024 * 1024)  # type: ignore[attr-defined]
