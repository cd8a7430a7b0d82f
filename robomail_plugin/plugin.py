"""robomail's hook implementations: short lists that point at the real code."""

from __future__ import annotations

from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import ActionSpec, EditorSpec, HostServices, ProviderPreset
from robomail_plugin.services import Services


class RobomailPlugin:
    """The object the ``robomail`` entry point names; holds the services the host configured."""

    def __init__(self) -> None:
        self.services = Services()

    @hookimpl
    def robomail_configure(self, host: HostServices) -> None:
        self.services.configure(host)

    @hookimpl
    def robomail_register_actions(self) -> list[ActionSpec]:
        return []

    @hookimpl
    def robomail_register_credential_editors(self) -> list[EditorSpec]:
        return []

    @hookimpl
    def robomail_oauth_providers(self) -> list[ProviderPreset]:
        return []


plugin = RobomailPlugin()
