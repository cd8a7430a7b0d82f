"""The hook contract between robomail, other plugins and a host.

Signatures and docstrings only. Hosts call every hook with keyword arguments.
"""

from __future__ import annotations

import pluggy

from robomail_plugin.schema import (
    ActionSpec,
    EditorSpec,
    HostServices,
    ProviderPreset,
)

PROJECT_NAME = "robomail"
ENTRY_POINT_GROUP = PROJECT_NAME  # plugins declare [project.entry-points.robomail]

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec(historic=True)
def robomail_configure(host: HostServices) -> None:
    """Give plugins the host's services once, at start.

    Historic: a plugin registered later is called with the same ``host``.

    :param host: the data folder, the hook relay for calling other hooks, and whether a person is
        at the terminal.
    :returns: nothing.
    """


@hookspec
def robomail_register_actions() -> list[ActionSpec]:
    """Register the actions a plugin offers to tasks.

    The host collects every plugin's list and fails at start when two actions share an id or a
    title.

    :returns: a list of ``ActionSpec`` records.
    """


@hookspec
def robomail_register_credential_editors() -> list[EditorSpec]:
    """Register credential editors for a host's settings screen.

    :returns: a list of ``EditorSpec`` records: the record type, its fields (label, help, kind,
        secret, required) and its commands.
    """


@hookspec
def robomail_oauth_providers() -> list[ProviderPreset]:
    """Offer OAuth provider presets to "Load Predefined Endpoints".

    :returns: a list of ``ProviderPreset`` records (endpoints, scope, extra authorize parameters,
        hints); keys must be unique across plugins.
    """


@hookspec(firstresult=True)
def robomail_get_access_token(record_name: str) -> str | None:
    """Return a valid access token for an OAuth record, refreshing it in hidden mode if needed.

    Stops at the first non-None result.

    :param record_name: the Record Name of an OAuth parameter set.
    :returns: the access token (never log it), or None when this plugin does not know the record.
    """


@hookspec(firstresult=True)
def robomail_credential_store() -> object | None:
    """Replace the embedded credential store (a host or fleet plugin implements this).

    Stops at the first non-None result.

    :returns: an object with the credential store interface of
        ``robomail_plugin.credentials.store.CredentialStore``, or None to keep the default.
    """
