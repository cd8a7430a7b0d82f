"""The services actions share: the credential store and the token service, built lazily.

Configured once by the host (``robomail_configure``). The store is the one a host or fleet plugin
returns from ``robomail_credential_store``, else the PostgreSQL store ROBOMAIL_STORE names (a
fleet's), else the embedded SQLite store in ROBOMAIL_HOME (or the host's data folder). Provider
presets are robomail's own plus every plugin's.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robomail_plugin.credentials.presets import builtin_presets
from robomail_plugin.errors import InvalidParameter
from robomail_plugin.schema import HostServices, ProviderPreset

if TYPE_CHECKING:
    from robomail_plugin.credentials.tokens import TokenService
    from robomail_plugin.store_contract import CredentialStore

HOME_ENV = "ROBOMAIL_HOME"
STORE_ENV = "ROBOMAIL_STORE"  # postgresql://... : the store a fleet of hosts shares


def default_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "robomail"


class Services:
    """One host's services (``robomail_configure`` makes them); actions hold a reference."""

    def __init__(self, host: HostServices | None = None) -> None:
        self.host = host
        self._store: Any = None
        self._store_home: tuple[Path, str] | None = None
        self._tokens: TokenService | None = None
        self._tokens_home: Path | None = None
        self._lock = threading.RLock()

    @property
    def home(self) -> Path:
        """ROBOMAIL_HOME, else the host's data folder, else ~/.local/share/robomail."""
        env = os.environ.get(HOME_ENV, "").strip()
        if env:
            return Path(env).expanduser()
        if self.host is not None:
            return Path(self.host.data_dir)
        return default_home()

    @property
    def store(self) -> CredentialStore:
        """The credential store (a plugin's, ROBOMAIL_STORE's, or the embedded one); built on
        first use."""
        with self._lock:
            where = (self.home, os.environ.get(STORE_ENV, "").strip())
            if self._store is None or (self._store_home is not None and self._store_home != where):
                replaced = self._store
                replacement = self._plugin_store()
                if replacement is not None:
                    self._store, self._store_home = replacement, None
                else:
                    # loaded on first use: keeps `hostsim actions` start-up light (cryptography)
                    from robomail_plugin.credentials.locations import open_store

                    self._store, self._store_home = open_store(where[1], where[0]), where
                if replaced is not None and hasattr(replaced, "close"):
                    replaced.close()
                if self._tokens is not None:
                    self._subscribe(self._store, self._tokens)
            store: CredentialStore = self._store
            return store

    @staticmethod
    def _subscribe(store: Any, tokens: TokenService) -> None:
        """A shared store tells of other hosts' changes: drop those records' cached tokens."""
        subscribe = getattr(store, "subscribe", None)
        if callable(subscribe):
            subscribe(tokens.invalidate)

    def _plugin_store(self) -> Any:
        """A plugin's store, checked and wrapped so its failures are clean errors; or None."""
        if self.host is None:
            return None
        caller = self.host.hook.robomail_credential_store
        for impl in reversed(caller.get_hookimpls()):  # pluggy's call order: last registered first
            store = impl.function()
            if store is not None:
                from robomail_plugin.store_contract import PluginStore

                name = impl.plugin_name  # pluggy names unnamed plugins by id(): say the class
                if name.isdigit():
                    name = type(impl.plugin).__name__
                return PluginStore.checked(store, name)
        return None

    @property
    def store_description(self) -> str:
        """Which credential store is in use, for people (``oauth list``, ``hostsim plugins``)."""
        return str(getattr(self.store, "description", type(self.store).__name__))

    @property
    def tokens(self) -> TokenService:
        """The token service (the one place that talks to token endpoints)."""
        with self._lock:
            home = self.home
            if self._tokens is None or self._tokens_home != home:
                # loaded on first use: keeps `hostsim actions` start-up light (requests, oauthlib)
                from robomail_plugin.credentials.tokens import TokenEndpoint, TokenService

                store = self.store
                self._tokens = TokenService(
                    lambda: self.store,
                    lock_dir=home / "locks",
                    endpoint=TokenEndpoint(presets=self.providers),
                )
                self._tokens_home = home
                self._subscribe(store, self._tokens)
            return self._tokens

    def providers(self) -> dict[str, ProviderPreset]:
        """Built-in presets plus ``robomail_oauth_providers`` results; a key offered twice is an
        error."""
        builtins = {p.key: p for p in builtin_presets()}
        result = dict(builtins)
        if self.host is None:
            return result
        seen: set[str] = set()
        for presets in self.host.hook.robomail_oauth_providers() or []:
            for preset in presets or []:
                if not isinstance(preset, ProviderPreset):
                    raise InvalidParameter(
                        f"A plugin offered an OAuth provider preset that is not a ProviderPreset: "
                        f"{type(preset).__name__}."
                    )
                if preset.key in seen:
                    raise InvalidParameter(
                        f"Two plugins offer an OAuth provider preset with key {preset.key!r}; "
                        "keys must be unique. Block one of the plugins."
                    )
                seen.add(preset.key)
                if preset.key in builtins and preset != builtins[preset.key]:
                    raise InvalidParameter(
                        f"A plugin offers an OAuth provider preset with the built-in key "
                        f"{preset.key!r}; choose another key."
                    )
                result[preset.key] = preset
        return result
