"""Server answers as text.

The mail libraries hand a server's words back as bytes or as str, depending on the library and
the call (a reply line, a flag, an untagged response, an exception's argument); ``wire_text``
turns either into str the same way everywhere.
"""

from __future__ import annotations

from typing import Any


def wire_text(value: Any, encoding: str = "utf-8") -> str:
    """``value`` as text: bytes decoded as ``encoding`` (what does not decode becomes U+FFFD, so
    a server's odd byte never fails an action), anything else through ``str()``."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(encoding, "replace")
    return str(value)
