"""robomail's hook implementations: short lists that point at the real code.

The entry point names ``plugin``, a loader: when a host configures it (``robomail_configure``)
it registers a ``RobomailPlugin`` of that host's own, with its own services (credential store,
token cache, data folder). Two hosts in one process therefore never share state.
"""

from __future__ import annotations

import threading

from robomail_plugin.hookspecs import hookimpl
from robomail_plugin.schema import (
    AccessTokenInfo,
    ActionSpec,
    EditorSpec,
    HostServices,
    ProviderPreset,
    TriggerSpec,
)
from robomail_plugin.services import Services


class RobomailPlugin:
    """robomail's hooks for one host, bound to that host's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @hookimpl
    def robomail_register_actions(self) -> list[ActionSpec]:
        # declarations only: each action imports its implementation when it first runs
        from robomail_plugin.check import actions as check
        from robomail_plugin.imap import actions as imap
        from robomail_plugin.parse import actions as parse
        from robomail_plugin.pop3 import actions as pop3
        from robomail_plugin.smtp import actions as smtp

        return [
            action.spec(self.services)
            for module in (imap, check, pop3, smtp, parse)
            for action in module.ACTIONS
        ]

    @hookimpl
    def robomail_register_triggers(self) -> list[TriggerSpec]:
        # declarations only: a trigger imports its implementation when it first runs
        from robomail_plugin.trigger import actions as trigger_actions

        return trigger_actions.trigger_specs(self.services)

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
        info = self.robomail_access_token(record_name)
        return None if info is None else info.value

    @hookimpl
    def robomail_access_token(self, record_name: str) -> AccessTokenInfo | None:
        from robomail_plugin.errors import RecordNotFound

        try:
            token = self.services.tokens.get_access_token(record_name)
        except RecordNotFound:
            return None
        return AccessTokenInfo(
            record_name=record_name, value=token.value, expires_at=token.expires_at
        )

    @hookimpl
    def robomail_token_refused(self, record_name: str, token: str) -> None:
        self.services.tokens.forget_refused(record_name, token)


class RobomailLoader:
    """The object the ``robomail`` entry point names: gives each host its own RobomailPlugin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: RobomailPlugin | None = None

    @hookimpl
    def robomail_configure(self, host: HostServices) -> None:
        if host.register_plugin is None:
            raise TypeError(
                "robomail needs HostServices.register_plugin (the plugin manager's register); "
                "configure hosts with robomail_plugin.host_kit.configure(pm, data_dir)."
            )
        per_host = RobomailPlugin(Services(host))
        host.register_plugin(per_host, "robomail.host")
        with self._lock:
            self._latest = per_host

    @property
    def services(self) -> Services:
        """The services of the host configured last (for tests and single-host scripts)."""
        with self._lock:
            if self._latest is None:
                raise RuntimeError("robomail was not configured by a host yet")
            return self._latest.services


plugin = RobomailLoader()
