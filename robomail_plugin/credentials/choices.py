"""Choice lists the OAuth editor declares and the flows check, in one light module.

The editor's declaration (``hostsim actions``, a settings screen) needs these values; the modules
that act on them (browser flow, export/import) pull in HTTP and crypto libraries, so the values
live here and those modules import them from here.
"""

from __future__ import annotations

#: Hosts the loopback redirect URI may name (the listener is on 127.0.0.1 either way).
REDIRECT_HOSTS = ("127.0.0.1", "localhost")
#: What Import does when a Record Name already exists.
ON_CONFLICT = ("error", "overwrite", "rename")

PASSPHRASE_ENV = "ROBOMAIL_EXPORT_PASSPHRASE"  # noqa: S105 - a variable name, for scripts
