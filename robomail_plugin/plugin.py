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
        # declarations only: each action imports its implementation when it first runs
        from robomail_plugin.mail import (
            check_actions,
            imap_actions,
            parse_actions,
            pop3_actions,
            smtp_actions,
        )

        return [
            *imap_actions.action_specs(self.services),
            *check_actions.action_specs(self.services),
            *pop3_actions.action_specs(self.services),
            *smtp_actions.action_specs(self.services),
            *parse_actions.action_specs(self.services),
        ]

    @hookimpl
    def robomail_register_credential_editors(self) -> list[EditorSpec]:
        from robomail_plugin.credentials.editor_spec import build_editor

        return [build_editor(self.services)]

    @hookimpl
    def robomail_oauth_providers(self) -> list[ProviderPreset]:
        from robomail_plugin.credentials.presets import builtin_presets

        return builtin_presets()

    @hookimpl
    def robomail_get_access_token(self, record_name: str) -> str | None:
        from robomail_plugin.errors import RecordNotFound

        try:
            return self.services.tokens.get_access_token(record_name).value
        except RecordNotFound:
            return None


plugin = RobomailPlugin()
