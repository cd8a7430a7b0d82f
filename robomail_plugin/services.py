"""The services actions share: the credential store and the token service, built lazily."""

from __future__ import annotations

from robomail_plugin.schema import HostServices


class Services:
    """Configured once by the host (``robomail_configure``); actions hold a reference to it."""

    def __init__(self) -> None:
        self.host: HostServices | None = None

    def configure(self, host: HostServices) -> None:
        self.host = host
