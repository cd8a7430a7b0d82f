"""The credential store contract: what a store must offer, and the check a host runs on a
plugin's store (``robomail_credential_store``) before robomail uses it.

Imports no crypto or I/O: a host may check a store at start-up for free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from robomail_plugin.errors import RobomailError, StoreError

if TYPE_CHECKING:
    from robomail_plugin.credentials.records import OAuthRecord

REQUIRED_METHODS = ("get", "list", "add", "update", "delete", "rename")
#: Methods robomail uses when a store has them (and falls back without them).
OPTIONAL_METHODS = (
    "change", "set_refresh_token", "apply", "read_checked", "names", "rotate_key",
    "refresh_lock", "subscribe",
)


@runtime_checkable
class CredentialStore(Protocol):
    """What robomail needs from a store of OAuth records (``OAuthRecord``, valid by
    construction; a store keeps Client Secret and Refresh Token safe at rest).

    Exceptions, all from ``robomail_plugin.errors``, with a message that says what to do and
    holds no secret:

    - ``get``, ``update``, ``delete``, ``rename``: ``RecordNotFound`` for an unknown name;
    - ``add``, ``rename``: ``RecordExists`` when the (new) name is taken;
    - any method: ``StoreError`` when the store cannot be used (down, locked, damaged).

    Optional, used when present: ``change(name, fields) -> OAuthRecord`` (replace only those
    fields, atomically: a concurrent rotation is kept), ``set_refresh_token(name, token)``,
    ``apply(adds, changes)`` (an import in one transaction), ``read_checked(names)``,
    ``names()`` and ``rotate_key(new_key)``. Any other exception a plugin's store raises reaches
    the user as a ``StoreError`` naming the plugin.
    """

    def get(self, name: str) -> OAuthRecord: ...

    def list(self) -> list[OAuthRecord]: ...

    def add(self, record: OAuthRecord) -> None: ...

    def update(self, record: OAuthRecord) -> None: ...

    def delete(self, name: str) -> None: ...

    def rename(self, old: str, new: str) -> None: ...


def store_problems(store: object) -> list[str]:
    """The required methods ``store`` lacks (empty: it can be used)."""
    return [m for m in REQUIRED_METHODS if not callable(getattr(store, m, None))]


class PluginStore:
    """A plugin's store as robomail uses it: checked once, failures turned into StoreErrors."""

    def __init__(self, store: Any, plugin_name: str) -> None:
        self._store = store
        self.plugin_name = plugin_name
        self.description = f"the store of plugin {plugin_name!r} ({type(store).__name__})"

    @classmethod
    def checked(cls, store: Any, plugin_name: str) -> PluginStore:
        missing = store_problems(store)
        if missing:
            raise StoreError(
                f"Plugin {plugin_name!r} offers a credential store ({type(store).__name__}) "
                f"that lacks {', '.join(missing)}; robomail cannot use it. Fix the plugin, or "
                "block it so the embedded store is used."
            )
        return cls(store, plugin_name)

    def __repr__(self) -> str:
        return f"PluginStore({self.plugin_name!r})"

    def __getattr__(self, name: str) -> Any:
        if name not in REQUIRED_METHODS and name not in OPTIONAL_METHODS:
            raise AttributeError(name)
        method = getattr(self._store, name)  # AttributeError: an optional method it lacks

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except RobomailError:
                raise
            except Exception as exc:
                raise StoreError(
                    f"The credential store of plugin {self.plugin_name!r} failed in {name}: "
                    f"{type(exc).__name__}. Check that plugin's set-up; nothing else was changed."
                ) from None

        return call
