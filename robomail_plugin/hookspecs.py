"""The hook contract between robomail, other plugins and a host.

Signatures and docstrings only. Hosts call every hook with keyword arguments.
"""

from __future__ import annotations

import pluggy

from robomail_plugin.schema import (
    AccessTokenInfo,
    ActionSpec,
    EditorSpec,
    HostServices,
    ProviderPreset,
    TriggerSpec,
)

PROJECT_NAME = "robomail"
ENTRY_POINT_GROUP = PROJECT_NAME  # plugins declare [project.entry-points.robomail]

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec(historic=True)
def robomail_configure(host: HostServices) -> None:
    """Give plugins the host's services once, at start.

    Historic: a plugin registered later is called with the same ``host``.

    A host calls it with ``pm.hook.robomail_configure.call_historic(kwargs={"host": ...})``
    before collecting registrations (``robomail_plugin.host_kit.configure`` does both), and
    ``host.register_plugin`` must be the plugin manager's ``register``.

    :param host: the data folder, the hook relay for calling other hooks, whether a person is
        at the terminal, and how to register a per-host plugin object.
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
def robomail_register_triggers() -> list[TriggerSpec]:
    """Register triggers: things that start a task (new mail arriving).

    The host collects every plugin's list and fails at start when two triggers share an id or a
    title. It runs ``TriggerSpec.watch(ctx, params, stop)`` in a thread per task, starts the
    task once per event it yields with the event's variables, and calls ``event.ack()`` once
    that task has started.

    :returns: a list of ``TriggerSpec`` records: id, title, parameters (as for actions), the
        variables each event sets, and ``watch``.
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
def robomail_access_token(record_name: str) -> AccessTokenInfo | None:
    """Return an access token with its expiry, refreshing it in hidden mode if needed.

    Stops at the first non-None result. None means the answering plugins know no record of that
    name; when no plugin implements this hook at all, ``host_kit.access_token`` raises
    ``NoTokenProvider`` instead, so a caller can tell the two apart.

    :param record_name: the Record Name of an OAuth parameter set.
    :returns: an ``AccessTokenInfo`` (record_name, value, expires_at), or None.
    :raises robomail_plugin.errors.TokenError: the provider refused (advice in the message).
    :raises robomail_plugin.errors.TokenTemporaryError: the provider is down; try later.
    """


@hookspec
def robomail_token_refused(record_name: str, token: str) -> None:
    """Report that a server refused ``token``: the next request for the record refreshes.

    A plugin that keeps tokens drops ``token`` if it is the one it holds for the record (a
    newer one is kept). Call it after an authentication failure, then ask for a token again.

    :param record_name: the Record Name the token was obtained for.
    :param token: the refused access token (compared, never logged).
    :returns: nothing.
    """


@hookspec(firstresult=True)
def robomail_credential_store() -> object | None:
    """Replace the embedded credential store (a host or fleet plugin implements this).

    Stops at the first non-None result.

    :returns: an object with the interface of ``robomail_plugin.store_contract.CredentialStore``
        (its docstring lists the methods and the exceptions each may raise), or None to keep
        the default. robomail checks it on first use and names any method it lacks.
    """
